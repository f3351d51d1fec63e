"""A live pod judged as it is: the verdict ``/validate`` would give were it created now, and its drift.

Shared by ``tenantguard audit`` (webhook.actions.audit) and the server's background audit
(webhook.server.background_audit), so both judge a live pod alike:

- the pod is judged as a dry-run CREATE against a view that already counts it (its own
  usage is not counted twice against quota), never with our defaults applied: a live pod
  either carries them or does not;
- its **drift** is what ``/mutate`` would still change on it (a pod created while the
  mutating webhook was down or timed out, which fails open, or before a default was added);
- terminal pods (Succeeded, Failed) are not live and are not judged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from webhook.core.decision import Decision
from webhook.core.engine import evaluate
from webhook.core.patch import PatchOp
from webhook.core.pipeline import UsageView, judge
from webhook.core.plan import PolicySet
from webhook.core.request import AdmissionRequest, from_manifest


def is_live(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status")
    return not isinstance(status, Mapping) or status.get("phase") not in ("Succeeded", "Failed")


def judge_live(pod: dict[str, Any], policies: PolicySet, state: UsageView, *,
               today: date | None = None) -> tuple[AdmissionRequest, Decision, list[PatchOp]]:
    """(request, decision, drift) for one live pod."""
    meta = pod.get("metadata")
    ns = str(meta.get("namespace") or "") if isinstance(meta, Mapping) else ""
    request = dataclasses.replace(from_manifest(pod, default_namespace=ns, today=today), dry_run=True)
    decision = judge(request, policies, state, mutate=False)
    drift = evaluate(request, policies, state, validate=False).patch
    return request, decision, drift


@dataclass(slots=True)
class PolicyCounts:
    """What an audit found for one policy: live pods it applies to, would deny, and lack its defaults."""

    pods: int = 0
    denied: int = 0
    drift: int = 0

    def as_json(self) -> dict[str, int]:
        return {"pods": self.pods, "denied": self.denied, "drift": self.drift}


@dataclass(slots=True)
class AuditTally:
    """Counts per policy name over many judged pods."""

    policies: dict[str, PolicyCounts] = field(default_factory=dict)
    pods: int = 0
    denied: int = 0
    drift: int = 0

    def add(self, decision: Decision, drift: Iterable[PatchOp]) -> None:
        drift = list(drift)
        self.pods += 1
        self.denied += not decision.allowed
        self.drift += bool(drift)
        denying = {v.policy for v in decision.violations}
        drifting = {op.policy for op in drift}
        for name in decision.policies:
            counts = self.policies.setdefault(name, PolicyCounts())
            counts.pods += 1
            counts.denied += name in denying
            counts.drift += name in drifting
