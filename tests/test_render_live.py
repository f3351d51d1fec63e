"""`tenantguard render --kubeconfig` against the test API server: the live Namespaces decide what is rendered."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests import k8s_schema
from tests.conftest import POLICIES, run_cli
from tests.kube_api import KubeAPI
from tests.test_render import GLOBS, SELECTED, STATE, _by, _namespaces, _netpol_names, _write
from webhook.inputs.yamlio import load_documents


@pytest.fixture
async def cluster(tmp_path: Path):
    async with KubeAPI() as kube:
        kube.create_many(STATE)
        config = tmp_path / "kubeconfig"
        config.write_text(kube.kubeconfig())
        yield kube, config


async def test_glob_and_selector_tenants_are_rendered_from_the_live_namespaces(cluster, tmp_path: Path) -> None:
    kube, config = cluster
    policies = _write(tmp_path / "p.yaml", [GLOBS, SELECTED])
    live = await asyncio.to_thread(run_cli, "render", "--policies", policies, "--kubeconfig", str(config),
                                   "--context", "test")
    assert live.code == 0, live.err
    objects = load_documents(live.out, "render")
    for obj in objects:
        k8s_schema.assert_valid(obj)
    assert _namespaces(objects) == ["shop", "shop-dev", "shop-prod", "reports"]
    assert _by(objects, "ResourceQuota", "shop-dev")["spec"]["hard"] == {"requests.cpu": "4"}
    assert _by(objects, "ResourceQuota", "reports")["spec"]["hard"] == {"pods": "10"}
    assert _netpol_names(objects, "reports") == ["tenantguard-default-deny", "tenantguard-allow-tenant"]
    labels = _by(objects, "Namespace", "reports")["metadata"]["labels"]
    assert labels["owner"] == "data" and labels["kubernetes.io/metadata.name"] == "reports"
    assert "unknown without cluster state" not in live.err
    # one paged list of Namespaces, nothing else
    assert {r.plural for r in kube.requests} == {"namespaces"}
    assert all(not r.watch and r.query.get("limit") for r in kube.requests)
    # the same output as from a --cluster-state file holding the same Namespaces
    from_file = run_cli("render", "--policies", policies, "--cluster-state", _write(tmp_path / "s.yaml", STATE))
    assert from_file.out == live.out


async def test_a_new_namespace_is_picked_up_and_a_terminating_one_skipped(cluster, tmp_path: Path) -> None:
    kube, config = cluster
    kube.create({"kind": "Namespace", "metadata": {"name": "shop-eu"}})
    kube.create({"kind": "Namespace", "metadata": {"name": "shop-old"}, "status": {"phase": "Terminating"}})
    result = await asyncio.to_thread(run_cli, "render", "--policies", str(_write(tmp_path / "p.yaml", [GLOBS])),
                                     "--kubeconfig", str(config), "--only", "quota")
    assert result.code == 0, result.err
    objects = load_documents(result.out, "render")
    assert [o["metadata"]["namespace"] for o in objects] == ["shop", "shop-dev", "shop-eu", "shop-prod"]
    assert "note: namespace shop-old is terminating; nothing rendered for it" in result.err


async def test_the_shipped_policies_against_a_live_cluster(cluster, tmp_path: Path) -> None:
    kube, config = cluster
    kube.create({"kind": "Namespace", "metadata": {"name": "customer-a-dev"}})
    kube.create({"kind": "Namespace", "metadata": {"name": "billing", "labels": {"customer": "a"}}})
    result = await asyncio.to_thread(run_cli, "render", "--policies", str(POLICIES), "--kubeconfig", str(config),
                                     "--tenant", "customer-a", "--only", "quota,limits")
    assert result.code == 0, result.err
    objects = load_documents(result.out, "render")
    assert sorted({o["metadata"]["namespace"] for o in objects}) == ["billing", "customer-a", "customer-a-dev"]
    assert {(o["kind"], o["metadata"]["namespace"]) for o in objects} >= {
        ("ResourceQuota", "billing"), ("LimitRange", "billing"),
        ("ResourceQuota", "customer-a-dev"), ("LimitRange", "customer-a-dev")}


async def test_an_unreachable_cluster_exits_2_with_one_line(cluster, tmp_path: Path) -> None:
    kube, config = cluster
    kube.unavailable = True
    result = await asyncio.to_thread(run_cli, "render", "--policies", str(POLICIES), "--kubeconfig", str(config))
    assert result.code == 2 and result.out == ""
    assert result.err == ("tenantguard: cannot read the cluster's namespaces: HTTP 503 Service Unavailable: "
                          "the server is unavailable\n")
    assert result.err.count("\n") == 1


def test_a_missing_kubeconfig_exits_2_with_one_line(tmp_path: Path) -> None:
    result = run_cli("render", "--policies", str(POLICIES), "--kubeconfig", str(tmp_path / "missing"))
    assert result.code == 2 and result.out == ""
    assert result.err.startswith("tenantguard: cannot read the cluster")
    assert result.err.count("\n") == 1


async def test_a_refused_connection_exits_2_with_one_line(tmp_path: Path) -> None:
    async with KubeAPI() as kube:
        config = tmp_path / "kubeconfig"
        config.write_text(kube.kubeconfig())
    # the server is gone: nothing listens on its port any more
    result = await asyncio.to_thread(run_cli, "render", "--policies", str(POLICIES), "--kubeconfig", str(config))
    assert result.code == 2 and result.out == ""
    assert result.err.startswith("tenantguard: cannot read the cluster's namespaces:")
    assert "Connection refused" in result.err and result.err.count("\n") == 1
