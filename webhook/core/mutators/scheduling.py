"""defaults.nodeSelector, defaults.priorityClassName, defaults.topologySpreadConstraints."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webhook.core.mutation import MutationContext
from webhook.core.plan import MAIN_ONLY


@dataclass(frozen=True, slots=True)
class NodeSelectorMutator:
    """Adds missing nodeSelector keys; a key the pod already sets is left as it is."""

    selector: Mapping[str, str]
    rule: str = "defaults.nodeSelector"
    subresources: frozenset[str] = MAIN_ONLY

    def mutate(self, ctx: MutationContext) -> None:
        spec = ctx.target.spec
        current = spec.get("nodeSelector")
        if not isinstance(current, dict):
            ctx.put(spec, ctx.path("spec"), "nodeSelector", dict(self.selector))
            return
        for key, value in self.selector.items():
            if key not in current:
                ctx.put(current, ctx.path("spec", "nodeSelector"), key, value)


@dataclass(frozen=True, slots=True)
class PriorityClassMutator:
    """Sets priorityClassName when the pod has none.

    In a live review the API server's Priority plugin has already written
    ``spec.priority`` (0, or the global default's value). That number is
    removed together with the fill, so the plugin recomputes it from the class when the
    API server reinvokes its built-in plugins after our patch; left in place it
    would contradict the class and the pod would be rejected.
    """

    name: str
    rule: str = "defaults.priorityClassName"
    subresources: frozenset[str] = MAIN_ONLY

    def mutate(self, ctx: MutationContext) -> None:
        spec = ctx.target.spec
        if spec.get("priorityClassName"):
            return
        if "priority" in spec:
            ctx.remove(spec, ctx.path("spec"), "priority")
        ctx.put(spec, ctx.path("spec"), "priorityClassName", self.name)


@dataclass(frozen=True, slots=True)
class TopologySpreadMutator:
    """Appends default topologySpreadConstraints whose topologyKey the pod does not already spread on."""

    constraints: Sequence[Mapping[str, Any]]
    rule: str = "defaults.topologySpreadConstraints"
    subresources: frozenset[str] = MAIN_ONLY

    def mutate(self, ctx: MutationContext) -> None:
        spec = ctx.target.spec
        current = spec.get("topologySpreadConstraints")
        keys = {c.get("topologyKey") for c in current if isinstance(c, dict)} if isinstance(current, list) else set()
        missing = [dict(c) for c in self.constraints if c.get("topologyKey") not in keys]
        if not missing:
            return
        if not isinstance(current, list):
            ctx.put(spec, ctx.path("spec"), "topologySpreadConstraints", missing)
            return
        for constraint in missing:
            ctx.append(current, ctx.path("spec", "topologySpreadConstraints"), constraint)
