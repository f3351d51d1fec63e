"""Small helpers shared by validators."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.core.decision import Violation
from webhook.core.plan import MAIN_ONLY, RESIZE, WITH_EPHEMERAL, WITH_RESIZE, ValidationContext
from webhook.core.selectors import LabelSelector, glob_match
from webhook.core.workloads import field_path

__all__ = [
    "MAIN_ONLY", "WITH_EPHEMERAL", "WITH_RESIZE", "describe", "inside_tenant", "is_resize", "outside_tenant",
    "resize_note", "violation",
]


def violation(ctx: ValidationContext, rule: str, message: str, *, container: str | None = None,
              field: tuple[str | int, ...] | None = None, actual: Any = None, required: Any = None) -> Violation:
    """A Violation of ``rule`` in ctx.policy; ``field`` parts are relative to the pod (template) root."""
    prefix = ctx.target.prefix if ctx.target is not None else ()
    return Violation(
        policy=ctx.policy.name,
        rule=rule,
        message=message,
        container=container,
        field=field_path(prefix, *field) if field else None,
        actual=actual,
        required=required,
        enforcement=ctx.policy.enforcement.value,
    )


def is_resize(ctx: ValidationContext) -> bool:
    """The request is an in-place resize (``pods/resize``)."""
    return ctx.request.subresource == RESIZE


def resize_note(ctx: ValidationContext) -> str:
    """`` (resize of pod NAME)`` on a resize, else ``""``: a finding says which request broke the rule."""
    if not is_resize(ctx):
        return ""
    meta = ctx.obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return f" (resize of pod {name})" if isinstance(name, str) and name else " (resize)"


def describe(values: Any) -> str:
    if isinstance(values, (list, tuple, set, frozenset)):
        return ", ".join(str(v) for v in values) if values else "(none)"
    return str(values)


def inside_tenant(ctx: ValidationContext, namespace: str, shared: tuple[str, ...]) -> bool:
    """``namespace`` is the request's own, one of its tenant's, or matches a ``sharedNamespaces`` pattern."""
    if namespace == ctx.request.namespace or any(glob_match(p, namespace) for p in shared):
        return True
    return ctx.tenant is not None and ctx.tenant_of(namespace) == ctx.tenant.name


def outside_tenant(ctx: ValidationContext, selector: LabelSelector, shared: tuple[str, ...]) -> list[str]:
    """The namespaces the cluster view knows that ``selector`` selects and that lie outside the tenant, sorted."""
    state = ctx.state
    return sorted(ns for ns in state.namespaces()
                  if selector.matches(state.namespace_labels(ns) or {}) and not inside_tenant(ctx, ns, shared))


def request_only(self: object, obj: Mapping[str, Any]) -> bool:
    """``Validator.reads_cluster`` of a rule that judges the request alone."""
    return False


def cluster_dependent(self: object, obj: Mapping[str, Any]) -> bool:
    """``Validator.reads_cluster`` of a rule that judges with the cluster view (usage, NetworkPolicies)."""
    return True
