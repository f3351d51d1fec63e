"""Policies as custom resources, their status, the Lease and the background audit's PolicyReports.

Everything runs against the wire-level fake API server (tests/kube_api.py) with the CRDs
that ``tenantguard schema --crd`` generates and the upstream PolicyReport CRD installed, and
a real ``WebhookServer`` reading them through a kubeconfig. Every wait is on an event: a
reload attempt, a request reaching the API server, an audit run finishing.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest
import yaml

from tests.kube_api import KubeAPI, Request
from tests.test_server_http import pod, review
from tests.test_server_reload import client_context, samples
from webhook.actions.certs import generate_self_signed
from webhook.policy.crd import crds
from webhook.server.runner import WebhookServer
from webhook.server.settings import ServerSettings

UPSTREAM = Path(__file__).parent / "data" / "upstream" / "wgpolicyk8s.io_policyreports.yaml"
REPORT_CRD = yaml.safe_load(UPSTREAM.read_text())
REPORT_SCHEMA = REPORT_CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]

LIMITS = {
    "apiVersion": "tenantguard.io/v1alpha1", "kind": "ClusterPolicy", "metadata": {"name": "limits"},
    "spec": {"rules": {"requireLimits": ["cpu"]}},
}
SHOP = {
    "apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": "shop"},
    "spec": {"namespaces": ["shop"], "rules": {"requireRequests": ["memory"]}},
}


def cpu_limited_pod(name: str = "web", namespace: str = "default") -> dict[str, Any]:
    obj = pod()
    obj["metadata"].update(name=name, namespace=namespace)
    obj["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1"}}
    return obj


def bare_pod(name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}"},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
            "status": {"phase": "Running"}}


@pytest.fixture
def tls(tmp_path: Path) -> dict[str, Path]:
    ca, cert, key = generate_self_signed(["localhost", "127.0.0.1"], tmp_path / "tls")
    return {"ca": ca, "cert": cert, "key": key}


@pytest.fixture
async def kube() -> AsyncIterator[KubeAPI]:
    async with KubeAPI(crds=[*crds(), REPORT_CRD]) as api:
        yield api


def settings(tmp_path: Path, tls: dict[str, Path], kube: KubeAPI, **kw: Any) -> ServerSettings:
    config = tmp_path / "kubeconfig"
    config.write_text(kube.kubeconfig())
    kw.setdefault("policies_from", "cluster")
    kw.setdefault("policies", ())
    return ServerSettings(cert=str(tls["cert"]), key=str(tls["key"]), host="127.0.0.1", port=0,
                          kubeconfig=str(config), reload_interval=0.02, lease_namespace="tenantguard", **kw)


async def verdict(server: WebhookServer, ca: Path, obj: dict[str, Any]) -> dict[str, Any]:
    url = f"https://localhost:{server.port}/validate"
    async with aiohttp.ClientSession() as session, session.post(
            url, data=json.dumps(review(obj, namespace=obj["metadata"]["namespace"])), headers={"Content-Type": "application/json"},
            ssl=client_context(ca)) as resp:
        assert resp.status == 200, await resp.text()
        return (await resp.json())["response"]


async def loaded(server: WebhookServer, predicate) -> None:
    """Until the store has attempted a load after which ``predicate(server)`` holds."""
    async with asyncio.timeout(10):
        while not predicate(server):
            await server.policies.wait_for_attempts(server.policies.attempts + 1)


def status_write(kind_plural: str, name: str):
    def matches(req: Request) -> bool:
        return (req.plural, req.verb, req.subresource, req.name) == (kind_plural, "patch", "status", name)
    return matches


def ready(obj: dict[str, Any]) -> dict[str, Any]:
    [condition] = [c for c in obj.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
    return condition


async def test_policies_are_read_from_the_cluster_and_follow_its_changes(tmp_path: Path, tls, kube: KubeAPI) -> None:
    kube.create(copy.deepcopy(LIMITS))
    async with WebhookServer(settings(tmp_path, tls, kube)) as server:
        await loaded(server, lambda s: s.policies.loaded)
        assert names(server) == ["limits"]
        no_limits = cpu_limited_pod()
        no_limits["spec"]["containers"][0]["resources"] = {}
        assert not (await verdict(server, tls["ca"], no_limits))["allowed"]
        assert (await verdict(server, tls["ca"], cpu_limited_pod()))["allowed"]

        # an edit is served without a restart: cpu and memory limits now
        changed = copy.deepcopy(kube.get("ClusterPolicy", "", "limits"))
        changed["spec"]["rules"]["requireLimits"] = ["cpu", "memory"]
        kube.update(changed)
        await loaded(server, lambda s: required_limits(s) == ["cpu", "memory"])
        answer = await verdict(server, tls["ca"], cpu_limited_pod())
        assert not answer["allowed"] and "memory" in answer["status"]["message"]

        # a TenantPolicy appears; then the ClusterPolicy is deleted: nothing is required of default
        kube.create(copy.deepcopy(SHOP))
        kube.delete("ClusterPolicy", "", "limits")
        await loaded(server, lambda s: names(s) == ["shop"])
        answer = await verdict(server, tls["ca"], no_limits)
        assert answer["allowed"], answer
        assert not (await verdict(server, tls["ca"], bare_pod("x", "shop")))["allowed"]


def names(server: WebhookServer) -> list[str]:
    current = server.policies.current
    return [p.name for p in (*current.cluster, *current.tenants)]


def required_limits(server: WebhookServer) -> list[str]:
    [policy] = server.policies.current.cluster
    return list(policy.document.rules.requireLimits or ())  # type: ignore[attr-defined]


async def test_validate_answers_503_until_the_policies_are_listed(tmp_path: Path, tls, kube: KubeAPI) -> None:
    kube.hang_watches()  # irrelevant to lists; the list itself is held back below
    kube.unavailable = True
    async with WebhookServer(settings(tmp_path, tls, kube)) as server:
        url = f"https://localhost:{server.port}"
        async with aiohttp.ClientSession() as session:
            resp = await session.post(url + "/validate", data=json.dumps(review(cpu_limited_pod(), namespace="default")),
                                      headers={"Content-Type": "application/json"}, ssl=client_context(tls["ca"]))
            assert resp.status == 503 and "policies" in await resp.text()
            resp = await session.get(url + "/readyz", ssl=client_context(tls["ca"]))
            assert resp.status == 503
        kube.unavailable = False
        kube.hang_watches(False)
        await loaded(server, lambda s: s.policies.loaded)
        assert names(server) == []  # an empty cluster: an empty set, served
        assert (await verdict(server, tls["ca"], cpu_limited_pod()))["allowed"]


async def test_a_broken_policy_keeps_the_last_good_set_and_its_status_names_the_field(
        tmp_path: Path, tls, kube: KubeAPI) -> None:
    kube.create(copy.deepcopy(LIMITS))
    kube.create(copy.deepcopy(SHOP))
    async with WebhookServer(settings(tmp_path, tls, kube)) as server:
        await loaded(server, lambda s: s.policies.loaded)
        good = server.policies.generation
        await kube.wait_for_request(status_write("clusterpolicies", "limits"))
        await kube.wait_for_request(status_write("tenantpolicies", "shop"))
        for kind, name in (("ClusterPolicy", "limits"), ("TenantPolicy", "shop")):
            obj = kube.get(kind, "", name)
            condition = ready(obj)
            assert condition["status"] == "True" and condition["reason"] == "Loaded", condition
            assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"] == 1
            assert condition["message"] == "enforced"

        # valid on its own (the CRD schema takes it), but it claims a namespace another tenant has
        rival = copy.deepcopy(SHOP)
        rival["metadata"]["name"] = "shop2"
        kube.create(rival)
        seen = len(kube.requests)
        await kube.wait_for_request(lambda r: r.seq >= seen and status_write("tenantpolicies", "shop2")(r))
        assert server.policies.generation == good  # the last good set is still served
        shop2 = kube.get("TenantPolicy", "", "shop2")
        condition = ready(shop2)
        assert condition["status"] == "False" and condition["reason"] == "Invalid"
        assert condition["message"].startswith("spec.namespaces: shop: namespace already claimed by TenantPolicy shop")
        assert shop2["status"]["observedGeneration"] == 1
        # the others are unchanged and still enforced (the last good set holds them): they stay Ready
        assert ready(kube.get("ClusterPolicy", "", "limits"))["reason"] == "Loaded"
        assert ready(kube.get("TenantPolicy", "", "shop"))["reason"] == "Loaded"

        # an edit of a valid policy meanwhile cannot be enforced: Blocked, naming the culprit
        edited = copy.deepcopy(kube.get("ClusterPolicy", "", "limits"))
        edited["spec"]["rules"]["requireLimits"] = ["cpu", "memory"]
        kube.update(edited)
        seen = len(kube.requests)
        await kube.wait_for_request(lambda r: r.seq >= seen and status_write("clusterpolicies", "limits")(r))
        limits = ready(kube.get("ClusterPolicy", "", "limits"))
        assert limits["status"] == "False" and limits["reason"] == "Blocked"
        assert "shop2 is invalid" in limits["message"] and good in limits["message"]
        assert server.policies.generation == good and required_limits(server) == ["cpu"]
        no_limits = cpu_limited_pod()
        no_limits["spec"]["containers"][0]["resources"] = {}
        assert not (await verdict(server, tls["ca"], no_limits))["allowed"]

        # fixed (the rival goes): the edit is enforced and Ready; unchanged objects are not written again
        kube.delete("TenantPolicy", "", "shop2")
        seen = len(kube.requests)
        await kube.wait_for_request(lambda r: r.seq >= seen and status_write("clusterpolicies", "limits")(r))
        assert server.policies.generation != good and required_limits(server) == ["cpu", "memory"]
        assert ready(kube.get("ClusterPolicy", "", "limits"))["reason"] == "Loaded"
        writes = len(kube.writes("tenantpolicies")) + len(kube.writes("clusterpolicies"))
        # comparing again with nothing changed writes nothing
        assert await server.duties.status.sync() == 0
        assert len(kube.writes("tenantpolicies")) + len(kube.writes("clusterpolicies")) == writes


async def test_only_the_elected_replica_writes_status(tmp_path: Path, tls, kube: KubeAPI) -> None:
    kube.create(copy.deepcopy(LIMITS))
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    first_dir.mkdir()
    second_dir.mkdir()
    async with WebhookServer(settings(first_dir, tls, kube, lease_identity="first")) as first, \
            WebhookServer(settings(second_dir, tls, kube, lease_identity="second")) as second:
        await loaded(first, lambda s: s.policies.loaded)
        await loaded(second, lambda s: s.policies.loaded)
        electors = [first.duties.elector, second.duties.elector]
        await asyncio.wait([asyncio.ensure_future(e.wait_leading()) for e in electors],
                           return_when=asyncio.FIRST_COMPLETED)
        leader = next(s for s in (first, second) if s.duties.elector.leading)
        follower = second if leader is first else first
        assert not follower.duties.elector.leading
        await kube.wait_for_request(status_write("clusterpolicies", "limits"))
        lease = kube.get("Lease", "tenantguard", "tenantguard-leader")
        assert lease["spec"]["holderIdentity"] == leader.duties.elector.identity

        changed = copy.deepcopy(kube.get("ClusterPolicy", "", "limits"))
        changed["spec"]["rules"]["requireLimits"] = ["memory"]
        kube.update(changed)
        seen = len(kube.requests)
        await kube.wait_for_request(lambda r: r.seq >= seen and status_write("clusterpolicies", "limits")(r))
        await loaded(follower, lambda s: required_limits(s) == ["memory"])
        assert follower.duties.status.writes == 0 and follower.duties.status.failures == 0
        status_patches = [r for r in kube.writes("clusterpolicies") if r.subresource == "status"]
        assert len(status_patches) == 2  # one per generation, never one per replica

        # the leader goes: it releases the Lease and the other takes over and writes
        await leader.duties.stop()
        leader.duties = None
        await follower.duties.elector.wait_leading()
        again = copy.deepcopy(kube.get("ClusterPolicy", "", "limits"))
        again["spec"]["rules"]["requireLimits"] = ["cpu"]
        kube.update(again)
        seen = len(kube.requests)
        await kube.wait_for_request(lambda r: r.seq >= seen and status_write("clusterpolicies", "limits")(r))
        await follower.duties.elector.wait_leading()
        assert ready(kube.get("ClusterPolicy", "", "limits"))["observedGeneration"] == 3


def _reports(kube: KubeAPI) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["namespace"]: r for r in kube.objects("PolicyReport")}


async def test_background_audit_keeps_one_capped_report_per_namespace(tmp_path: Path, tls, kube: KubeAPI) -> None:
    kube.create(copy.deepcopy(SHOP))
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "clean"}})
    for i in range(7):
        kube.create(bare_pod(f"bare-{i}", "shop"))  # no memory request: fail
    ok = bare_pod("fine", "shop")
    ok["spec"]["containers"][0]["resources"] = {"requests": {"memory": "64Mi"}}
    kube.create(ok)
    kube.create(bare_pod("other", "clean"))  # no tenant policy judges it: no report
    async with WebhookServer(settings(tmp_path, tls, kube, audit_interval=0.01, report_max_results=5)) as server:
        audit = server.duties.audit
        first = await audit.wait_runs(1)
        assert first.error is None, first.error
        assert (first.pods, first.denied, first.created, first.reports) == (9, 7, 1, 1)
        reports = _reports(kube)
        assert set(reports) == {"shop"}, "a clean namespace gets no report"
        report = reports["shop"]
        jsonschema.validate(report, REPORT_SCHEMA)
        assert report["metadata"]["name"] == "tenantguard"
        # one result per rule per pod: requireRequests (1 pass, 7 fail) and the tenant's implicit
        # affinityNamespaces boundary (8 pass)
        assert report["summary"] == {"pass": 9, "fail": 7, "warn": 0, "error": 0, "skip": 0}
        assert len(report["results"]) == 5  # the cap: the worst kept, the count of the others said
        assert {r["result"] for r in report["results"]} == {"fail"}
        assert report["metadata"]["annotations"]["tenantguard.io/results-omitted"] == "11"
        assert all(r["source"] == "tenantguard" and r["policy"] == "shop" for r in report["results"])

        # nothing changed: the next run writes nothing
        second = await audit.wait_runs(audit.runs + 1)
        assert (second.writes, second.unchanged) == (0, 1)
        text = server.metrics.render().decode()
        assert samples(text, "tenantguard_leader") == {(): 1.0}
        assert samples(text, "tenantguard_api_writes_total")[(("object", "policyreport"), ("result", "success"))] == 1
        assert samples(text, "tenantguard_background_audit_pods")[(("outcome", "denied"),)] == 7
        assert samples(text, "tenantguard_background_audit_runs_total")[(("result", "success"),)] >= 2

        # every pod fixed: the report goes
        for i in range(7):
            kube.delete("Pod", "shop", f"bare-{i}")
        third = await audit.wait_runs(audit.runs + 2)
        assert third.deleted == 1 or not _reports(kube)
        assert not _reports(kube)

        # the counts of the last audit are in the policy's status
        await kube.wait_for_request(lambda r: status_write("tenantpolicies", "shop")(r) and
                                    "audit" in json.dumps(r.body))
        counts = kube.get("TenantPolicy", "", "shop")["status"]["audit"]
        assert counts["pods"] >= 1 and "since" in counts


async def test_clean_reports_when_asked_and_the_writes_are_budgeted(tmp_path: Path, tls, kube: KubeAPI) -> None:
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    ok = bare_pod("fine", "shop")
    ok["spec"]["containers"][0]["resources"] = {"requests": {"memory": "64Mi"}}
    kube.create(ok)
    kube.create(copy.deepcopy(SHOP))
    async with WebhookServer(settings(tmp_path, tls, kube, audit_interval=0.01, report_clean=True,
                                      write_rate=1000)) as server:
        run = await server.duties.audit.wait_runs(1)
        assert run.created == 1
        [report] = kube.objects("PolicyReport")
        assert report["summary"]["pass"] == 2 and report["summary"]["fail"] == 0
        assert server.duties.budget.writes >= 1


async def test_a_first_load_that_fails_is_retried_when_the_objects_are_fixed(tmp_path: Path, tls,
                                                                              kube: KubeAPI) -> None:
    kube.create(copy.deepcopy(SHOP))
    rival = copy.deepcopy(SHOP)
    rival["metadata"]["name"] = "shop2"
    kube.create(rival)
    async with WebhookServer(settings(tmp_path, tls, kube)) as server:
        await kube.wait_for_request(status_write("tenantpolicies", "shop2"))
        assert not server.policies.loaded and not server.ready
        assert ready(kube.get("TenantPolicy", "", "shop2"))["reason"] == "Invalid"
        assert ready(kube.get("TenantPolicy", "", "shop"))["reason"] == "Blocked"
        assert "no policies" in ready(kube.get("TenantPolicy", "", "shop"))["message"]
        kube.delete("TenantPolicy", "", "shop2")
        await loaded(server, lambda s: s.policies.loaded)
        assert names(server) == ["shop"]
        await kube.wait_for_request(lambda r: status_write("tenantpolicies", "shop")(r) and
                                    "Loaded" in json.dumps(r.body))


# --- what a review found: each of these failed before its fix ---------------------------------------------------

OTHER = {"apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": "other"},
         "spec": {"namespaces": ["other"], "rules": {"requireRequests": ["memory"]}}}


async def test_an_object_deleted_and_created_again_is_judged_as_the_new_one(tmp_path: Path, tls,
                                                                             kube: KubeAPI) -> None:
    kube.create(copy.deepcopy(OTHER))
    kube.create(copy.deepcopy(SHOP))
    async with WebhookServer(settings(tmp_path, tls, kube)) as server:
        await loaded(server, lambda s: s.policies.loaded)
        await kube.wait_for_request(status_write("tenantpolicies", "shop"))
        # kubectl replace --force: the same name, generation 1 again, now claiming another tenant's namespace
        kube.delete("TenantPolicy", "", "shop")
        bad = copy.deepcopy(SHOP)
        bad["spec"]["namespaces"] = ["other"]
        kube.create(bad)
        seen = len(kube.requests)
        await kube.wait_for_request(lambda r: r.seq >= seen and status_write("tenantpolicies", "shop")(r) and
                                    "Invalid" in json.dumps(r.body))
        written = [r.body["status"]["conditions"][0]["reason"] for r in kube.requests[seen:]
                   if status_write("tenantpolicies", "shop")(r)]
        assert "Loaded" not in written, written
        assert ready(kube.get("TenantPolicy", "", "shop"))["reason"] == "Invalid"


async def test_a_status_write_lost_to_the_network_is_made_again(tmp_path: Path, tls, kube: KubeAPI) -> None:
    import urllib3

    kube.create(copy.deepcopy(LIMITS))
    async with WebhookServer(settings(tmp_path, tls, kube)) as server:
        status = server.duties.status
        await kube.wait_for_request(status_write("clusterpolicies", "limits"))
        real = status._custom.patch_cluster_custom_object_status
        calls: list[str] = []

        def flaky(*args: Any, **kwargs: Any) -> Any:
            calls.append(args[3])
            if len(calls) == 1:
                raise urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))
            return real(*args, **kwargs)

        status._custom.patch_cluster_custom_object_status = flaky
        changed = copy.deepcopy(kube.get("ClusterPolicy", "", "limits"))
        changed["spec"]["rules"]["requireLimits"] = ["cpu", "memory"]
        kube.update(changed)
        await kube.wait_for_request(lambda r: status_write("clusterpolicies", "limits")(r) and
                                    r.body["status"]["observedGeneration"] == 2, timeout=20)
        assert calls == ["limits", "limits"] and status.failures == 1
        assert kube.get("ClusterPolicy", "", "limits")["status"]["observedGeneration"] == 2


async def test_a_new_leader_keeps_the_audit_counts_it_finds(tmp_path: Path, tls, kube: KubeAPI) -> None:
    kube.create(copy.deepcopy(SHOP))
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    kube.create(bare_pod("bare", "shop"))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with WebhookServer(settings(tmp_path / "a", tls, kube, lease_identity="a", audit_interval=0.01)) as a, \
            WebhookServer(settings(tmp_path / "b", tls, kube, lease_identity="b", audit_interval=0.01)) as b:
        await kube.wait_for_request(lambda r: status_write("tenantpolicies", "shop")(r) and
                                    bool((r.body or {}).get("status", {}).get("audit")))
        leader = a if a.duties.elector.leading else b
        follower = b if leader is a else a
        before = kube.get("TenantPolicy", "", "shop")["status"]["audit"]
        await leader.duties.stop()
        leader.duties = None
        seen = len(kube.requests)
        await follower.duties.elector.wait_leading()
        await follower.duties.audit.wait_runs(follower.duties.audit.runs + 2)
        assert await follower.duties.status.sync() == 0
        assert not [r for r in kube.requests[seen:] if status_write("tenantpolicies", "shop")(r)]
        assert kube.get("TenantPolicy", "", "shop")["status"]["audit"] == before  # its `since` too


async def test_a_report_of_our_name_that_is_not_ours_is_left_alone(tmp_path: Path, tls, kube: KubeAPI) -> None:
    kube.create(copy.deepcopy(SHOP))
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    kube.create(bare_pod("bare", "shop"))
    foreign = {"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
               "metadata": {"name": "tenantguard", "namespace": "shop"}, "summary": {"pass": 1}, "results": []}
    kube.create(foreign)
    async with WebhookServer(settings(tmp_path, tls, kube, audit_interval=0.01)) as server:
        audit = server.duties.audit
        runs = [await audit.wait_runs(n) for n in (1, 2, 3)]
        assert [r.failed for r in runs] == [0, 0, 0]
        assert [r.created for r in runs] == [0, 0, 0]
        creates = [r for r in kube.requests if r.plural == "policyreports" and r.verb == "create"]
        assert len(creates) == 1  # tried once, then left alone
    assert kube.get("PolicyReport", "shop", "tenantguard")["summary"] == {"pass": 1}


async def test_an_edit_that_changes_no_result_rewrites_no_report(tmp_path: Path, tls, kube: KubeAPI) -> None:
    kube.create(copy.deepcopy(SHOP))
    kube.create(copy.deepcopy(OTHER))
    for ns in ("shop", "other"):
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        kube.create(bare_pod("bare", ns))
    async with WebhookServer(settings(tmp_path, tls, kube, audit_interval=0.01)) as server:
        audit = server.duties.audit
        await audit.wait_runs(1)
        before = {r["metadata"]["namespace"]: r["metadata"]["resourceVersion"] for r in kube.objects("PolicyReport")}
        assert set(before) == {"shop", "other"}
        edited = copy.deepcopy(kube.get("TenantPolicy", "", "other"))
        edited["spec"]["rules"]["requireRequests"] = ["memory", "cpu"]  # a new set; shop's results the same
        kube.update(edited)
        generation = server.policies.generation
        await loaded(server, lambda s: s.policies.generation != generation)
        await audit.wait_runs(audit.runs + 2)
        after = {r["metadata"]["namespace"]: r["metadata"]["resourceVersion"] for r in kube.objects("PolicyReport")}
        assert after["shop"] == before["shop"]
        # a label another tool puts on a report is no reason to rewrite it either
        labelled = copy.deepcopy(kube.get("PolicyReport", "shop", "tenantguard"))
        labelled["metadata"]["labels"]["team"] = "shop"
        kube.update(labelled)
        version = kube.get("PolicyReport", "shop", "tenantguard")["metadata"]["resourceVersion"]
        run = await audit.wait_runs(audit.runs + 2)
        assert run.writes == 0
        assert kube.get("PolicyReport", "shop", "tenantguard")["metadata"]["resourceVersion"] == version


async def test_no_report_is_written_after_the_server_stopped(tmp_path: Path, tls, kube: KubeAPI) -> None:
    import threading

    kube.create(copy.deepcopy(SHOP))
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    kube.create(bare_pod("bare", "shop"))
    server = WebhookServer(settings(tmp_path, tls, kube, audit_interval=0.01))
    await server.__aenter__()
    audit = server.duties.audit
    real = audit._custom.create_namespaced_custom_object
    started, release = asyncio.Event(), threading.Event()
    loop = asyncio.get_running_loop()

    def slow(*args: Any, **kwargs: Any) -> Any:  # a slow API server, mid-write
        loop.call_soon_threadsafe(started.set)
        release.wait(10)
        return real(*args, **kwargs)

    audit._custom.create_namespaced_custom_object = slow
    await asyncio.wait_for(started.wait(), 10)
    stop_called = asyncio.Event()
    stop = audit.stop

    async def stopping_audit() -> None:
        stop_called.set()
        await stop()

    audit.stop = stopping_audit  # type: ignore[method-assign]
    stopping = asyncio.ensure_future(server.__aexit__(None, None, None))
    await asyncio.wait_for(stop_called.wait(), 10)
    release.set()  # the write in flight goes on now, while the server stops
    await stopping
    writes = [(r.verb, r.plural, (r.body or {}).get("spec", {}).get("holderIdentity")) for r in kube.requests
              if r.write]
    released = max(i for i, w in enumerate(writes) if w[1] == "leases" and w[2] == "")
    reports = [i for i, w in enumerate(writes) if w[1] == "policyreports"]
    assert reports and reports[-1] < released, writes
