"""The cluster view's store on its own: usage exactly as quota_usage counts it, kept per namespace."""

from __future__ import annotations

import random
from decimal import Decimal

from webhook.views.ledger import Reservation
from webhook.views.store import ClusterStore, usage_key
from webhook.core.pod_resources import quota_usage

QUANTITIES = ["0", "1m", "100m", "250m", "1", "1500m", "64Mi", "128Mi", "1Gi", "1.5Gi", "2G", "1e3"]


def _resources(rng: random.Random) -> dict:
    out: dict = {}
    for section in ("requests", "limits"):
        if rng.random() < 0.7:
            out[section] = {r: rng.choice(QUANTITIES)
                            for r in rng.sample(["cpu", "memory", "ephemeral-storage", "nvidia.com/gpu"], 2)}
    return out


def random_pod(rng: random.Random, index: int) -> dict:
    spec: dict = {"containers": [{"name": f"c{i}", "image": "i", "resources": _resources(rng)}
                                 for i in range(rng.randint(1, 3))],
                  "nodeName": f"node-{rng.randint(0, 9)}"}
    if rng.random() < 0.4:
        spec["initContainers"] = [{"name": "init", "image": "i", "resources": _resources(rng),
                                   **({"restartPolicy": "Always"} if rng.random() < 0.5 else {})}]
    if rng.random() < 0.2:
        spec["overhead"] = {"cpu": rng.choice(QUANTITIES), "memory": "32Mi"}
    if rng.random() < 0.15:
        spec["resources"] = {"requests": {"cpu": rng.choice(QUANTITIES)}, "limits": {"cpu": "2"}}
    status: dict = {"phase": rng.choice(["Pending", "Running", "Running", "Succeeded", "Failed"]),
                    "podIP": f"10.0.0.{index % 250}"}
    if rng.random() < 0.2:
        status["containerStatuses"] = [{"name": "c0", "resources": {"requests": {"cpu": rng.choice(QUANTITIES)}},
                                        "allocatedResources": {"cpu": rng.choice(QUANTITIES)}}]
        if rng.random() < 0.5:
            status["conditions"] = [{"type": "PodResizePending", "reason": rng.choice(["Infeasible", "Deferred"])}]
    return {"kind": "Pod", "metadata": {"name": f"p{index}", "namespace": f"ns{index % 3}",
                                        "labels": {"i": str(index)}}, "spec": spec, "status": status}


def test_cached_usage_is_quota_usage_for_every_pod() -> None:
    rng = random.Random(4)
    store = ClusterStore()
    pods = [random_pod(rng, i) for i in range(3000)]
    pods += [dict(p, metadata={"name": f"copy{i}", "namespace": "x"}) for i, p in enumerate(pods[:500])]
    for pod in pods:
        assert store._usage_of(pod) == quota_usage(pod), pod
    assert len(store._by_key) < len(pods)  # pods that differ only in names, labels, nodes share it


def test_usage_key_ignores_what_quota_usage_ignores_and_sees_what_it_reads() -> None:
    base = random_pod(random.Random(1), 1)
    other = dict(base, metadata={"name": "other", "namespace": "elsewhere"})
    assert usage_key(base) == usage_key(other)
    changed = dict(base, status=dict(base["status"], phase="Failed" if base["status"]["phase"] != "Failed"
                                     else "Running"))
    assert usage_key(base) != usage_key(changed)


def test_sums_stay_exact_through_replace_apply_and_delete() -> None:
    rng = random.Random(7)
    store = ClusterStore()
    pods = [random_pod(rng, i) for i in range(300)]
    store.replace("Pod", [store.compact("Pod", p) for p in pods[:200]])
    for pod in pods[200:]:
        store.apply("Pod", "ADDED", pod)
    for pod in pods[:50]:
        store.apply("Pod", "DELETED", pod)
    live = pods[50:]
    for ns in ("ns0", "ns1", "ns2"):
        expected: dict[str, Decimal] = {}
        for pod in live:
            if pod["metadata"]["namespace"] == ns:
                for key, value in quota_usage(pod).items():
                    expected[key] = expected.get(key, Decimal(0)) + value
        got = store.namespace_usage(ns)
        assert {k: v for k, v in got.items() if v} == {k: v for k, v in expected.items() if v}
    for pod in live:
        store.apply("Pod", "DELETED", pod)
    assert store.pod_count() == 0 and store.namespace_usage("ns0") == {}


