"""A tenant's usage summed once, then kept up to date pod by pod (webhook.core.cluster_state.NamespaceSums)."""

from __future__ import annotations

import random
from decimal import Decimal

from webhook.views.memory import InMemoryClusterState


def pod(name: str, namespace: str, cpu: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": cpu}}}]}}


def recomputed(state: InMemoryClusterState, namespaces: frozenset[str]) -> dict[str, Decimal]:
    total: dict[str, Decimal] = {}
    for ns in namespaces:
        for key, value in state.namespace_usage(ns).items():
            total[key] = total.get(key, Decimal(0)) + value
    return total


def test_the_sum_of_a_namespace_set_follows_every_pod_added_or_replaced() -> None:
    rng = random.Random(7)
    state = InMemoryClusterState()
    sets = [frozenset({"a", "b"}), frozenset({"b", "c", "d"}), frozenset({"e"})]
    for step in range(300):
        ns = rng.choice("abcde")
        state.add_object(pod(f"p{rng.randrange(20)}", ns, f"{rng.randrange(1, 900)}m"))  # new or replaced
        if step % 7 == 0:
            for names in sets:
                assert state.usage_of(names) == recomputed(state, names), (step, names)
    for names in sets:
        assert state.usage_of(names) == recomputed(state, names)
    # a copy handed out is the caller's: changing it changes nothing kept
    got = state.usage_of(sets[0])
    got["requests.cpu"] = Decimal(10**6)
    assert state.usage_of(sets[0]) == recomputed(state, sets[0])
