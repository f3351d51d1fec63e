"""Leader election on a Lease, against the wire-level fake API server (tests/kube_api.py).

Durations are short (tenths of a second) so that takeovers happen within the test; every
wait is on an event (the elector's leading/following events, or a request reaching the
fake server), never a sleep.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from kubernetes import client

from tests.kube_api import KubeAPI
from webhook.server.leader import LeaderElector, LeaseSettings

WAIT = 10.0


def api_client(kube: KubeAPI, agent: str = "") -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = kube.url
    api = client.ApiClient(configuration)
    if agent:
        api.user_agent = agent
    return api


def elector(kube: KubeAPI, identity: str, *, duration: float = 0.6, deadline: float = 0.4,
            retry: float = 0.05) -> LeaderElector:
    return LeaderElector(api_client(kube, f"candidate-{identity}"), LeaseSettings(
        namespace="tenantguard", identity=identity, lease_duration=duration, renew_deadline=deadline,
        retry_period=retry))


@pytest.fixture
async def kube():
    async with KubeAPI() as api:
        yield api


async def first_leader(*electors: LeaderElector) -> LeaderElector:
    waits = {asyncio.ensure_future(e.wait_leading()): e for e in electors}
    done, pending = await asyncio.wait(waits, timeout=WAIT, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    assert done, "nobody took the Lease"
    return waits[next(iter(done))]


async def test_one_candidate_of_two_leads_and_the_lease_names_it(kube: KubeAPI) -> None:
    a, b = elector(kube, "a"), elector(kube, "b")
    a.start()
    b.start()
    try:
        leader = await first_leader(a, b)
        other = b if leader is a else a
        # let the other candidate read the Lease again after the leader renewed it: it still follows
        start = len(kube.requests)
        renewal = await kube.wait_for_request(lambda r: r.verb == "patch" and r.seq >= start)
        for _ in range(2):  # both candidates read the Lease again after the renewal
            read = await kube.wait_for_request(lambda r: r.verb == "get" and r.seq > renewal.seq)
            renewal = read
        assert not other.leading
        lease = kube.get("Lease", "tenantguard", "tenantguard-leader")
        assert lease["spec"]["holderIdentity"] == leader.identity
        assert lease["spec"]["leaseTransitions"] == 0
    finally:
        await a.stop()
        await b.stop()


async def test_a_released_lease_is_taken_over_at_the_next_try_not_after_its_duration(kube: KubeAPI) -> None:
    a = elector(kube, "a", duration=300, deadline=200)
    a.start()
    await asyncio.wait_for(a.wait_leading(), WAIT)
    b = elector(kube, "b", duration=300, deadline=200)
    b.start()
    try:
        await a.stop()  # releases: holderIdentity "" and a 1 s duration
        await asyncio.wait_for(b.wait_leading(), WAIT)  # far sooner than the 300 s duration
        lease = kube.get("Lease", "tenantguard", "tenantguard-leader")
        assert lease["spec"]["holderIdentity"] == "b"
        assert lease["spec"]["leaseTransitions"] == 1
    finally:
        await b.stop()


async def test_a_leader_that_vanishes_is_replaced_once_its_lease_runs_out(kube: KubeAPI) -> None:
    a = elector(kube, "a")
    a.start()
    await asyncio.wait_for(a.wait_leading(), WAIT)
    b = elector(kube, "b")
    b.start()
    try:
        await a.stop(release=False)  # a crash: the Lease still names "a"
        assert kube.get("Lease", "tenantguard", "tenantguard-leader")["spec"]["holderIdentity"] == "a"
        await asyncio.wait_for(b.wait_leading(), WAIT)
        assert kube.get("Lease", "tenantguard", "tenantguard-leader")["spec"]["holderIdentity"] == "b"
    finally:
        await b.stop()


async def test_a_leader_cut_off_from_the_api_server_stops_leading_after_the_renew_deadline(kube: KubeAPI) -> None:
    a = elector(kube, "a")
    a.start()
    try:
        await asyncio.wait_for(a.wait_leading(), WAIT)
        kube.unavailable = True
        await asyncio.wait_for(a.wait_following(), WAIT)
        assert not a.leading
        kube.unavailable = False
        await asyncio.wait_for(a.wait_leading(), WAIT)  # renews its own, still unexpired Lease
        assert a.transitions == 2
    finally:
        await a.stop()


async def test_a_lease_renewed_by_another_holder_is_never_taken_whatever_its_renew_time_says(kube: KubeAPI) -> None:
    # the holder's clock may be far behind ours: only a record that stopped changing counts as expired
    kube.create({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": "tenantguard-leader", "namespace": "tenantguard"},
                 "spec": {"holderIdentity": "elsewhere", "leaseDurationSeconds": 1,
                          "renewTime": "2001-01-01T00:00:00.000000Z", "acquireTime": "2001-01-01T00:00:00.000000Z",
                          "leaseTransitions": 4}})
    b = elector(kube, "b", duration=0.6)
    b.start()
    try:
        for second in range(3):  # "elsewhere" renews (with its old clock) while b keeps trying
            seen = len(kube.requests)
            await kube.wait_for_request(lambda r: r.verb == "get" and r.seq >= seen)
            lease = kube.get("Lease", "tenantguard", "tenantguard-leader")
            lease = {**lease, "spec": {**lease["spec"], "renewTime": f"2001-01-01T00:00:0{second + 1}.000000Z"}}
            kube.update(lease)
            assert not b.leading
        await asyncio.wait_for(b.wait_leading(), WAIT)  # once "elsewhere" stops renewing
        assert kube.get("Lease", "tenantguard", "tenantguard-leader")["spec"]["leaseTransitions"] == 5
    finally:
        await b.stop()


async def test_a_leader_whose_requests_hang_stops_leading_before_another_can_take_over(kube: KubeAPI) -> None:
    a, b = elector(kube, "a", duration=1.0, deadline=0.6), elector(kube, "b", duration=1.0, deadline=0.6)
    a.start()
    try:
        await asyncio.wait_for(a.wait_leading(), WAIT)
        b.start()
        kube.stall(lambda r: r.agent == "candidate-a")  # a's connection black-holed: sent, never answered
        await asyncio.wait_for(a.wait_following(), WAIT)
        await asyncio.wait_for(b.wait_leading(), WAIT)
        assert not a.leading and b.leading  # never two at once: a stopped at its renew deadline
        await asyncio.wait_for(a.stop(), WAIT)  # its hung attempt does not hold the stop
    finally:
        kube.stall(None)
        await a.stop()
        await b.stop()
    assert kube.get("Lease", "tenantguard", "tenantguard-leader")["spec"]["holderIdentity"] == ""


async def test_lease_times_are_micro_times_and_durations_whole_seconds(kube: KubeAPI) -> None:
    a = elector(kube, "a", duration=0.6)
    a.start()
    try:
        await asyncio.wait_for(a.wait_leading(), WAIT)
    finally:
        await a.stop(release=False)
    spec = kube.get("Lease", "tenantguard", "tenantguard-leader")["spec"]
    assert spec["leaseDurationSeconds"] == 1  # 0.6 s rounded up: the API server refuses 0
    for key in ("acquireTime", "renewTime"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|\+00:00)", spec[key]), (key, spec)
