"""requireProbes: every app container defines the named probes (init containers never run probes)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from webhook.core.decision import Violation
from webhook.core.plan import ValidationContext
from webhook.core.validators._base import MAIN_ONLY, request_only, violation
from webhook.core.workloads import APP_CONTAINERS, PROBE_FIELDS, iter_containers


@dataclass(frozen=True, slots=True)
class RequireProbes:
    probes: tuple[str, ...]
    rule: str = "requireProbes"
    kinds: frozenset[str] | None = None
    subresources: frozenset[str] = MAIN_ONLY
    reads_cluster = request_only  # the request alone decides (its verdict may be reused for an identical one)

    def validate(self, ctx: ValidationContext) -> Iterator[Violation]:
        assert ctx.target is not None
        for list_name, index, container in iter_containers(ctx.target.spec, APP_CONTAINERS):
            name = str(container.get("name", index))
            for probe in self.probes:
                field = PROBE_FIELDS[probe]
                if container.get(field) is None:
                    yield violation(
                        ctx, self.rule, f'container "{name}" has no {probe} probe ({field})',
                        container=name, field=("spec", list_name, index, field), actual=None, required=field,
                    )
