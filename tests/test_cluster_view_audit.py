"""`tenantguard audit` against the test API server: live pods judged as they are, drift reported apart.

A live pod is judged as /validate would judge it (never with our defaults filled in), and
what /mutate would still add is its drift: a pod created while the mutating webhook was down.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import POLICIES, run_cli
from tests.kube_api import KubeAPI

RESTRICTED_POD = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def pod(ns: str, name: str, *, compliant: bool = True, **spec_extra) -> dict:
    """A pod with its limits and requests; ``compliant``: it also carries the restricted
    securityContext and the tenant's label, i.e. everything customer-a's /mutate would add."""
    # as the API server stores it: requests defaulted from the limits
    container = {"name": "c", "image": "i", "resources": {"limits": {"cpu": "1", "memory": "1Gi"},
                                                          "requests": {"cpu": "1", "memory": "1Gi"}}}
    spec: dict = {"containers": [container]}
    meta: dict = {"name": name, "namespace": ns}
    if compliant:
        container["securityContext"] = dict(RESTRICTED_CONTAINER)
        spec["securityContext"] = dict(RESTRICTED_POD)
        meta["labels"] = {"customer": "a"}
    spec.update(spec_extra)
    return {"kind": "Pod", "metadata": meta, "spec": spec, "status": {"phase": "Running"}}


@pytest.fixture
async def cluster(tmp_path: Path):
    async with KubeAPI() as kube:
        kube.create({"kind": "Namespace", "metadata": {"name": "customer-a", "labels": {"customer": "a"}}})
        kube.create({"kind": "Namespace", "metadata": {"name": "customer-a-batch"}})
        kube.create({"kind": "NetworkPolicy", "metadata": {"name": "deny", "namespace": "customer-a"},
                     "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}})
        kube.create(pod("customer-a", "web"))
        kube.create(pod("customer-a", "bare", compliant=False))  # created while /mutate was down
        kube.create(pod("customer-a", "root", securityContext=dict(RESTRICTED_POD, runAsUser=0)))
        kube.create(pod("customer-a-batch", "job"))  # no default-deny in that namespace
        done = pod("customer-a", "finished", hostNetwork=True)
        done["status"] = {"phase": "Succeeded"}
        kube.create(done)
        kube.create(pod("kube-system", "dns", hostNetwork=True))
        config = tmp_path / "kubeconfig"
        config.write_text(kube.kubeconfig())
        yield kube, config


async def test_audit_reports_the_pods_that_would_be_denied(cluster) -> None:
    _, config = cluster
    result = await asyncio.to_thread(run_cli, "audit", "--policies", str(POLICIES), "--kubeconfig", str(config),
                                     "--color", "never")
    assert result.code == 1, result.out + result.err
    lines = result.out.splitlines()
    # summary first: pods per tenant, then in total
    assert lines[0].split() == ["TENANT", "PODS", "ALLOWED", "DENIED", "DRIFT", "WARNED", "AUDITED"]
    assert lines[1].split() == ["customer-a", "4", "1", "3", "1", "4", "0"]  # every pod lacks probes (Warn)
    assert lines[2].split() == ["(no", "tenant)", "1", "1", "0", "0", "0", "0"]  # kube-system: exempt
    assert lines[3].split() == ["total", "5", "2", "3", "1", "4", "0"]
    assert "5 live pods: 2 allowed, 3 would be denied" in result.out  # finished pod skipped
    # then one line per owner (a pod without one is its own), denied first
    owners = [line for line in lines if " — " in line]
    assert [line.split(":")[0] for line in owners] == ["Pod customer-a/bare", "Pod customer-a/root",
                                                      "Pod customer-a-batch/job", "Pod customer-a/web"]
    # judged as it is: the defaults /mutate would have filled do not make it pass
    assert owners[0].startswith("Pod customer-a/bare: DENIED, warned, drift — [customer-a/podSecurity] ")
    assert owners[1].startswith("Pod customer-a/root: DENIED, warned — [customer-a/podSecurity] runAsUser")
    assert owners[2].startswith("Pod customer-a-batch/job: DENIED, warned — [customer-a/networkIsolation] ")
    assert owners[3] == ('Pod customer-a/web: allowed, warned — [probes-advisory/requireProbes] container "c" has '
                         'no liveness probe (livenessProbe) (Warn) (and 1 more finding)')
    assert not any(name in result.out for name in ("finished", "dns"))
    assert "no default-deny NetworkPolicy for Ingress, Egress" in result.out
    # and what /mutate would still set on it is reported as drift, apart from the verdict
    bare = result.out.split("\nPod customer-a/bare:\n")[1].split("\n\n")[0].splitlines()
    assert "  x [customer-a/podSecurity] runAsNonRoot: runAsNonRoot != true" in "\n".join(bare)
    assert '  + add /spec/securityContext {"runAsNonRoot":true,"seccompProfile":{"type":"RuntimeDefault"}}  ' \
        "(customer-a/defaults.securityContext)" in bare
    web = result.out.split("\nPod customer-a/web:\n")[1].split("\n\n")[0].splitlines()
    assert web == ['  ! [probes-advisory/requireProbes] container "c" has no liveness probe (livenessProbe) (Warn)',
                   '  ! [probes-advisory/requireProbes] container "c" has no readiness probe (readinessProbe) (Warn)']


async def test_audit_json_and_namespace_filter(cluster) -> None:
    _, config = cluster
    result = await asyncio.to_thread(run_cli, "audit", "--policies", str(POLICIES), "--kubeconfig", str(config),
                                     "--output", "json", "--namespace", "customer-a")
    assert result.code == 1
    doc = result.json()
    assert {r["name"]: r["allowed"] for r in doc["results"]} == {"bare": False, "root": False, "web": True}
    drift = {r["name"]: r["drift"] for r in doc["results"]}
    assert drift["web"] == [] and drift["root"] == []
    assert {op["path"] for op in drift["bare"]} >= {"/metadata/labels", "/spec/securityContext"}
    bare = next(r for r in doc["results"] if r["name"] == "bare")
    assert {v["rule"] for v in bare["violations"]} >= {"podSecurity"}
    # every finding, each with its enforcement; allowed is decided by the Enforce ones only
    web = next(r for r in doc["results"] if r["name"] == "web")
    assert web["allowed"] is True and {(v["rule"], v["enforcement"]) for v in web["violations"]} == {
        ("requireProbes", "Warn")}
    assert {v["enforcement"] for v in bare["violations"]} == {"Enforce", "Warn"}
    assert bare["owner"] == {"kind": "Pod", "namespace": "customer-a", "name": "bare"}
    summary = doc["summary"]
    assert {k: summary[k] for k in ("allowed", "denied", "drift")} == {"allowed": 1, "denied": 2, "drift": 1}
    assert summary["tenants"] == {"customer-a": {"pods": 3, "allowed": 1, "denied": 2, "skipped": 0, "drift": 1,
                                                 "warned": 3, "audited": 0,
                                                 "findings": {"Enforce": 5, "Warn": 6, "Audit": 0}}}
    assert summary["noTenant"]["pods"] == 0 and summary["totals"]["pods"] == 3
    groups = {g["owner"]["name"]: g for g in doc["groups"]}
    assert list(groups) == ["bare", "root", "web"]  # denied first
    assert groups["bare"]["pods"] == 1 and groups["bare"]["denied"] == 1 and groups["bare"]["podNames"] == ["bare"]
    assert groups["bare"]["findings"] == bare["violations"] and groups["bare"]["drift"] == bare["drift"]


async def test_audit_exit_0_when_clean_and_2_when_unreachable(cluster, tmp_path: Path) -> None:
    kube, config = cluster
    for ns, name in (("customer-a", "root"), ("customer-a", "bare"), ("customer-a-batch", "job")):
        kube.delete("Pod", ns, name)
    result = await asyncio.to_thread(run_cli, "audit", "--policies", str(POLICIES), "--kubeconfig", str(config))
    assert result.code == 0, result.out
    kube.unavailable = True
    result = await asyncio.to_thread(run_cli, "audit", "--policies", str(POLICIES), "--kubeconfig", str(config))
    assert result.code == 2 and "cannot read the cluster" in result.err


async def test_audit_groups_by_owner_without_the_replicasets(cluster) -> None:
    """A cluster that does not list ReplicaSets and Jobs (here: not served; in a cluster: forbidden): a pod of a
    ReplicaSet belongs to the Deployment its name and pod-template-hash label give; a Job's pods to the Job."""
    kube, config = cluster
    kube.delete("Pod", "customer-a", "root")  # room in customer-a's quota (4 cpu) for the pods below
    kube.delete("Pod", "customer-a", "bare")

    def owned(name: str, kind: str, owner: str, labels: dict[str, str]) -> dict:
        made = pod("customer-a", name)
        made["metadata"]["labels"].update(labels)
        made["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1" if kind == "ReplicaSet" else "batch/v1",
                                                "kind": kind, "name": owner, "uid": "u", "controller": True}]
        made["spec"]["containers"][0]["resources"] = {k: {"cpu": "100m", "memory": "128Mi"}
                                                      for k in ("limits", "requests")}
        return made

    kube.create_many([owned(f"api-5d8f7c9b4-x{i}", "ReplicaSet", "api-5d8f7c9b4", {"pod-template-hash": "5d8f7c9b4"})
                      for i in range(3)])
    kube.create(owned("migrate-1-abcde", "Job", "migrate-1", {}))
    result = await asyncio.to_thread(run_cli, "audit", "--policies", str(POLICIES), "--kubeconfig", str(config),
                                     "--color", "never", "--all", "-n", "customer-a")
    owners = [line.split(" — ")[0] for line in result.out.splitlines() if " — " in line]
    assert "Deployment customer-a/api (3 pods): allowed 3, warned 3" in owners
    assert "Job customer-a/migrate-1 (1 pod): allowed 1, warned 1" in owners
    assert "\nDeployment customer-a/api (3 pods: api-5d8f7c9b4-x0, api-5d8f7c9b4-x1, api-5d8f7c9b4-x2):\n" \
        in result.out
    not_found = "HTTP 404 Not Found: the server could not find the requested resource"
    assert result.err.splitlines() == [
        f"note: cannot list ReplicaSets ({not_found} (GET /apis/apps/v1/replicasets)): what owns them is not known",
        f"note: cannot list Jobs ({not_found} (GET /apis/batch/v1/jobs)): what owns them is not known"]
