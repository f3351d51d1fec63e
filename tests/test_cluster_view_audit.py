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
    assert lines[0].split() == ["NAMESPACE", "POD", "TENANT", "VERDICT", "DRIFT", "RULES"]
    rows = {tuple(line.split()[:4]) for line in lines[1:] if line.strip() and "DENIED" in line}
    assert ("customer-a", "root", "customer-a", "DENIED") in rows
    assert ("customer-a-batch", "job", "customer-a", "DENIED") in rows
    # judged as it is: the defaults /mutate would have filled do not make it pass
    assert ("customer-a", "bare", "customer-a", "DENIED") in rows
    assert not any(r[1] in ("web", "finished", "dns") for r in rows)
    assert "5 live pods: 2 allowed, 3 would be denied" in result.out  # finished pod skipped, dns exempt
    assert "no default-deny NetworkPolicy for Ingress, Egress" in result.out
    # and what /mutate would still set on it is reported as drift, apart from the verdict
    assert "customer-a/bare: drift" in result.out
    assert "/spec/securityContext" in result.out and "(customer-a/defaults.securityContext)" in result.out
    assert "customer-a/web: drift" not in result.out


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
    assert doc["summary"] == {"allowed": 1, "denied": 2, "drift": 1}


async def test_audit_exit_0_when_clean_and_2_when_unreachable(cluster, tmp_path: Path) -> None:
    kube, config = cluster
    for ns, name in (("customer-a", "root"), ("customer-a", "bare"), ("customer-a-batch", "job")):
        kube.delete("Pod", ns, name)
    result = await asyncio.to_thread(run_cli, "audit", "--policies", str(POLICIES), "--kubeconfig", str(config))
    assert result.code == 0, result.out
    kube.unavailable = True
    result = await asyncio.to_thread(run_cli, "audit", "--policies", str(POLICIES), "--kubeconfig", str(config))
    assert result.code == 2 and "cannot read the cluster" in result.err
