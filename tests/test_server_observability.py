"""What operators see: the /metrics page after a few requests, and the JSON log line per admission."""

from __future__ import annotations

import io
import json
import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.test_server_http import (
    RESTRICTED,
    cluster_policy,
    make_context,
    pod,
    policy_set,
    post,
    review,
    unfixable_pod,
)
from webhook.views.memory import InMemoryClusterState
from webhook.core.engine import evaluate
from webhook.core.request import from_review
from webhook.server import logs
from webhook.server.app import CONTEXT, create_app
from webhook.server.metrics import LATENCY_BUCKETS

TENANT = {"apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": "shop-team"},
          "spec": {"namespaces": ["shop"], "enforcement": "Warn", "rules": {"requireProbes": ["liveness"]}}}


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def values(family, suffix: str = "") -> dict[tuple, float]:
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples if s.name == family.name + suffix}


@pytest.fixture
async def client(aiohttp_client):
    ctx = make_context(policy_set(RESTRICTED, TENANT))
    ctx.metrics.policy_reloaded(True, ctx.policies.current)  # what PolicyStore.load() reports
    return await aiohttp_client(create_app(ctx))


async def test_metrics_page_after_a_few_requests(client) -> None:
    await post(client, "/mutate", review(pod()))  # shop: tenant shop-team
    await post(client, "/validate", review(unfixable_pod()))  # denied (restricted + cpu limit), warned (probes)
    other = unfixable_pod()
    other["metadata"]["namespace"] = "other"
    await post(client, "/validate", review(other, namespace="other"))  # no tenant, denied
    await post(client, "/validate", review(pod(), operation="DELETE"))  # allowed, untouched
    await post(client, "/validate", b"{not json")  # 400
    await post(client, "/mutate", b"x" * (4 * 1024 * 1024))  # 413
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    page = families(await resp.text())

    requests = values(page["tenantguard_admission_requests"], "_total")
    assert requests == {
        (("decision", "allowed"), ("endpoint", "mutate"), ("tenant", "shop-team")): 1.0,
        (("decision", "denied"), ("endpoint", "validate"), ("tenant", "shop-team")): 1.0,
        (("decision", "denied"), ("endpoint", "validate"), ("tenant", "")): 1.0,
        (("decision", "allowed"), ("endpoint", "validate"), ("tenant", "")): 1.0,
    }
    latency = page["tenantguard_admission_duration_seconds"]
    buckets = {s.labels["le"] for s in latency.samples if s.name.endswith("_bucket")}
    assert {"0.0001", "0.00025", "0.0005", "0.001"} <= buckets and len(buckets) == len(LATENCY_BUCKETS) + 1
    counts = values(latency, "_count")
    assert counts == {(("endpoint", "mutate"),): 1.0, (("endpoint", "validate"),): 3.0}

    violations = values(page["tenantguard_policy_violations"], "_total")
    # /validate judges each pod as received: both limits missing, on both denied pods
    assert violations[(("enforcement", "Enforce"), ("policy", "restricted"), ("rule", "requireLimits"))] == 4.0
    assert violations[(("enforcement", "Enforce"), ("policy", "restricted"), ("rule", "podSecurity"))] >= 2.0
    assert violations[(("enforcement", "Warn"), ("policy", "shop-team"), ("rule", "requireProbes"))] == 1.0

    assert values(page["tenantguard_admission_bad_requests"], "_total") == {
        (("code", "400"), ("endpoint", "validate")): 1.0, (("code", "413"), ("endpoint", "mutate")): 1.0}
    assert values(page["tenantguard_admission_in_flight"]) == {(): 0.0}
    assert values(page["tenantguard_policy_reloads"], "_total") == {(("result", "success"),): 1.0}
    generation = client.app[CONTEXT].policies.generation
    assert values(page["tenantguard_policy_generation_info"]) == {(("generation", generation),): 1.0}
    assert values(page["tenantguard_cluster_view_synced"]) == {(): 1.0}
    # set by the certificate loader (test_server_reload checks the value); 0 until then
    assert values(page["tenantguard_tls_cert_expiry_timestamp_seconds"]) == {(): 0.0}


async def test_each_server_has_its_own_registry(aiohttp_client) -> None:
    from prometheus_client import REGISTRY

    first = await aiohttp_client(create_app(make_context(policy_set(RESTRICTED))))
    second = await aiohttp_client(create_app(make_context(policy_set(RESTRICTED))))
    await post(first, "/validate", review(pod()))
    page = families(await (await second.get("/metrics")).text())
    assert values(page["tenantguard_admission_requests"], "_total") == {}
    assert REGISTRY.get_sample_value("tenantguard_admission_requests_total") is None


