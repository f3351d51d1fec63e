"""Admission decisions on the watch-backed view: one tenant, three namespaces, one shared quota.

Reservations make the second of two concurrent over-quota creations fail,
the watch releases them without double counting, dry-runs never count, and
isolation is judged once the view knows the NetworkPolicies.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from decimal import Decimal

import pytest
from kubernetes import client

from tests.kube_api import KubeAPI
from tests.test_cluster_view import FAST, WAIT, namespace, pod
from webhook.views.watched import ViewSettings, WatchedClusterState
from webhook.core.pipeline import judge
from webhook.core.request import AdmissionRequest, from_manifest
from webhook.policy.loader import SourceDoc, build_policy_set

SHOP = {
    "apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": "shop"},
    "spec": {
        "namespaces": ["shop", "shop-dev", "shop-batch", "shop-*"],
        "rules": {"networkIsolation": {"defaultDeny": ["Ingress"]}},
        "quota": {"hard": {"requests.cpu": "4", "limits.cpu": "8", "pods": "10"}},
    },
}
BANK = {
    "apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": "bank"},
    "spec": {"namespaceSelector": {"matchLabels": {"tenant": "bank"}}},
}
POLICIES = build_policy_set([SourceDoc(SHOP, "shop", 1), SourceDoc(BANK, "bank", 1)])
NAMESPACES = ("shop", "shop-dev", "shop-batch")


def deny_all(ns: str) -> dict:
    return {"kind": "NetworkPolicy", "metadata": {"name": "default-deny", "namespace": ns},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}


def create(obj: dict, **changes) -> AdmissionRequest:
    return dataclasses.replace(from_manifest(obj), **changes)


def tenant_cpu(view: WatchedClusterState) -> Decimal:
    return sum((view.namespace_usage(ns).get("requests.cpu", Decimal(0)) for ns in NAMESPACES), Decimal(0))


@pytest.fixture
async def kube():
    async with KubeAPI() as api:
        for ns in NAMESPACES:
            api.create(namespace(ns))
            api.create(deny_all(ns))
        api.create(pod("shop", "web", cpu="1"))
        api.create(pod("shop-dev", "api", cpu="1"))
        api.create(pod("shop-batch", "job", cpu="500m"))
        yield api


def make_view(kube: KubeAPI, settings: ViewSettings = FAST) -> WatchedClusterState:
    configuration = client.Configuration()
    configuration.host = kube.url
    return WatchedClusterState(client.ApiClient(configuration), settings, owns_client=True)


@pytest.fixture
async def view(kube):
    v = make_view(kube)
    await v.start()
    assert await v.wait_synced(WAIT)
    await kube.wait_for_watchers("pods")
    yield v
    await v.stop()


async def test_two_concurrent_creations_the_second_over_quota_fails(kube: KubeAPI, view: WatchedClusterState) -> None:
    assert tenant_cpu(view) == Decimal("2.5")
    first = create(pod("shop", "a", cpu="1"))
    second = create(pod("shop-dev", "b", cpu="1"))  # each fits alone (3.5 <= 4); not both (4.5)
    decisions = await asyncio.gather(asyncio.to_thread(judge, first, POLICIES, view),
                                     asyncio.to_thread(judge, second, POLICIES, view))
    allowed = [d for d in decisions if d.allowed]
    denied = [d for d in decisions if not d.allowed]
    assert len(allowed) == 1 and len(denied) == 1
    [violation] = denied[0].violations
    assert violation.rule == "quota"
    assert violation.message == "tenant shop: requests.cpu 3500m + 1 requested > 4 hard"
    assert violation.actual == {"used": "3500m", "requested": "1"}
    assert tenant_cpu(view) == Decimal("3.5")  # the reservation counts before the watch reports the pod
    assert len(view.store.reservations()) == 1

    # the API server creates the admitted pod; the watch confirms it and the reservation is released,
    # never counting the pod twice on the way
    winner = first if decisions[0].allowed else second
    seen: list[Decimal] = []

    def confirmed() -> bool:
        seen.append(tenant_cpu(view))
        return not view.store.reservations() and view.store.pod_count() == 4

    kube.create(dict(winner.obj))
    assert await view.wait_until(confirmed, WAIT)
    assert set(seen) == {Decimal("3.5")}

    loser = second if winner is first else first
    assert not judge(loser, POLICIES, view).allowed  # still over quota, now from live usage
    kube.delete("Pod", "shop", "web")
    assert await view.wait_until(lambda: tenant_cpu(view) == Decimal("2.5"), WAIT)
    assert judge(loser, POLICIES, view).allowed


async def test_what_is_never_reserved(view: WatchedClusterState) -> None:
    big = pod("shop", "big", cpu="1")
    assert judge(create(big, dry_run=True), POLICIES, view).allowed  # dry-run: judged, never counted
    assert judge(create(pod("shop", "huge", cpu="10")), POLICIES, view).allowed is False  # denied
    update = create(pod("shop", "web", cpu="1"), operation="UPDATE", old_obj=pod("shop", "web", cpu="1"))
    assert judge(update, POLICIES, view).allowed
    assert judge(create(pod("shop", "p", cpu="1")), POLICIES, view, validate=False).allowed  # mutate only
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "shop"},
                  "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
                      "metadata": {"labels": {"a": "b"}}, "spec": pod("shop", "x", cpu="3")["spec"]}}}
    assert judge(create(deployment), POLICIES, view).allowed
    assert view.store.reservations() == {}
    assert tenant_cpu(view) == Decimal("2.5")


async def test_a_resent_create_is_not_counted_twice(view: WatchedClusterState) -> None:
    request = create(pod("shop", "again", cpu="1500m"))
    assert judge(request, POLICIES, view).allowed
    assert tenant_cpu(view) == 4
    assert judge(request, POLICIES, view).allowed  # the API server retried the same admission
    assert tenant_cpu(view) == 4


async def test_generate_name_pods_are_reserved_until_the_ttl_once_the_watch_is_heard(kube: KubeAPI) -> None:
    now = [0.0]
    settings = dataclasses.replace(FAST, clock=lambda: now[0], reservation_ttl=30.0, stale_after=1e9)
    async with make_view(kube, settings) as view:
        assert await view.wait_synced(WAIT)
        await kube.wait_for_watchers("pods")
        nameless = pod("shop", "", cpu="1")
        nameless["metadata"] = {"generateName": "job-", "namespace": "shop"}
        assert judge(create(nameless), POLICIES, view).allowed
        assert tenant_cpu(view) == Decimal("3.5")
        now[0] += 29.0
        assert tenant_cpu(view) == Decimal("3.5")
        now[0] += 2.0  # the create never showed up (another webhook denied it, say) ...
        assert tenant_cpu(view) == Decimal("3.5")  # ... but the watch said nothing since: still counted
        kube.bookmark("pods")  # the watch is alive and current: now the reservation is released
        assert await view.wait_until(lambda: tenant_cpu(view) == Decimal("2.5"), WAIT)
        assert view.store.reservations() == {}


async def test_a_generate_name_pod_releases_its_reservation_when_the_watch_adds_it(kube: KubeAPI,
                                                                                   view: WatchedClusterState) -> None:
    nameless = pod("shop", "", cpu="1")
    nameless["metadata"] = {"generateName": "web-5d8c-", "namespace": "shop"}
    assert judge(create(nameless), POLICIES, view).allowed
    assert tenant_cpu(view) == Decimal("3.5") and len(view.store.reservations()) == 1
    created = copy.deepcopy(nameless)
    created["metadata"]["name"] = "web-5d8c-x7k2p"  # the API server names it after admission
    kube.create(created)
    assert await view.wait_until(lambda: not view.store.reservations(), WAIT)
    assert tenant_cpu(view) == Decimal("3.5")  # counted once: the live pod instead of its reservation


async def test_network_isolation_is_judged_once_the_view_knows_the_network_policies(kube: KubeAPI) -> None:
    fresh = pod("shop-new", "p", cpu="100m")
    idle = make_view(kube)  # not started: knows nothing yet
    decision = judge(create(fresh), POLICIES, idle)
    assert decision.allowed and any("networkIsolation] not checked" in w for w in decision.warnings)
    async with make_view(kube) as view:
        assert await view.wait_synced(WAIT)
        decision = judge(create(fresh, dry_run=True), POLICIES, view)
        assert not decision.allowed
        assert [v.rule for v in decision.violations] == ["networkIsolation"]
        assert "namespace shop-new has no default-deny NetworkPolicy for Ingress" in decision.violations[0].message
        kube.create(namespace("shop-new"))
        kube.create(deny_all("shop-new"))
        assert await view.wait_until(lambda: len(view.network_policies("shop-new")) == 1, WAIT)
        decision = judge(create(fresh, dry_run=True), POLICIES, view)
        assert decision.allowed and decision.warnings == []
    await asyncio.to_thread(idle._api.close)


async def test_namespace_labels_from_the_watch_resolve_selector_tenants(kube: KubeAPI,
                                                                        view: WatchedClusterState) -> None:
    request = create(pod("acme", "p"))
    assert judge(request, POLICIES, view).tenant is None
    kube.create(namespace("acme", tenant="bank"))
    assert await view.wait_until(lambda: view.namespace_labels("acme") is not None, WAIT)
    assert judge(request, POLICIES, view).tenant == "bank"
    kube.update(namespace("acme", tenant="other"))
    assert await view.wait_until(lambda: view.namespace_labels("acme").get("tenant") == "other", WAIT)
    assert judge(request, POLICIES, view).tenant is None


async def test_an_in_place_resize_reserves_its_increase_until_the_watch_reports_it(kube: KubeAPI,
                                                                                  view: WatchedClusterState) -> None:
    """pods/resize is judged against the tenant quota with the pod's increase; an admitted resize counts
    that increase until the watch reports the resized pod, so two concurrent resizes cannot both fit."""
    live = kube.get("Pod", "shop", "web")  # 1 cpu; the tenant uses 2.5 of 4
    bigger = copy.deepcopy(live)
    bigger["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "2", "memory": "64Mi"}}
    resize = create(bigger, operation="UPDATE", old_obj=live, subresource="resize")
    assert judge(resize, POLICIES, view).allowed  # 2.5 + 1 <= 4
    assert tenant_cpu(view) == Decimal("3.5")
    other = kube.get("Pod", "shop-dev", "api")
    grown = copy.deepcopy(other)
    grown["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "2", "memory": "64Mi"}}
    denied = judge(create(grown, operation="UPDATE", old_obj=other, subresource="resize"), POLICIES, view)
    assert not denied.allowed and "resize of pod api" in denied.violations[0].message  # 3.5 + 1 > 4
    kube.update(bigger)  # the API server stores the resize; the watch reports it
    assert await view.wait_until(lambda: not view.store.reservations(), WAIT)
    assert tenant_cpu(view) == Decimal("3.5")
