"""What a caller on the network or a hostile tenant can do to the webhook, and what it cannot.

- a review from a caller the server cannot trust is judged like any other but reserves no quota;
  a client certificate of a name not allowed is refused;
- a pod beyond the complexity bound is not evaluated: denied on /validate, admitted without
  defaults on /mutate, in a fraction of the time its evaluation would take;
- a large review is judged off the event loop: small reviews are answered meanwhile;
- aiohttp's error records never carry what the client sent.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
import time
from typing import Any

import pytest
from kubernetes import client as k8s_client

from tests.test_server_http import cluster_policy, make_context, pod, policy_set, post, review
from webhook.core.complexity import ReviewLimits, Size, measure
from webhook.server import logs
from webhook.server.app import create_app
from webhook.server.callers import CallerPolicy, certificate_names
from webhook.views.files import StaticClusterView
from webhook.views.watched import ViewSettings, WatchedClusterState

QUOTA = {"apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": "shop"},
         "spec": {"namespaces": ["shop"], "quota": {"hard": {"requests.cpu": "4"}}}}


def cpu_pod(name: str, cpu: str) -> dict[str, Any]:
    obj = pod(name=name)
    obj["spec"]["containers"][0]["resources"] = {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}}
    return obj


@pytest.mark.parametrize("callers, reserves", [
    (CallerPolicy(), False),  # nobody vouches for the path: a forged review must not reserve
    (CallerPolicy(trusted_network=True), True),
])
async def test_only_trusted_callers_reserve_quota(aiohttp_client, callers: CallerPolicy, reserves: bool) -> None:
    view = WatchedClusterState(k8s_client.ApiClient(), ViewSettings())  # not started: no API server needed
    client = await aiohttp_client(create_app(make_context(policy_set(QUOTA), view, callers=callers)))
    forged = (await (await post(client, "/validate", review(cpu_pod("forged", "4"), uid="f"))).json())["response"]
    assert forged["allowed"] is True  # judged like any review
    real = (await (await post(client, "/validate", review(cpu_pod("real", "100m"), uid="r"))).json())["response"]
    assert real["allowed"] is (not reserves)  # the forged 4 cpu only count when the path is trusted
    assert bool(view.store.reservations()) is reserves


def test_client_certificate_names() -> None:
    peercert = {"subject": ((("organizationName", "k8s"),), (("commonName", "kube-apiserver"),)),
                "subjectAltName": (("DNS", "apiserver.cluster.local"), ("IP Address", "10.0.0.1"))}
    assert certificate_names(peercert) == ["kube-apiserver", "apiserver.cluster.local"]
    policy = CallerPolicy(verified=True, client_names=("apiserver.cluster.local",))
    assert policy.refusal(peercert) is None
    assert "not one of the allowed names" in (CallerPolicy(verified=True, client_names=("x",)).refusal(peercert) or "")
    assert CallerPolicy(verified=True).refusal(peercert) is None  # any certificate the CA signed
    assert "client certificate signed by the client CA is required" in (CallerPolicy(verified=True).refusal(None) or "")
    assert CallerPolicy().refusal(None) is None


def giant_pod(containers: int) -> dict[str, Any]:
    obj = pod(name="giant")
    obj["spec"]["containers"] = [{"name": f"c{i}", "image": "registry.example/app:1",
                                  "env": [{"name": "A", "value": "1"}]} for i in range(containers)]
    return obj


def test_measure_counts_every_container_env_entry_and_volume() -> None:
    obj = giant_pod(3)
    obj["spec"]["initContainers"] = [{"name": "i", "envFrom": [{"configMapRef": {"name": "x"}}] * 2}]
    obj["spec"]["volumes"] = [{"name": "v"}] * 4
    assert measure(obj, ()) == Size(containers=4, env=5, volumes=4)
    deployment = {"kind": "Deployment", "spec": {"template": obj}}
    assert measure(deployment, ()) == Size(containers=4, env=5, volumes=4)
    assert measure({"kind": "ConfigMap"}, ()) == Size()
    # a kind the policies locate through spec.podTemplates is bounded like the built-in ones
    rollout = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "spec": {"template": obj}}
    assert measure(rollout, ()) == Size()
    assert measure(rollout, [("argoproj.io", "Rollout", ("spec", "template"))]) == Size(containers=4, env=5, volumes=4)
    assert ReviewLimits(containers=3).exceeded(Size(containers=4)) == (
        "the pod is too large for tenantguard to judge within the webhook timeout: 4 containers > 3 "
        "(--max-containers)")


async def test_a_pod_beyond_the_bound_is_answered_fast_without_evaluation(aiohttp_client) -> None:
    restricted = cluster_policy("restricted", rules={"podSecurity": "restricted"},
                                defaults={"resources": {"limits": {"cpu": "100m"}}})
    ctx = make_context(policy_set(restricted), limits=ReviewLimits(containers=500))
    client = await aiohttp_client(create_app(ctx))
    giant = review(giant_pod(20_000))
    started = time.perf_counter()
    v = (await (await post(client, "/validate", giant)).json())["response"]
    m = (await (await post(client, "/mutate", giant)).json())["response"]
    elapsed = time.perf_counter() - started
    assert v["allowed"] is False and "20000 containers > 500 (--max-containers)" in v["status"]["message"]
    assert m["allowed"] is True and "patch" not in m and "admitted without defaults" in m["warnings"][0]
    assert elapsed < 5.0  # the bound is checked before any rule; evaluating it would take seconds


class BlockingView(StaticClusterView):
    """Blocks the evaluation of reviews in namespace "big" until released (a slow, large review)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def namespace_labels(self, namespace: str):
        if namespace == "big":
            self.entered.set()
            assert self.release.wait(10)
        return super().namespace_labels(namespace)


async def test_a_large_review_is_judged_off_the_event_loop(aiohttp_client) -> None:
    view = BlockingView()
    client = await aiohttp_client(create_app(make_context(policy_set(QUOTA), view, offload_bytes=64 * 1024)))
    big = pod(name="big", namespace="big")
    big["metadata"]["annotations"] = {"padding": "x" * (128 * 1024)}  # over the offload threshold
    large = asyncio.create_task(post(client, "/validate", review(big, namespace="big", uid="big")))
    assert await asyncio.to_thread(view.entered.wait, 10)  # the large review is being judged, and stuck
    small = (await (await post(client, "/validate", review(pod(), uid="small"))).json())["response"]
    assert small["uid"] == "small" and not large.done()  # answered while the large one still runs
    view.release.set()
    assert (await (await large).json())["response"]["uid"] == "big"


def test_aiohttp_errors_are_logged_without_what_the_client_sent() -> None:
    stream = io.StringIO()
    logs.configure("info", stream)
    secret = "s3cr3t-planted-in-the-body"
    try:
        raise ValueError(f"bad request line: POST /validate {secret}")
    except ValueError as exc:
        logging.getLogger("aiohttp.server").error("Error handling request from %s", "10.1.2.3", exc_info=exc)
    logging.getLogger("aiohttp.server").exception("Unhandled exception", exc_info=RuntimeError(secret))
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert secret not in stream.getvalue()
    assert lines[0]["level"] == "warning" and lines[0]["event"] == "http_error"
    assert lines[0]["remote"] == "10.1.2.3" and lines[0]["error"] == "ValueError"
    assert "exception" not in lines[0] and all(len(json.dumps(line)) < 300 for line in lines)
