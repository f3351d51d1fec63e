"""quota: a tenant's usage across all its namespaces, against ``spec.quota``.

``hard`` bounds the whole tenant (every namespace it claims, summed);
``perNamespace`` bounds each of its namespaces. Keys are ResourceQuota's:
``requests.cpu|memory|ephemeral-storage|<extended>``, ``limits.cpu|memory|
ephemeral-storage``, ``cpu``, ``memory``, ``ephemeral-storage``, ``pods``.
Like ResourceQuota admission, a pod that omits a request or limit for a
resource under quota is rejected, naming the container and the key.

What is charged, as the ResourceQuota admission plugin charges a pod:

* a Pod CREATE: the pod's whole usage. When the cluster view already counts a
  pod of that name (a re-sent CREATE, a reservation), that count is taken out
  of the usage first, so the pod is not counted twice;
* an in-place resize (``pods/resize``, an UPDATE carrying the whole Pod): the
  increase only, key by key (new usage minus the old object's usage, keys that
  shrink or stay count nothing; upstream's SubtractWithNonNegativeResult). The
  old pod is already in the usage (a view counts it live or reserved, together
  with the increases of its earlier resizes it reserved), so usage plus the
  increase must fit; only when the view does not count the pod at all is the old
  object's usage added first. Usage reads the status as upstream does (a pending
  decrease still counts at its allocated value);
* nothing else: other pod updates cannot change resources, and controllers'
  pods are judged as they are created.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal

from webhook.core.cluster_state import add_usage
from webhook.core.decision import Violation
from webhook.core.plan import ValidationContext
from webhook.core.pod_resources import quota_demand, quota_usage
from webhook.core.quantity import exact_add, format_resource
from webhook.core.validators._base import WITH_RESIZE, cluster_dependent, is_resize, resize_note, violation

ZERO = Decimal(0)


def _exceeded(ctx: ValidationContext, scope: str, hard: Mapping[str, Decimal], used: Mapping[str, Decimal],
              requested: Mapping[str, Decimal], what: str) -> Iterator[Violation]:
    for key, limit in hard.items():
        delta = requested.get(key, ZERO)
        if delta <= 0:
            continue
        current = used.get(key, ZERO)
        if exact_add(current, delta) > limit:
            yield violation(
                ctx, "quota",
                f"{scope}: {key} {format_resource(key, current)} + {format_resource(key, delta)} {what} > "
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
    subresources: frozenset[str] = WITH_RESIZE
    reads_cluster = cluster_dependent  # judges with what the cluster view holds (usage, other objects)

    def validate(self, ctx: ValidationContext) -> Iterator[Violation]:
        resize = is_resize(ctx)
        if ctx.request.operation != ("UPDATE" if resize else "CREATE") or ctx.target is None:
            return
        note = resize_note(ctx)
        usage, missing = quota_demand(ctx.obj, (*self.hard, *self.per_namespace))
        for container, key in missing:
            yield violation(
                ctx, "quota", f'container "{container}" must specify {key}: it is under quota '
                f"({'tenant ' + ctx.tenant.name if ctx.tenant else 'namespace ' + ctx.request.namespace}){note}",
                container=container, actual=None, required=key,
            )
        counted = _already_counted(ctx)
        correction: Mapping[str, Decimal]
        if resize:
            previous = _previous_usage(ctx, counted)
            requested = _increase(usage, previous)
            # the resized pod counts in the usage already; a pod the view does not know counts as it was
            correction, sign = (previous if counted is None else {}), 1
        else:
            requested = usage
            correction, sign = (counted or {}), -1  # a re-sent CREATE: the same pod is not counted twice
        if not requested:
            return
        what = note.strip() if resize else "requested"
        if self.hard:
            used = dict(ctx.state.usage_of(ctx.tenant_namespaces()))
            add_usage(used, correction, sign)
            scope = f"tenant {ctx.tenant.name}" if ctx.tenant else f"namespace {ctx.request.namespace}"
            yield from _exceeded(ctx, scope, self.hard, used, requested, what)
        if self.per_namespace:
            ns = ctx.request.namespace
            ns_used = dict(ctx.state.namespace_usage(ns))
            add_usage(ns_used, correction, sign)
            yield from _exceeded(ctx, f"namespace {ns}", self.per_namespace, ns_used, requested, what)


def _already_counted(ctx: ValidationContext) -> Mapping[str, Decimal] | None:
    """What the view already counts for this very pod (a re-sent CREATE, a reservation, the pod being resized);
    None when the view counts no such pod (``{}`` for a pod without a name)."""
    meta = ctx.obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        return {}
    return ctx.state.pod_usage(ctx.request.namespace, name)


def _previous_usage(ctx: ValidationContext, counted: Mapping[str, Decimal] | None) -> Mapping[str, Decimal]:
    """The resized pod's usage before the resize: its old object's, as upstream computes it (without an old
    object, what the view counts for it)."""
    old = ctx.request.old_obj
    return quota_usage(old) if isinstance(old, dict) else (counted or {})


def _increase(new: Mapping[str, Decimal], old: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """``new - old`` per key, only the keys that grow (upstream's SubtractWithNonNegativeResult, zeros dropped)."""
    out: dict[str, Decimal] = {}
    for key, value in new.items():
        before = old.get(key)
        delta = value if before is None else exact_add(value, before.copy_negate())
        if delta > 0:
            out[key] = delta
    return out
