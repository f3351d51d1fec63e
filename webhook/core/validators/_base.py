"""Small helpers shared by validators."""

from __future__ import annotations

from typing import Any

from webhook.core.decision import Violation
from webhook.core.plan import ValidationContext
from webhook.core.workloads import field_path

MAIN_ONLY = frozenset({""})
WITH_EPHEMERAL = frozenset({"", "ephemeralcontainers"})


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


def describe(values: Any) -> str:
    if isinstance(values, (list, tuple, set, frozenset)):
        return ", ".join(str(v) for v in values) if values else "(none)"
    return str(values)
