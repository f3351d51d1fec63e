"""maxResources: per-container and per-pod ceilings.

Keys are resource names (bounding both the request and the limit, as a
LimitRange ``max`` does) or ``requests.<res>`` / ``limits.<res>`` (bounding one).
Per-pod values are the pod's effective requests/limits (init containers,
sidecars and overhead counted as Kubernetes counts them). An in-place resize
(``pods/resize``) is judged on its new values, as LimitRanger judges it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal

from webhook.core.decision import Violation
from webhook.core.plan import ValidationContext
from webhook.core.pod_resources import container_requests_and_limits, pod_requests_and_limits
from webhook.core.quantity import format_resource
from webhook.core.validators._base import WITH_RESIZE, request_only, resize_note, violation
from webhook.core.workloads import APP_AND_INIT_CONTAINERS, iter_containers


def split_key(key: str) -> tuple[tuple[str, ...], str]:
    """``cpu`` -> (("requests", "limits"), "cpu"); ``limits.cpu`` -> (("limits",), "cpu")."""
    for section in ("requests", "limits"):
        if key.startswith(section + "."):
            return (section,), key[len(section) + 1:]
    return ("requests", "limits"), key


def _check(ctx: ValidationContext, bounds: Mapping[str, Decimal], values: dict[str, dict[str, Decimal]],
           where: str, container: str | None, field: tuple[str | int, ...] | None,
           scope: str) -> Iterator[Violation]:
    for key, bound in bounds.items():
        sections, res = split_key(key)
        for section in sections:
            value = values[section].get(res)
            if value is not None and value > bound:
                word = "request" if section == "requests" else "limit"
                yield violation(
                    ctx, "maxResources",
                    f"{where} {res} {word} {format_resource(res, value)} exceeds the {scope} maximum "
                    f"{format_resource(res, bound)}{resize_note(ctx)}",
                    container=container,
                    field=(field + ("resources", section, res)) if field is not None else None,
                    actual=format_resource(res, value), required=format_resource(res, bound),
                )


@dataclass(frozen=True, slots=True)
class MaxResources:
    per_container: Mapping[str, Decimal]
    per_pod: Mapping[str, Decimal]
    rule: str = "maxResources"
    kinds: frozenset[str] | None = None
    subresources: frozenset[str] = WITH_RESIZE
    reads_cluster = request_only  # the request alone decides (its verdict may be reused for an identical one)

    def validate(self, ctx: ValidationContext) -> Iterator[Violation]:
        assert ctx.target is not None
        spec = ctx.target.spec
        if self.per_container:
            for list_name, index, container in iter_containers(spec, APP_AND_INIT_CONTAINERS):
                name = str(container.get("name", index))
                requests, limits = container_requests_and_limits(container)
                values = {"requests": requests, "limits": limits}
                yield from _check(ctx, self.per_container, values, f'container "{name}"', name,
                                  ("spec", list_name, index), "per-container")
        if self.per_pod:
            requests, limits = pod_requests_and_limits(spec)
            values = {"requests": requests, "limits": limits}
            yield from _check(ctx, self.per_pod, values, "pod", None, None, "per-pod")