def test_many_milli_values_add_up_exactly() -> None:
    store = ClusterStore()
    pods = [{"kind": "Pod", "metadata": {"name": f"p{i}", "namespace": "n"},
             "spec": {"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "1m"}}}]}}
            for i in range(10_000)]
    store.replace("Pod", [store.compact("Pod", p) for p in pods])
    assert store.namespace_usage("n")["requests.cpu"] == Decimal(10)


def test_an_unparseable_pod_counts_as_a_pod() -> None:
    store = ClusterStore()
    store.apply("Pod", "ADDED", {"kind": "Pod", "metadata": {"name": "p", "namespace": "n"},
                                 "spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "1 Gi"}}}]}})
    assert store.namespace_usage("n") == {"pods": 1, "count/pods": 1}
    assert store.unparseable_pods == 1


def _cpu_pod(name: str, cpu: str = "1", **meta) -> dict:
    return {"kind": "Pod", "metadata": {"name": name, "namespace": meta.pop("namespace", "n"), **meta},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}}


def test_reservations_count_until_confirmed_or_expired() -> None:
    now = [100.0]
    store = ClusterStore(clock=lambda: now[0], reservation_ttl=5)
    usage = {"pods": Decimal(1), "requests.cpu": Decimal(1)}
    assert store.reserve(Reservation("n", "a", usage, now[0]))
    assert store.reserve(Reservation("n", "", usage, now[0], generate_name="job-"))
    assert store.namespace_usage("n")["requests.cpu"] == 2
    assert store.pod_usage("n", "a") == usage
    store.apply("Pod", "ADDED", _cpu_pod("a"))
    assert store.namespace_usage("n")["requests.cpu"] == 2  # the live pod replaced its reservation
    assert not store.reserve(Reservation("n", "a", usage, now[0]))  # already live: nothing to reserve
    now[0] += 6
    assert store.namespace_usage("n")["requests.cpu"] == 2  # past its TTL, but the watch said nothing since
    store.note_heard("Pod")  # a bookmark: the watch is alive and current
    assert store.namespace_usage("n")["requests.cpu"] == 1  # the nameless reservation expired
    assert store.reservations() == {}


def test_a_generate_name_reservation_is_released_by_the_next_pod_of_that_name() -> None:
    now = [100.0]
    store = ClusterStore(clock=lambda: now[0], reservation_ttl=30)
    usage = {"pods": Decimal(1), "requests.cpu": Decimal(1)}
    assert store.reserve(Reservation("n", "", usage, now[0], generate_name="web-7d9f-"))
    assert store.reserve(Reservation("n", "", usage, now[0], generate_name="web-7d9f-"))
    now[0] += 1
    store.apply("Pod", "ADDED", _cpu_pod("other-x1", generateName="other-"))  # another owner's pod
    assert store.namespace_usage("n")["requests.cpu"] == 3
    store.apply("Pod", "ADDED", _cpu_pod("web-7d9f-abcde", generateName="web-7d9f-"))
    assert store.namespace_usage("n")["requests.cpu"] == 3  # one reservation became that live pod
    assert len(store.reservations()) == 1
    store.apply("Pod", "MODIFIED", _cpu_pod("web-7d9f-abcde", generateName="web-7d9f-"))  # not a new pod
    assert len(store.reservations()) == 1
    store.apply("Pod", "ADDED", _cpu_pod("web-7d9f-fghij", generateName="web-7d9f-"))
    assert store.reservations() == {} and store.namespace_usage("n")["requests.cpu"] == 3


def test_a_pod_the_watch_reports_before_its_reservation_arrives_is_not_counted_twice() -> None:
    """Another worker admitted it; this worker's watch saw the pod before it read the shared ledger."""
    now = [100.0]
    store = ClusterStore(clock=lambda: now[0], reservation_ttl=30)
    usage = {"pods": Decimal(1), "requests.cpu": Decimal(1)}
    admitted_at = now[0]
    now[0] += 0.5
    store.apply("Pod", "ADDED", _cpu_pod("job-x1", generateName="job-"))
    store.absorb([Reservation("n", "", usage, admitted_at, generate_name="job-"),
                  Reservation("n", "named", usage, admitted_at)])
    assert store.namespace_usage("n")["requests.cpu"] == 2  # the live job pod, and the named reservation
    store.apply("Pod", "ADDED", _cpu_pod("named"))
    assert store.namespace_usage("n")["requests.cpu"] == 2 and store.reservations() == {}


def test_a_resize_counts_its_increase_until_the_watch_reports_the_resized_pod() -> None:
    now = [100.0]
    store = ClusterStore(clock=lambda: now[0], reservation_ttl=30)
    store.apply("Pod", "ADDED", _cpu_pod("p", "1"))
    before = store.live_pod_usage("n", "p")
    assert store.reserve(Reservation("n", "p", {"requests.cpu": Decimal(3)}, now[0], resize=True, before=before))
    assert store.namespace_usage("n")["requests.cpu"] == 4
    store.apply("Pod", "MODIFIED", _cpu_pod("p", "1"))  # a status update, say: the resize is not in yet
    assert store.namespace_usage("n")["requests.cpu"] == 4
    store.apply("Pod", "MODIFIED", _cpu_pod("p", "4"))
    assert store.namespace_usage("n")["requests.cpu"] == 4 and store.reservations() == {}


def test_network_policies_are_unknown_until_listed() -> None:
    store = ClusterStore()
    assert not store.network_policies_known("n")
    store.replace("NetworkPolicy", [])
    assert store.network_policies_known("n") and store.network_policies("n") == []
    store.apply("NetworkPolicy", "ADDED", {"metadata": {"name": "d", "namespace": "n", "uid": "x"},
                                           "spec": {"podSelector": {}}})
    assert store.network_policies("n") == [{"metadata": {"name": "d", "namespace": "n"},
                                            "spec": {"podSelector": {}}}]


def test_the_namespace_name_label_is_the_name() -> None:
    store = ClusterStore()
    fake = {"kind": "Namespace", "metadata": {"name": "red", "labels": {"kubernetes.io/metadata.name": "blue"}}}
    store.replace("Namespace", [store.compact("Namespace", fake)])
    assert store.namespace_labels("red") == {"kubernetes.io/metadata.name": "red"}
    store.apply("Namespace", "MODIFIED", fake)
    assert store.namespace_labels("red") == {"kubernetes.io/metadata.name": "red"}


def test_shared_usages_stay_bounded_between_relists() -> None:
    """Watch events bring new resource shapes for as long as the watch lasts; the table that shares equal
    usages must not grow with every shape ever seen (a relist may not come for days)."""
    from webhook.views.store import INTERNED_CACHE

    store = ClusterStore()
    for i in range(INTERNED_CACHE + 500):
        pod = {"kind": "Pod", "metadata": {"name": f"p{i}", "namespace": "n"},
               "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": f"{i + 1}m"}}}]}}
        store.apply("Pod", "ADDED", pod)
        store.apply("Pod", "DELETED", pod)
    assert len(store._interned) <= INTERNED_CACHE
    assert store.namespace_usage("n") == {}


