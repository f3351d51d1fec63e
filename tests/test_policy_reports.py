"""PolicyReports from the CLI: ``dry-run -o policyreport`` and ``audit -o policyreport``.

Every report is checked against the upstream ``wgpolicyk8s.io/v1alpha2`` PolicyReport CRD
(tests/data/upstream, the copy Kyverno ships), and against the JSON output of the same run:
each denied object is a ``fail`` in its namespace's report.
"""

from __future__ import annotations

import asyncio
import json
import copy
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.conftest import run_cli
from tests.kube_api import KubeAPI
from tests.test_cluster_policies import REPORT_CRD, REPORT_SCHEMA, SHOP, bare_pod
from webhook.policy.crd import crds

ROOT = Path(__file__).resolve().parents[1]
POLICIES, EXAMPLES = ROOT / "policies", ROOT / "examples"


def reports_of(text: str) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    for doc in docs:
        jsonschema.validate(doc, REPORT_SCHEMA)
        assert (doc["apiVersion"], doc["kind"]) == ("wgpolicyk8s.io/v1alpha2", "PolicyReport")
        assert doc["summary"] == {status: sum(r["result"] == status for r in doc["results"])
                                  for status in ("pass", "fail", "warn", "error", "skip")}
        assert all(r["source"] == "tenantguard" for r in doc["results"])
    return docs


def test_dry_run_gives_one_valid_report_per_namespace_with_each_denial_a_fail() -> None:
    out = run_cli("dry-run", "--policies", str(POLICIES), "--output", "policyreport", str(EXAMPLES))
    assert out.code == 1, out.err  # the examples meant to be denied
    reports = reports_of(out.out)
    verdicts = run_cli("dry-run", "--policies", str(POLICIES), "--output", "json", str(EXAMPLES)).json()["results"]
    judged = {r["namespace"] for r in verdicts if r["namespace"] and r["tenant"] is not None}
    by_ns = {r["metadata"]["namespace"]: r for r in reports}
    assert len(by_ns) == len(reports), "one report per namespace"
    assert set(by_ns) == judged
    denied = [r for r in verdicts if not r["allowed"]]
    assert len(denied) == 3
    for result in denied:
        report = by_ns[result["namespace"]]
        failed = [e for e in report["results"] if e["result"] == "fail" and
                  e["resources"][0]["name"] == result["name"] and e["resources"][0]["kind"] == result["kind"]]
        denials = {(v["policy"], v["rule"]) for v in result["violations"] if v["enforcement"] == "Enforce"}
        reported = {(e["policy"], e["rule"]) for e in failed}
        assert denials <= reported
        # a tenant rule that found what the cluster's rule found (said once in the verdict) fails too, and
        # its report entry says so
        for entry in failed:
            if (entry["policy"], entry["rule"]) not in denials:
                assert "the same findings as" in entry["message"], entry
                assert any(rule == entry["rule"] for _, rule in denials)
        assert all(e["severity"] == "high" and e["properties"]["enforcement"] == "Enforce" for e in failed)
    # and nothing allowed is a fail
    allowed = {(r["namespace"], r["kind"], r["name"]) for r in verdicts if r["allowed"]}
    for report in reports:
        for entry in report["results"]:
            ref = entry["resources"][0]
            if entry["result"] == "fail":
                assert (ref["namespace"], ref["kind"], ref["name"]) not in allowed
    # Warn-mode findings are warn results (the probes advisory)
    assert any(e["result"] == "warn" and e["policy"] == "probes-advisory" for r in reports for e in r["results"])


def test_a_report_about_one_object_names_it_in_scope(tmp_path: Path) -> None:
    out = run_cli("dry-run", "--policies", str(POLICIES), "--output", "policyreport",
                  str(EXAMPLES / "ml" / "model-server.yaml"))
    [report] = reports_of(out.out)
    assert report["scope"] == {"apiVersion": "v1", "kind": "Pod", "name": "model-server", "namespace": "ml"}


async def test_audit_writes_policy_reports_of_live_pods(tmp_path: Path) -> None:
    async with KubeAPI(crds=[*crds(), REPORT_CRD]) as kube:
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
        for i in range(3):
            kube.create(bare_pod(f"bare-{i}", "shop"))
        config = tmp_path / "kubeconfig"
        config.write_text(kube.kubeconfig())
        policy = tmp_path / "shop.yaml"
        policy.write_text(yaml.safe_dump(SHOP))
        out = await asyncio.to_thread(run_cli, "audit", "--policies", str(policy), "--kubeconfig", str(config),
                                      "--output", "policyreport")
    assert out.code == 1, out.err
    [report] = reports_of(out.out)
    assert report["metadata"]["namespace"] == "shop"
    assert Counter(e["result"] for e in report["results"]) == {"fail": 3, "pass": 3}
    assert {e["resources"][0]["name"] for e in report["results"] if e["result"] == "fail"} == {
        "bare-0", "bare-1", "bare-2"}


