"""defaults.affinity: node affinity, pod affinity and anti-affinity, merged term by term.

- required node affinity: the default's expressions (one nodeSelectorTerm) are
  ANDed into every term of the pod that has no expression on the same key
  (terms are ORed, so each must carry the constraint); the term list is created
  when the pod has none;
- preferred node terms, and required/preferred pod (anti-)affinity terms, are
  appended unless an equal term is already there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.core.mutation import MutationContext
from webhook.core.plan import MAIN_ONLY
from webhook.core.workloads import PREFERRED, REQUIRED


def _append_missing(ctx: MutationContext, owner: dict[str, Any], path: tuple[str | int, ...], key: str,
                    terms: list[Any]) -> None:
    if not terms:
        return
    current = owner.get(key)
    if not isinstance(current, list):
        ctx.put(owner, path, key, terms)
        return
    for term in terms:
        if term not in current:
            ctx.append(current, path + (key,), term)


def _and_into_terms(ctx: MutationContext, selector: dict[str, Any], path: tuple[str | int, ...],
                    term_default: Mapping[str, Any]) -> None:
    terms = selector.get("nodeSelectorTerms")
    if not isinstance(terms, list) or not terms:
        value = [dict(term_default)]
        if isinstance(terms, list):
            ctx.append(terms, path + ("nodeSelectorTerms",), value[0])
        else:
            ctx.put(selector, path, "nodeSelectorTerms", value)
        return
    for index, term in enumerate(terms):
        if not isinstance(term, dict):
            continue
        term_path = path + ("nodeSelectorTerms", index)
        for field in ("matchExpressions", "matchFields"):
            wanted = term_default.get(field) or []
            if not wanted:
                continue
            existing = term.get(field)
            keys = {e.get("key") for e in existing if isinstance(e, dict)} if isinstance(existing, list) else set()
            missing = [e for e in wanted if e.get("key") not in keys]
            if not missing:
                continue
            if not isinstance(existing, list):
                ctx.put(term, term_path, field, missing)
            else:
                for expr in missing:
                    ctx.append(existing, term_path + (field,), expr)


@dataclass(frozen=True, slots=True)
class AffinityMutator:
    affinity: Mapping[str, Any]
    rule: str = "defaults.affinity"
    subresources: frozenset[str] = MAIN_ONLY

    def mutate(self, ctx: MutationContext) -> None:
        spec = ctx.target.spec
        affinity = spec.get("affinity")
        if not isinstance(affinity, dict):
            ctx.put(spec, ctx.path("spec"), "affinity", dict(self.affinity))
            return
        base = ctx.path("spec", "affinity")
        for kind, default in self.affinity.items():
            current = affinity.get(kind)
            if not isinstance(current, dict):
                ctx.put(affinity, base, kind, default)
                continue
            kind_path = base + (kind,)
            if kind == "nodeAffinity":
                required = default.get(REQUIRED)
                if required:
                    term_default = (required.get("nodeSelectorTerms") or [{}])[0]
                    selector = current.get(REQUIRED)
                    if not isinstance(selector, dict):
                        ctx.put(current, kind_path, REQUIRED, required)
                    else:
                        _and_into_terms(ctx, selector, kind_path + (REQUIRED,), term_default)
                _append_missing(ctx, current, kind_path, PREFERRED, default.get(PREFERRED) or [])
            else:  # podAffinity, podAntiAffinity
                _append_missing(ctx, current, kind_path, REQUIRED, default.get(REQUIRED) or [])
                _append_missing(ctx, current, kind_path, PREFERRED, default.get(PREFERRED) or [])