def test_the_usage_of_a_namespace_set_stays_the_sum_of_its_namespaces() -> None:
    """A tenant's usage is kept summed event by event; it must equal adding its namespaces every time."""
    rng = random.Random(7)
    store = ClusterStore(clock=lambda: 0.0)
    tenant = frozenset({"a", "b", "c"})
    other = frozenset({"c", "d"})
    live: set[tuple[str, str]] = set()
    for step in range(400):
        ns, name = rng.choice("abcde"), f"p{rng.randrange(30)}"
        if (ns, name) in live and rng.random() < 0.4:
            store.apply("Pod", "DELETED", _cpu_pod(name, namespace=ns))
            live.discard((ns, name))
        else:
            store.apply("Pod", "MODIFIED" if (ns, name) in live else "ADDED",
                        _cpu_pod(name, f"{rng.randrange(1, 900)}m", namespace=ns))
            live.add((ns, name))
        if step % 50 == 0:
            store.replace("Pod", [store.compact("Pod", _cpu_pod(n, "1", namespace=s)) for s, n in sorted(live)])
        for group in (tenant, other):
            expected: dict = {}
            for namespace in group:
                for key, value in store.namespace_usage(namespace).items():
                    expected[key] = expected.get(key, Decimal(0)) + value
            assert {k: v for k, v in store.usage_of(group).items() if v} == {k: v for k, v in expected.items() if v}


def test_a_namespace_event_that_changes_no_label_is_no_new_revision() -> None:
    store = ClusterStore()
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"team": "a"}}}
    store.apply("Namespace", "ADDED", ns)
    revision, labels = store.namespaces_revision(), store.namespace_labels("shop")
    touched = {**ns, "metadata": {**ns["metadata"], "annotations": {"note": "x"}}, "status": {"phase": "Active"}}
    store.apply("Namespace", "MODIFIED", touched)
    assert store.namespaces_revision() == revision
    assert store.namespace_labels("shop") is labels  # the same mapping: tenant lookups stay cached
    relabelled = {**ns, "metadata": {"name": "shop", "labels": {"team": "b"}}}
    store.apply("Namespace", "MODIFIED", relabelled)
    assert store.namespaces_revision() > revision and store.namespace_labels("shop")["team"] == "b"
    store.apply("Namespace", "DELETED", relabelled)
    gone = store.namespaces_revision()
    assert store.namespace_labels("shop") is None
    store.apply("Namespace", "DELETED", relabelled)  # again: nothing changes
    assert store.namespaces_revision() == gone
