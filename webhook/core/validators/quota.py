"""quota: a tenant's usage across all its namespaces, against ``spec.quota``.

``hard`` bounds the whole tenant (every namespace it claims, summed);
``perNamespace`` bounds each of its namespaces. Keys are ResourceQuota's:
``requests.cpu|memory|ephemeral-storage|<extended>``, ``limits.cpu|memory|
ephemeral-storage``, ``cpu``, ``memory``, ``ephemeral-storage``, ``pods``.
Like ResourceQuota admission, a pod that omits a request or limit for a
resource under quota is rejected, naming the container and the key. Only Pod
CREATEs consume quota (pod resources are immutable; controllers' pods are
judged as they are created).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal

from webhook.core.cluster_state import add_usage
from webhook.core.decision import Violation
from webhook.core.plan import ValidationContext
from webhook.core.pod_resources import quota_demand
from webhook.core.quantity import exact_add, format_resource
from webhook.core.validators._base import MAIN_ONLY, violation

ZERO = Decimal(0)


def _exceeded(ctx: ValidationContext, scope: str, hard: Mapping[str, Decimal], used: Mapping[str, Decimal],
              requested: Mapping[str, Decimal]) -> Iterator[Violation]:
    for key, limit in hard.items():
        delta = requested.get(key, ZERO)
        if delta <= 0:
            continue
        current = used.get(key, ZERO)
        if exact_add(current, delta) > limit:
            yield violation(
                ctx, "quota",
                f"{scope}: {key} {format_resource(key, current)} + {format_resource(key, delta)} requested > "
                f"{format_resource(key, limit)} hard",
                field=None, actual={"used": format_resource(key, current), "requested": format_resource(key, delta)},
                required=format_resource(key, limit),
            )


@dataclass(frozen=True, slots=True)
class TenantQuota:
    hard: Mapping[str, Decimal]
    per_namespace: Mapping[str, Decimal]
    rule: str = "quota"
    kinds: frozenset[str] | None = frozenset({"Pod"})
    subresources: frozenset[str] = MAIN_ONLY

    def validate(self, ctx: ValidationContext) -> Iterator[Violation]:
        if ctx.request.operation != "CREATE" or ctx.target is None:
            return
        requested, missing = quota_demand(ctx.obj, (*self.hard, *self.per_namespace))
        for container, key in missing:
            yield violation(
                ctx, "quota", f'container "{container}" must specify {key}: it is under quota '
                f"({'tenant ' + ctx.tenant.name if ctx.tenant else 'namespace ' + ctx.request.namespace})",
                container=container, actual=None, required=key,
            )
        if not requested:
            return
        counted = _already_counted(ctx)
        if self.hard:
            used: dict[str, Decimal] = {}
            for ns in ctx.tenant_namespaces():
                add_usage(used, ctx.state.namespace_usage(ns))
            add_usage(used, counted, -1)
            scope = f"tenant {ctx.tenant.name}" if ctx.tenant else f"namespace {ctx.request.namespace}"
            yield from _exceeded(ctx, scope, self.hard, used, requested)
        if self.per_namespace:
            ns = ctx.request.namespace
            ns_used = dict(ctx.state.namespace_usage(ns))
            add_usage(ns_used, counted, -1)
            yield from _exceeded(ctx, f"namespace {ns}", self.per_namespace, ns_used, requested)


def _already_counted(ctx: ValidationContext) -> Mapping[str, Decimal]:
    """What the view already counts for this very pod (a re-sent CREATE, a reservation): not counted twice."""
    meta = ctx.obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    lookup = getattr(ctx.state, "pod_usage", None)
    if not isinstance(name, str) or not name or not callable(lookup):
        return {}
    return lookup(ctx.request.namespace, name) or {}
