"""qosClass: the pod's QoS class, computed as Kubernetes computes it, is at least the required one.

Guaranteed > Burstable > BestEffort: ``qosClass: Burstable`` admits Burstable and
Guaranteed pods. The message says which container keeps the pod below the bar.
An in-place resize (``pods/resize``) is judged on its new values (the API server
itself refuses a resize that changes the class, so a pod admitted under this rule
keeps passing it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from webhook.core.decision import Violation
from webhook.core.plan import ValidationContext
from webhook.core.pod_resources import container_requests_and_limits, qos_class
from webhook.core.quantity import format_resource
from webhook.core.validators._base import WITH_RESIZE, request_only, resize_note, violation
from webhook.core.workloads import APP_AND_INIT_CONTAINERS, iter_containers

RANK = {"BestEffort": 0, "Burstable": 1, "Guaranteed": 2}


def _why_not_guaranteed(spec: Mapping[str, Any]) -> str | None:
    for _, index, container in iter_containers(spec, APP_AND_INIT_CONTAINERS):
        name = container.get("name", index)
        requests, limits = container_requests_and_limits(container)
        for res in ("cpu", "memory"):
            if res not in limits:
                return f'container "{name}" has no {res} limit'
            if requests.get(res) != limits[res]:
                req = requests.get(res)
                shown = format_resource(res, req) if req is not None else "none"
                return f'container "{name}" {res} request {shown} != limit {format_resource(res, limits[res])}'
    return None


@dataclass(frozen=True, slots=True)
class QosClassRule:
    minimum: str
    rule: str = "qosClass"
    kinds: frozenset[str] | None = None
    subresources: frozenset[str] = WITH_RESIZE
    reads_cluster = request_only  # the request alone decides (its verdict may be reused for an identical one)

    def validate(self, ctx: ValidationContext) -> Iterator[Violation]:
        assert ctx.target is not None
        actual = qos_class(ctx.target.spec)
        if RANK[actual] >= RANK[self.minimum]:
            return
        why = _why_not_guaranteed(ctx.target.spec) if self.minimum == "Guaranteed" else \
            "no container sets any cpu or memory request or limit"
        at_least = "" if self.minimum == "Guaranteed" else " or better"
        yield violation(
            ctx, self.rule,
            f"pod QoS class is {actual}, policy requires {self.minimum}{at_least}" + (f": {why}" if why else "")
            + resize_note(ctx),
            actual=actual, required=self.minimum,
        )
