"""requireRequests / requireLimits: every container sets a request / limit for the named resources.

A request the API server would default from a limit counts as set. App and init
containers are checked (ephemeral containers cannot have resources). An in-place
resize (``pods/resize``) is judged on its new values, as LimitRanger judges it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from webhook.core.decision import Violation
from webhook.core.plan import ValidationContext
from webhook.core.validators._base import WITH_RESIZE, request_only, resize_note, violation
from webhook.core.workloads import APP_AND_INIT_CONTAINERS, iter_containers


def _section(container: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    resources = container.get("resources")
    section = resources.get(key) if isinstance(resources, dict) else None
    return section if isinstance(section, dict) else {}


@dataclass(frozen=True, slots=True)
class RequireResources:
    section: str  # "requests" | "limits"
    resources: tuple[str, ...]
    kinds: frozenset[str] | None = None
    subresources: frozenset[str] = WITH_RESIZE
    reads_cluster = request_only  # the request alone decides (its verdict may be reused for an identical one)

    @property
    def rule(self) -> str:
        return "requireRequests" if self.section == "requests" else "requireLimits"

    def validate(self, ctx: ValidationContext) -> Iterator[Violation]:
        assert ctx.target is not None
        word = "request" if self.section == "requests" else "limit"
        note = resize_note(ctx)
        for list_name, index, container in iter_containers(ctx.target.spec, APP_AND_INIT_CONTAINERS):
            have = _section(container, self.section)
            limits = _section(container, "limits") if self.section == "requests" else {}
            name = str(container.get("name", index))
            for res in self.resources:
                if have.get(res) is not None or limits.get(res) is not None:
                    continue
                yield violation(
                    ctx, self.rule,
                    f'container "{name}" has no {res} {word} (policy requires {self.section} for '
                    f'{", ".join(self.resources)}){note}',
                    container=name, field=("spec", list_name, index, "resources", self.section, res),
                    actual=None, required=f"{res} {word}",
                )