async def test_one_json_log_line_per_admission(client, caplog) -> None:
    caplog.set_level(logging.INFO, logger="tenantguard")
    logged = unfixable_pod()
    logged["metadata"]["name"] = "web-7"
    await post(client, "/validate", review(logged, uid="log-me", dry_run=True))
    [record] = [r for r in caplog.records if getattr(r, "event", None) == "admission"]
    line = json.loads(logs.JsonFormatter().format(record))
    assert line["level"] == "info" and line["logger"] == "tenantguard.admission" and line["ts"].endswith("Z")
    assert {k: line[k] for k in ("endpoint", "uid", "operation", "namespace", "kind", "object", "tenant", "decision",
                                 "dry_run", "user")} == {
        "endpoint": "validate", "uid": "log-me", "operation": "CREATE", "namespace": "shop", "kind": "Pod",
        "object": "web-7", "tenant": "shop-team", "decision": "denied", "dry_run": True, "user": "alice"}
    assert "restricted/requireLimits" in line["rules"] and "restricted/podSecurity" in line["rules"]
    assert line["warnings"] == 1 and line["patch_ops"] == 0
    assert isinstance(line["latency_ms"], float) and line["latency_ms"] > 0
    assert line["generation"] == client.app[CONTEXT].policies.generation


async def test_bad_requests_are_logged_with_their_reason(client, caplog) -> None:
    caplog.set_level(logging.INFO, logger="tenantguard")
    await post(client, "/mutate", review(pod(), api_version="v1"))
    [record] = [r for r in caplog.records if getattr(r, "event", None) == "bad_request"]
    assert record.levelno == logging.WARNING and record.code == 400 and "apiVersion" in record.reason


def test_configure_writes_json_lines() -> None:
    stream = io.StringIO()
    flags = logging.logThreads, logging.logProcesses, logging.logMultiprocessing
    logs.configure("info", stream)
    try:
        logging.getLogger("tenantguard.test").info("hello", extra={"event": "x", "rules": ("a/b",)})
        logging.getLogger("tenantguard.test").debug("hidden")
    finally:
        for name in ("tenantguard", "aiohttp"):
            logging.getLogger(name).handlers[:] = []
            logging.getLogger(name).propagate = True
        logging.getLogger("aiohttp.access").disabled = False
        logging.logThreads, logging.logProcesses, logging.logMultiprocessing = flags
    [line] = stream.getvalue().splitlines()
    assert json.loads(line) | {"ts": None} == {"ts": None, "level": "info", "logger": "tenantguard.test",
                                               "msg": "hello", "event": "x", "rules": ["a/b"]}


def test_warn_only_policy_denies_nothing() -> None:
    """A sanity check of the fixture: the Warn-mode tenant alone never denies."""
    decision = evaluate(from_review(review(pod())), policy_set(cluster_policy("empty"), TENANT),
                        InMemoryClusterState())
    assert decision.allowed and decision.warnings


async def test_rule_durations_and_rule_errors_are_exported(aiohttp_client) -> None:
    """Every rule's evaluation time feeds a histogram; a rule that crashes is counted as an error, not as a
    violation, and still denies under Enforce with a message saying it failed."""
    from tests.test_engine import Boom
    from webhook.core.plan import CompiledPolicy, Enforcement, PolicySet

    crashing = CompiledPolicy(name="broken", kind="ClusterPolicy", source="x", validators=(Boom(),),
                              enforcement=Enforcement.ENFORCE)
    base = policy_set(RESTRICTED)
    ctx = make_context(PolicySet(cluster=(*base.cluster, crashing), generation="g"))
    client = await aiohttp_client(create_app(ctx))
    body = await (await post(client, "/validate", review(unfixable_pod()))).json()
    assert body["response"]["allowed"] is False
    assert "[broken/boom] rule could not be evaluated (RuntimeError: validator bug)" in \
        body["response"]["status"]["message"]
    page = families(await (await client.get("/metrics")).text())
    durations = values(page["tenantguard_rule_duration_seconds"], "_count")
    assert durations[(("policy", "restricted"), ("rule", "podSecurity"))] == 1.0
    assert durations[(("policy", "restricted"), ("rule", "requireLimits"))] == 1.0
    assert values(page["tenantguard_rule_errors"], "_total") == {(("policy", "broken"), ("rule", "boom")): 1.0}
    violations = values(page["tenantguard_policy_violations"], "_total")
    assert not any(dict(k)["policy"] == "broken" for k in violations)  # an error is not a violation


def test_the_fast_admission_line_is_the_record_line() -> None:
    """The admission line is written without a LogRecord, yet says exactly what logger.info(extra=...) says,
    and the level still decides."""
    stream = io.StringIO()
    logs.configure("info", stream)
    logger = logging.getLogger("tenantguard.admission")
    fields = {"event": "admission", "endpoint": "mutate", "uid": "u", "rules": ["a/b"], "tenant": None,
              "latency_ms": 0.25, "groups": ("x",)}
    logs.FastLine(logger).info("admission", dict(fields))
    logger.info("admission", extra=dict(fields))
    fast, slow = (json.loads(line) for line in stream.getvalue().splitlines())
    assert fast.pop("ts")[:10] == slow.pop("ts")[:10]
    assert fast == slow
    logs.configure("warning", stream)
    logs.FastLine(logger).info("admission", dict(fields))
    assert len(stream.getvalue().splitlines()) == 2  # nothing more: below the level
