"""defaults.tolerations: appended unless the pod already tolerates the same key and effect.

An existing toleration covers a default one when its key is the same (or it is
the key-less ``operator: Exists`` that tolerates everything) and its effect is
the same (or empty, which tolerates every effect).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webhook.core.mutation import MutationContext
from webhook.core.plan import MAIN_ONLY


def covers(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    key = existing.get("key") or ""
    if key != (wanted.get("key") or "") and not (key == "" and existing.get("operator") == "Exists"):
        return False
    effect = existing.get("effect") or ""
    return effect == "" or effect == (wanted.get("effect") or "")


@dataclass(frozen=True, slots=True)
class TolerationsMutator:
    tolerations: Sequence[Mapping[str, Any]]
    rule: str = "defaults.tolerations"
    subresources: frozenset[str] = MAIN_ONLY

    def mutate(self, ctx: MutationContext) -> None:
        spec = ctx.target.spec
        current = spec.get("tolerations")
        have = [t for t in current if isinstance(t, dict)] if isinstance(current, list) else []
        missing = [dict(t) for t in self.tolerations if not any(covers(e, t) for e in have)]
        if not missing:
            return
        if not isinstance(current, list):
            ctx.put(spec, ctx.path("spec"), "tolerations", missing)
            return
        for toleration in missing:
            ctx.append(current, ctx.path("spec", "tolerations"), toleration)
