"""Which live pods break the policies, and which lack their defaults (``tenantguard audit``).

Every running or pending pod of a snapshot (``webhook.views.snapshot``) is judged AS IT IS,
as ``/validate`` would judge it were it created now: the rules against the snapshot (the
pod's own usage is not counted twice against quota), never our defaults, which a live pod
either carries or does not. Separately, its **drift**: what ``/mutate`` would still change
on it (a pod created while the mutating webhook was down or timed out, which fails open,
or before a default was added to the policy). Terminal pods are skipped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from webhook.actions.dry_run import Result
from webhook.core.engine import evaluate
from webhook.core.patch import PatchOp
from webhook.core.pipeline import judge
from webhook.core.plan import PolicySet
from webhook.core.request import from_manifest
from webhook.views.snapshot import Snapshot


@dataclass(slots=True)
class Audited(Result):
    """A live pod's verdict as it is, and ``drift``: the ops ``/mutate`` would still apply to it."""

    drift: list[PatchOp] = dataclasses.field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        out = {k: v for k, v in Result.as_json(self).items() if k not in ("object", "patch")}
        out["drift"] = [op.as_json() for op in self.drift]
        return out


def _live(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def audit(snapshot: Snapshot, policies: PolicySet, namespaces: Iterable[str] = (), *,
          today: date | None = None) -> list[Audited]:
    """The live pods of ``snapshot`` (of ``namespaces`` only, when given), each judged as it is."""
    wanted = set(namespaces)
    results = []
    for pod in sorted(snapshot.pods, key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"]["name"])):
        ns = pod["metadata"].get("namespace", "")
        if not _live(pod) or (wanted and ns not in wanted):
            continue
        # judged as a dry-run CREATE: never added to the snapshot (its own usage is already in it)
        request = dataclasses.replace(from_manifest(pod, default_namespace=ns, today=today), dry_run=True)
        decision = judge(request, policies, snapshot.state, mutate=False)
        drift = evaluate(request, policies, snapshot.state, validate=False).patch
        results.append(Audited(request, decision, pod, drift))
    return results


def summary(results: list[Audited]) -> dict[str, int]:
    return {"allowed": sum(r.decision.allowed for r in results),
            "denied": sum(not r.decision.allowed for r in results),
            "drift": sum(bool(r.drift) for r in results)}
