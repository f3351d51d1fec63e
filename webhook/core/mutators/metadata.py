"""defaults.labels and defaults.annotations: added per key, existing keys untouched."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from webhook.core.mutation import MutationContext
from webhook.core.plan import MAIN_ONLY


@dataclass(frozen=True, slots=True)
class MetadataMapMutator:
    """Adds missing keys to the pod's (or pod template's) ``metadata.<field>`` map."""

    field: str  # "labels" | "annotations"
    values: Mapping[str, str]
    subresources: frozenset[str] = MAIN_ONLY

    @property
    def rule(self) -> str:
        return f"defaults.{self.field}"

    def mutate(self, ctx: MutationContext) -> None:
        root = ctx.target.root
        meta = root.get("metadata")
        if not isinstance(meta, dict):
            ctx.put(root, ctx.path(), "metadata", {self.field: dict(self.values)})
            return
        current = meta.get(self.field)
        if not isinstance(current, dict):
            ctx.put(meta, ctx.path("metadata"), self.field, dict(self.values))
            return
        base = ctx.path("metadata", self.field)
        for key, value in self.values.items():
            if key not in current:
                ctx.put(current, base, key, value)