async def test_dry_run_reads_the_policies_from_the_cluster(tmp_path: Path) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(yaml.safe_dump(bare_pod("web", "shop")))
    async with KubeAPI(crds=crds()) as kube:
        config = tmp_path / "kubeconfig"
        config.write_text(kube.kubeconfig())
        cluster = ("dry-run", "--policies-from-cluster", "--kubeconfig", str(config), "-o", "json", str(manifest))
        out = await asyncio.to_thread(run_cli, *cluster)
        assert out.code == 0 and out.json()["results"][0]["tenant"] is None  # no policies: nothing judged

        kube.create(copy.deepcopy(SHOP))
        out = await asyncio.to_thread(run_cli, *cluster)
        assert out.code == 1, out.err
        policy = tmp_path / "shop.yaml"
        policy.write_text(yaml.safe_dump(SHOP))
        from_files = await asyncio.to_thread(run_cli, "dry-run", "--policies", str(policy), "-o", "json",
                                             str(manifest))
        assert out.json()["results"] == from_files.json()["results"]

        rival = copy.deepcopy(SHOP)
        rival["metadata"]["name"] = "shop2"
        kube.create(rival)
        out = await asyncio.to_thread(run_cli, *cluster)
        assert out.code == 2
        assert "TenantPolicy/shop2: spec.namespaces: shop: namespace already claimed by TenantPolicy shop" in out.err


async def test_dry_run_from_a_cluster_without_the_crds_says_what_to_install(tmp_path: Path) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(yaml.safe_dump(bare_pod("web", "shop")))
    async with KubeAPI() as kube:
        config = tmp_path / "kubeconfig"
        config.write_text(kube.kubeconfig())
        out = await asyncio.to_thread(run_cli, "dry-run", "--policies-from-cluster", "--kubeconfig", str(config),
                                      str(manifest))
    assert out.code == 2
    assert "cannot read the policies from the cluster" in out.err and "schema --crd" in out.err


@pytest.mark.parametrize("args,message", [
    (("--kubeconfig", "x"), "--kubeconfig and --context go with --policies-from-cluster"),
])
def test_cluster_flags_need_policies_from_cluster(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    out = run_cli("dry-run", "--policies", str(POLICIES), *args, str(EXAMPLES))
    assert out.code == 2 and message in out.err


@pytest.mark.parametrize("args,message", [
    (("--policies", str(POLICIES), "--policies-from-cluster"), "one or the other"),
    (("--policies", str(POLICIES), "--policies-from", "cluster"), "one or the other"),
    ((), "--policies is required (or --policies-from-cluster)"),
    (("--policies-from", "files"), "--policies is required"),
])
def test_policies_come_from_files_or_the_cluster(args: tuple[str, ...], message: str) -> None:
    out = run_cli("dry-run", *args, str(EXAMPLES))
    assert out.code == 2 and message in out.err, out.err


async def test_policies_from_cluster_has_the_serve_spelling_too(tmp_path: Path) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(yaml.safe_dump(bare_pod("web", "shop")))
    async with KubeAPI(crds=crds()) as kube:
        kube.create(copy.deepcopy(SHOP))
        config = tmp_path / "kubeconfig"
        config.write_text(kube.kubeconfig())
        out = await asyncio.to_thread(run_cli, "dry-run", "--policies-from", "cluster", "--kubeconfig", str(config),
                                      str(manifest))
    assert out.code == 1 and "requireRequests" in out.out, out.out + out.err


def test_dry_run_reads_a_pipe(tmp_path: Path) -> None:
    import os
    import threading

    fifo = tmp_path / "manifests"
    os.mkfifo(fifo)
    text = yaml.safe_dump(bare_pod("web", "shop"))

    def feed() -> None:
        with open(fifo, "w") as f:
            f.write(text)

    writer = threading.Thread(target=feed)
    writer.start()
    policy = tmp_path / "shop.yaml"
    policy.write_text(yaml.safe_dump(SHOP))
    out = run_cli("dry-run", "--policies", str(policy), "-o", "json", str(fifo))
    writer.join()
    assert out.code == 1, out.err
    assert out.json()["results"][0]["name"] == "web"


def test_a_report_stays_under_its_byte_cap_whatever_the_messages() -> None:
    from webhook.core.decision import Decision, RuleResult, Status, Violation
    from webhook.core.policy_report import Judged, build_reports

    def judged(i: int) -> Judged:
        long = "x" * 5000
        found = Violation("p", "r", long, container="c" * 3000, field="spec." + "f" * 3000)
        decision = Decision(violations=[found], results=[RuleResult("p", "r", Status.FAIL, None, 1)])
        return Judged({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"pod-{i}"}}, "ns", decision)

    [report] = build_reports([judged(i) for i in range(400)], seconds=0, max_results=1000, max_bytes=100_000)
    size = len(json.dumps(report["results"]))
    assert size <= 100_000
    assert 0 < len(report["results"]) < 400 and report["summary"]["fail"] == 400
    assert int(report["metadata"]["annotations"]["tenantguard.io/results-omitted"]) == 400 - len(report["results"])
    assert all(len(v) <= 1024 for e in report["results"] for v in e["properties"].values())
    jsonschema.validate(report, REPORT_SCHEMA)
