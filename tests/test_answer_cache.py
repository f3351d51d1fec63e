"""Answers to repeated reviews: a cached answer is exactly the fresh one, with the new uid.

A property over generated pods and pod controllers (through the same code the server runs:
answer() with and without the cache, /mutate and /validate), and the cases that must never be
served from the cache: another user, another day, another namespace label, an UPDATE, a
policy that judges with the cluster view, a new policy generation.
"""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_mutation_properties import POLICY, objects
from tests.test_server_http import review
from webhook.policy.loader import SourceDoc, build_policy_set
from webhook.server.admission import MUTATE, VALIDATE, answer
from webhook.server.answers import AnswerCache
from webhook.views.files import StaticClusterView

RULES = {"podSecurity": "restricted", "requireLimits": ["cpu", "memory"], "allowedRegistries": ["registry.example"],
         "maxResources": {"perContainer": {"cpu": "2"}}}
JUDGING = build_policy_set([SourceDoc({**POLICY, "spec": {**POLICY["spec"], "rules": RULES}}, "inline", 1)])
QUOTA = build_policy_set([SourceDoc({**POLICY, "spec": {**POLICY["spec"], "quota": {"hard": {"pods": "10"}}}},
                                    "inline", 1)])
TODAY = date(2026, 11, 30)


def ask(endpoint, obj: dict[str, Any], uid: str, *, cache: AnswerCache | None, policies=JUDGING,
        view: StaticClusterView | None = None, today: date = TODAY, **extra: Any):
    body = review(copy.deepcopy(obj), namespace="t", uid=uid, **extra)
    return answer(endpoint, orjson.loads(orjson.dumps(body)), policies, view or StaticClusterView(), today=today,
                  consume=True, cache=cache)


@settings(max_examples=150, deadline=None)
@given(objects(), st.sampled_from([MUTATE, VALIDATE]))
def test_a_cached_answer_is_the_fresh_answer(obj: dict[str, Any], endpoint) -> None:
    cache = AnswerCache()
    first = ask(endpoint, obj, "first", cache=cache)
    renamed = copy.deepcopy(obj)
    renamed.setdefault("metadata", {})["name"] = "another-name"  # pods of one ReplicaSet differ like this
    second = ask(endpoint, renamed, "second", cache=cache)
    fresh = ask(endpoint, renamed, "second", cache=None)
    assert second.cached and cache.hits == 1
    assert orjson.dumps(second.review) == orjson.dumps(fresh.review)  # byte for byte, uid included


def test_what_is_never_served_from_the_cache() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}}
    cache = AnswerCache()
    ask(VALIDATE, pod, "a", cache=cache)
    assert ask(VALIDATE, pod, "b", cache=cache).cached
    assert not ask(VALIDATE, pod, "c", cache=cache, username="bob").cached  # exemptions name users
    assert not ask(VALIDATE, pod, "d", cache=cache, today=date(2027, 1, 1)).cached  # exemptions expire
    labelled = StaticClusterView()
    labelled.add_namespace("t", {"team": "x"})
    assert not ask(VALIDATE, pod, "e", cache=cache, view=labelled).cached  # labels decide the tenant
    assert not ask(VALIDATE, pod, "f", cache=cache, operation="UPDATE", old=pod).cached
    reloaded = build_policy_set([SourceDoc({**POLICY, "spec": {**POLICY["spec"], "rules": {"requireProbes": [
        "liveness"]}}}, "inline", 1)])
    assert reloaded.generation != JUDGING.generation
    assert not ask(VALIDATE, pod, "g", cache=cache, policies=reloaded).cached
    # a tenant with a quota judges against usage: its /validate answers are never reused ...
    for uid in ("h", "i"):
        assert not ask(VALIDATE, pod, uid, cache=cache, policies=QUOTA).cached
    # ... while its defaults (/mutate) do not depend on the cluster
    ask(MUTATE, pod, "j", cache=cache, policies=QUOTA)
    assert ask(MUTATE, pod, "k", cache=cache, policies=QUOTA).cached


def test_the_cache_is_bounded() -> None:
    cache = AnswerCache(size=3)
    for i in range(10):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"i": str(i)}},
               "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}}
        ask(MUTATE, pod, f"u{i}", cache=cache)
    assert len(cache._answers) == 3
