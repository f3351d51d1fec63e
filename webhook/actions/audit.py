"""Which live pods break the policies, and which lack their defaults (``tenantguard audit``).

Every running or pending pod of a snapshot (``webhook.views.snapshot``) is judged AS IT IS,
as ``/validate`` would judge it were it created now: the rules against the snapshot (the
pod's own usage is not counted twice against quota), never our defaults, which a live pod
either carries or does not. Separately, its **drift**: what ``/mutate`` would still change
on it (a pod created while the mutating webhook was down or timed out, which fails open,
or before a default was added to the policy). Terminal pods are skipped.

At scale the pods are read by owner: each pod's controller is followed up through the
snapshot's ReplicaSets and Jobs (Pod -> ReplicaSet -> Deployment, Pod -> Job -> CronJob;
a pod without an owner is its own), and the pods of one owner with the same verdict,
findings and drift form one :class:`Group`. :func:`tally` counts pods per tenant.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from webhook.actions.dry_run import ENFORCEMENTS, Result, findings
from webhook.core.audit import is_live, judge_live
from webhook.core.decision import Violation
from webhook.core.patch import PatchOp
from webhook.core.plan import PolicySet
from webhook.views.snapshot import Snapshot, controller_of

# (kind, namespace, name) -> the controller's (kind, name), None when it has none: Snapshot.owners
Owners = Mapping[tuple[str, str, str], tuple[str, str] | None]
Progress = Callable[[int, int], None]  # (pods judged, pods to judge)


@dataclass(frozen=True, slots=True, order=True)
class Owner:
    """What a pod belongs to, at the top of its owner chain (the pod itself when it has no owner)."""

    namespace: str
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    def as_json(self) -> dict[str, str]:
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name}


def owner_of(pod: Mapping[str, Any], owners: Owners) -> Owner:
    """The top of ``pod``'s owner chain in ``owners``. A ReplicaSet the snapshot does not hold (it could not
    list them) is taken to belong to the Deployment its name and the pod's ``pod-template-hash`` label
    name, as the Deployment controller names its ReplicaSets."""
    meta = pod.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    ns = str(meta.get("namespace") or "")
    ref = controller_of(pod)
    if ref is None:
        return Owner(ns, "Pod", str(meta.get("name") or ""))
    kind, name = ref
    seen: set[tuple[str, str]] = set()
    while (kind, name) not in seen:  # an owner cycle (hand-made references) ends where it repeats
        seen.add((kind, name))
        key = (kind, ns, name)
        if key in owners:
            above = owners[key]
            if above is None:
                break
            kind, name = above
            continue
        labels = meta.get("labels")
        suffix = labels.get("pod-template-hash") if kind == "ReplicaSet" and isinstance(labels, dict) else None
        if isinstance(suffix, str) and suffix and name.endswith("-" + suffix) and len(name) > len(suffix) + 1:
            return Owner(ns, "Deployment", name[:-len(suffix) - 1])
        break
    return Owner(ns, kind, name)


@dataclass(slots=True)
class Audited(Result):
    """A live pod's verdict as it is, ``drift``: the ops ``/mutate`` would still apply to it, and its owner."""

    drift: list[PatchOp] = dataclasses.field(default_factory=list)
    owner: Owner | None = None

    def as_json(self) -> dict[str, Any]:
        out = {k: v for k, v in Result.as_json(self).items() if k not in ("object", "patch")}
        # every finding, structured, with its enforcement (``allowed`` is from the Enforce ones only)
        out["violations"] = [v.as_json() for v in findings(self.decision)]
        out["drift"] = [op.as_json() for op in self.drift]
        if self.owner is not None:
            out["owner"] = self.owner.as_json()
        return out


def audit(snapshot: Snapshot, policies: PolicySet, namespaces: Iterable[str] = (), *,
          today: date | None = None, progress: Progress | None = None) -> list[Audited]:
    """The live pods of ``snapshot`` (of ``namespaces`` only, when given), each judged as it is, with its owner;
    ``progress(judged, total)`` is called after each pod."""
    wanted = set(namespaces)
    pods = [pod for pod in snapshot.pods
            if is_live(pod) and (not wanted or pod["metadata"].get("namespace", "") in wanted)]
    pods.sort(key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"]["name"]))
    results = []
    for index, pod in enumerate(pods, 1):
        # judged as the server's background audit judges it (webhook.core.audit): a dry-run CREATE, never
        # added to the snapshot (its own usage is already in it), and its drift
        request, decision, drift = judge_live(pod, policies, snapshot.state, today=today)
        results.append(Audited(request, decision, pod, None, list(drift), owner_of(pod, snapshot.owners)))
        if progress is not None:
            progress(index, len(pods))
    return results


# --- reading many pods at once ----------------------------------------------------------------------------

@dataclass(slots=True)
class Counts:
    """Pods counted by verdict; ``warned``/``audited``: pods with Warn/Audit findings; ``findings``: how many
    findings of each enforcement."""

    pods: int = 0
    allowed: int = 0
    denied: int = 0
    skipped: int = 0
    drift: int = 0
    warned: int = 0
    audited: int = 0
    findings: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(ENFORCEMENTS, 0))

    def add(self, result: Audited) -> None:
        d = result.decision
        self.pods += 1
        self.allowed += d.allowed
        self.denied += not d.allowed
        self.skipped += d.skipped is not None
        self.drift += bool(result.drift)
        self.warned += bool(d.warned)
        self.audited += bool(d.audit)
        for mode, found in zip(ENFORCEMENTS, (d.violations, d.warned, d.audit)):
            self.findings[mode] += len(found)

    def as_json(self) -> dict[str, Any]:
        return {"pods": self.pods, "allowed": self.allowed, "denied": self.denied, "skipped": self.skipped,
                "drift": self.drift, "warned": self.warned, "audited": self.audited,
                "findings": dict(self.findings)}


@dataclass(slots=True)
class Tally:
    tenants: dict[str, Counts]  # by tenant name, sorted
    no_tenant: Counts  # pods no tenant claims (cluster policies only, or exempt)
    totals: Counts


def tally(results: Iterable[Audited]) -> Tally:
    tenants: dict[str, Counts] = {}
    no_tenant, totals = Counts(), Counts()
    for r in results:
        tenant = r.decision.tenant
        (no_tenant if tenant is None else tenants.setdefault(tenant, Counts())).add(r)
        totals.add(r)
    return Tally(dict(sorted(tenants.items())), no_tenant, totals)


def summary(results: list[Audited]) -> dict[str, Any]:
    """``allowed``, ``denied``, ``drift`` (pods), then the same counts and more per tenant and in total."""
    counts = tally(results)
    return {"allowed": counts.totals.allowed, "denied": counts.totals.denied, "drift": counts.totals.drift,
            "tenants": {name: c.as_json() for name, c in counts.tenants.items()},
            "noTenant": counts.no_tenant.as_json(), "totals": counts.totals.as_json()}


def _finding_key(v: Violation) -> tuple[Any, ...]:
    return (v.policy, v.rule, v.enforcement, v.status, v.check, v.container, v.field, v.message)


def _drift_key(op: PatchOp) -> tuple[str, str, str, str]:
    return (op.op, op.path, op.policy, op.rule)


@dataclass(slots=True)
class Group:
    """Pods of one owner with the same tenant, verdict, findings and drift (ops by path and provenance: the
    values shown are the first pod's)."""

    owner: Owner
    pods: list[Audited]

    @property
    def first(self) -> Audited:
        return self.pods[0]

    @property
    def tenant(self) -> str | None:
        return self.first.decision.tenant

    @property
    def allowed(self) -> bool:
        return self.first.decision.allowed

    @property
    def skipped(self) -> str | None:
        return self.first.decision.skipped

    @property
    def findings(self) -> list[Violation]:
        return findings(self.first.decision)

    @property
    def drift(self) -> list[PatchOp]:
        return self.first.drift

    def as_json(self) -> dict[str, Any]:
        n = len(self.pods)
        out: dict[str, Any] = {
            "owner": self.owner.as_json(), "tenant": self.tenant, "pods": n,
            "allowed": n if self.allowed else 0, "denied": 0 if self.allowed else n,
            "findings": [v.as_json() for v in self.findings],
            "drift": [op.as_json() for op in self.drift],
            "podNames": [r.name for r in self.pods],
        }
        if self.skipped:
            out["skipped"] = self.skipped
        return out


def groups(results: Iterable[Audited]) -> list[Group]:
    """The pods grouped by owner and, within an owner, by distinct verdict, findings and drift: owners with a
    denied pod first, then by namespace, kind and name; within an owner, denied groups first, the largest
    first."""
    found: dict[tuple[Any, ...], Group] = {}
    for r in results:
        owner = r.owner or Owner(r.request.namespace, "Pod", r.name)
        d = r.decision
        key = (owner, d.tenant, d.allowed, d.skipped, tuple(map(_finding_key, findings(d))),
               tuple(map(_drift_key, r.drift)))
        group = found.get(key)
        if group is None:
            found[key] = Group(owner, [r])
        else:
            group.pods.append(r)
    denied = {g.owner for g in found.values() if not g.allowed}
    return sorted(found.values(), key=lambda g: (g.owner not in denied, g.owner, g.allowed, -len(g.pods)))
