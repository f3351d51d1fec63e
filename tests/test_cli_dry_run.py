"""`tenantguard dry-run` as a user runs it: inputs, formats, exit codes (the CLI contract in the README)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonpatch
import pytest

from tests.conftest import EXAMPLES, POLICIES, ROOT, fixture_review, run_cli
from webhook.inputs.yamlio import dump_all, load_documents

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
       "spec": {"containers": [{"name": "app", "image": "nginx"}]}}
POLICY = """apiVersion: tenantguard.io/v1alpha1
kind: TenantPolicy
metadata: {name: shop}
spec:
  namespaces: [shop]
  defaults:
    labels: {"example.com/team": shop}
    resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {cpu: 200m, memory: 128Mi}}
  rules:
    requireLimits: [cpu]
  quota:
    hard: {requests.cpu: 250m}
"""


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


def pod(name: str, **spec_extra) -> dict:
    obj = json.loads(json.dumps(POD))
    obj["metadata"]["name"] = name
    obj["spec"].update(spec_extra)
    return obj


def test_json_contract(tmp_path: Path, policy: Path) -> None:
    f = tmp_path / "in.yaml"
    f.write_text(dump_all([pod("a")]))
    result = run_cli("dry-run", "--policies", str(policy), "--namespace", "shop", "--output", "json", str(f))
    assert result.code == 0, result.err
    doc = result.json()
    assert set(doc) == {"results", "summary"}
    assert doc["summary"] == {"allowed": 1, "denied": 0}
    [item] = doc["results"]
    assert {"apiVersion", "kind", "namespace", "name", "tenant", "allowed", "violations", "warnings", "patch",
            "object"} <= set(item)
    assert (item["apiVersion"], item["kind"], item["namespace"], item["name"], item["tenant"]) == \
        ("v1", "Pod", "shop", "a", "shop")
    assert {"op": "add", "path": "/metadata/labels", "value": {"example.com/team": "shop"}} in item["patch"]
    assert jsonpatch.apply_patch(pod("a"), item["patch"]) == item["object"]


def test_quota_accumulates_over_the_input_and_exit_code_1(tmp_path: Path, policy: Path) -> None:
    f = tmp_path / "in.yaml"
    f.write_text(dump_all([pod("a"), pod("b"), pod("c")]))
    result = run_cli("dry-run", "-p", str(policy), "-n", "shop", "-o", "json", str(f))
    assert result.code == 1
    doc = result.json()
    assert [r["allowed"] for r in doc["results"]] == [True, True, False]
    assert doc["summary"] == {"allowed": 2, "denied": 1}
    [violation] = doc["results"][2]["violations"]
    assert violation["policy"] == "shop" and violation["rule"] == "quota"
    assert violation["message"] == "tenant shop: requests.cpu 200m + 100m requested > 250m hard"


def test_cluster_state_counts(tmp_path: Path, policy: Path) -> None:
    state = tmp_path / "state.yaml"
    running = pod("running")
    running["metadata"]["namespace"] = "shop"
    running["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "200m"}, "limits": {"cpu": "200m"}}
    state.write_text(dump_all([running]))
    f = tmp_path / "in.yaml"
    f.write_text(dump_all([pod("a")]))
    result = run_cli("dry-run", "-p", str(policy), "--cluster-state", str(state), "-n", "shop", "-o", "json", str(f))
    assert result.code == 1
    assert "requests.cpu 200m + 100m requested > 250m hard" in result.out


def test_stdin_list_multidoc_and_directories(tmp_path: Path, policy: Path) -> None:
    listing = {"apiVersion": "v1", "kind": "List", "items": [pod("l1"), pod("l2")]}
    result = run_cli("dry-run", "-p", str(policy), "-o", "json", "-", stdin=dump_all([listing, pod("x")]))
    assert result.code == 0, result.err
    assert [r["name"] for r in result.json()["results"]] == ["l1", "l2", "x"]
    d = tmp_path / "dir" / "nested"
    d.mkdir(parents=True)
    (d / "one.yaml").write_text(dump_all([pod("one")]))
    (d / "two.json").write_text(json.dumps(pod("two"), indent="\t"))
    (d / "notes.txt").write_text("ignored")
    result = run_cli("dry-run", "-p", str(policy), "-o", "json", str(tmp_path / "dir"))
    assert [r["name"] for r in result.json()["results"]] == ["one", "two"]


def test_namespace_flag_only_for_objects_without_one(tmp_path: Path, policy: Path) -> None:
    other = pod("other")
    other["metadata"]["namespace"] = "elsewhere"
    f = tmp_path / "in.yaml"
    f.write_text(dump_all([pod("a"), other]))
    results = run_cli("dry-run", "-p", str(policy), "-n", "shop", "-o", "json", str(f)).json()["results"]
    assert [(r["namespace"], r["tenant"]) for r in results] == [("shop", "shop"), ("elsewhere", None)]
    results = run_cli("dry-run", "-p", str(policy), "-o", "json", str(f)).json()["results"]
    assert results[0]["namespace"] == "default"


@pytest.mark.parametrize("size", ["small", "medium", "large"])
def test_admission_review_documents(tmp_path: Path, policy: Path, size: str) -> None:
    review = fixture_review(size)
    f = tmp_path / "review.json"
    f.write_text(json.dumps(review))
    result = run_cli("dry-run", "-p", str(POLICIES), "-o", "json", str(f))
    assert result.code in (0, 1), result.err
    [item] = result.json()["results"]
    assert item["namespace"] == review["request"]["namespace"]
    assert item["kind"] == review["request"]["object"]["kind"]


def test_yaml_output_matches_json(tmp_path: Path, policy: Path) -> None:
    f = tmp_path / "in.yaml"
    f.write_text(dump_all([pod("a")]))
    as_json = run_cli("dry-run", "-p", str(policy), "-n", "shop", "-o", "json", str(f)).json()
    as_yaml = run_cli("dry-run", "-p", str(policy), "-n", "shop", "-o", "yaml", str(f))
    assert load_documents(as_yaml.out, "out")[0] == as_json


def test_patch_output_is_one_rfc6902_array_per_object(tmp_path: Path, policy: Path) -> None:
    f = tmp_path / "in.yaml"
    f.write_text(dump_all([pod("a"), pod("b", nodeName="n")]))
    result = run_cli("dry-run", "-p", str(policy), "-n", "shop", "-o", "patch", str(f))
    lines = result.out.splitlines()
    assert len(lines) == 2
    ops = json.loads(lines[0])
    assert jsonpatch.JsonPatch(ops).apply(pod("a"))["metadata"]["labels"] == {"example.com/team": "shop"}


def test_diff_output(tmp_path: Path, policy: Path) -> None:
    f = tmp_path / "in.yaml"
    f.write_text(dump_all([pod("a")]))
    result = run_cli("dry-run", "-p", str(policy), "-n", "shop", "-o", "diff", "--color", "never", str(f))
    assert "--- a/Pod/shop/a" in result.out and "+++ b/Pod/shop/a" in result.out
    assert "+  labels:" in result.out and "+    example.com/team: shop" in result.out


def test_table_output_colour_only_when_asked_or_tty(tmp_path: Path, policy: Path) -> None:
    f = tmp_path / "in.yaml"
    f.write_text(dump_all([pod("a")]))
    plain = run_cli("dry-run", "-p", str(policy), "-n", "shop", str(f))
    assert "ALLOWED  Pod shop/a  tenant=shop" in plain.out and "\033[" not in plain.out
    assert "1 object: 1 allowed, 0 denied" in plain.out
    coloured = run_cli("dry-run", "-p", str(policy), "-n", "shop", "--color", "always", str(f))
    assert "\033[1;32mALLOWED" in coloured.out


def test_denial_table_names_rule_container_field(tmp_path: Path, policy: Path) -> None:
    f = tmp_path / "in.yaml"
    bad = pod("a")
    bad["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "300m"}}
    f.write_text(dump_all([bad]))
    result = run_cli("dry-run", "-p", str(policy), "-n", "shop", str(f))
    assert result.code == 1
    assert "DENIED" in result.out
    assert "[shop/quota] tenant shop: requests.cpu 0 + 300m requested > 250m hard" in result.out


@pytest.mark.parametrize("content,needle", [
    ("kind: [oops\n", "line 2, column 1: did not find expected"),
    ("- just\n- a list\n", "document 1: expected a Kubernetes object"),
    ("apiVersion: v1\nmetadata: {name: x}\n", "document 1: kind: required field is missing"),
])
def test_bad_input_exits_2_naming_the_file(tmp_path: Path, policy: Path, content: str, needle: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(content)
    result = run_cli("dry-run", "-p", str(policy), str(f))
    assert result.code == 2
    assert str(f) in result.err and needle in result.err


def test_typo_in_policy_exits_2_naming_file_document_field(tmp_path: Path) -> None:
    bad = tmp_path / "x.yaml"
    bad.write_text(POLICY.replace("  defaults:", "  defualts:"))
    f = tmp_path / "in.yaml"
    f.write_text(dump_all([pod("a")]))
    result = run_cli("dry-run", "-p", str(bad), str(f))
    assert result.code == 2
    assert f"{bad}: document 1: spec.defualts: unknown field" in result.err
    assert result.out == ""


def test_missing_input_file(tmp_path: Path, policy: Path) -> None:
    result = run_cli("dry-run", "-p", str(policy), str(tmp_path / "nope.yaml"))
    assert result.code == 2 and "nope.yaml: no such file or directory" in result.err


def test_invalid_admission_review_is_bad_input(tmp_path: Path, policy: Path) -> None:
    f = tmp_path / "r.json"
    f.write_text(json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}))
    result = run_cli("dry-run", "-p", str(policy), str(f))
    assert result.code == 2 and "invalid AdmissionReview" in result.err


def test_user_and_group_flags_feed_exemptions(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("apiVersion: tenantguard.io/v1alpha1\nkind: ClusterPolicy\nmetadata: {name: c}\nspec:\n"
                 "  rules: {requireLimits: [cpu]}\n  exemptions: [{groups: [admins], reason: r}]\n")
    f = tmp_path / "in.yaml"
    f.write_text(dump_all([pod("a")]))
    assert run_cli("dry-run", "-p", str(p), str(f)).code == 1
    assert run_cli("dry-run", "-p", str(p), "--user", "root", "--group", "admins", str(f)).code == 0


def test_console_script_runs_the_shipped_demo() -> None:
    """The README's first command: the shipped policies over the shipped examples."""
    exe = Path(sys.executable).parent / "tenantguard"
    result = subprocess.run([str(exe), "dry-run", "--policies", "policies", "examples", "--output", "json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1, result.stderr  # the examples include three objects meant to be denied
    doc = json.loads(result.stdout)
    denied = sorted(r["name"] for r in doc["results"] if not r["allowed"])
    assert denied == ["debug", "more-training", "quote-cache"]
    assert doc["summary"]["denied"] == 3


def test_examples_exist() -> None:
    assert sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()) == ["customer-a", "edge", "ml", "trading"]


def test_invalid_admission_review_names_file_and_document(tmp_path: Path, policy: Path) -> None:
    f = tmp_path / "r.yaml"
    good = fixture_review("small")
    bad = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"operation": "CREATE"}}
    f.write_text(dump_all([good, bad]))
    result = run_cli("dry-run", "-p", str(policy), str(f))
    assert result.code == 2
    assert f"{f}: document 2: invalid AdmissionReview: request.uid is required" in result.err


@pytest.mark.parametrize("change,needle", [
    # allowed (no rule reads resources), then counted toward quota for later objects: the quantity must parse
    ({"spec": {"containers": [{"name": "app", "image": "nginx", "resources": {"requests": {"cpu": "lots"}}}]}},
     'document 1: invalid quantity: container "app" resources.requests.cpu: \'lots\''),
    ({"metadata": {"name": "p", "namespace": ["shop"]}}, "document 1: metadata.namespace: must be a string"),
    ({"metadata": {"name": "p", "labels": ["x"]}, "kind": "Namespace", "apiVersion": "v1"},
     "document 1: metadata.labels: must be a mapping"),
])
def test_objects_the_cluster_view_cannot_hold_exit_2_naming_file_document_field(
        tmp_path: Path, change: dict, needle: str) -> None:
    """An object is admitted, then joins the view (it counts toward quota for the next ones): one the API
    server would refuse as invalid is bad input, not a crash."""
    policy = tmp_path / "p.yaml"
    policy.write_text("apiVersion: tenantguard.io/v1alpha1\nkind: ClusterPolicy\nmetadata: {name: c}\n"
                      "spec: {defaults: {labels: {team: a}}}\n")
    f = tmp_path / "in.yaml"
    f.write_text(dump_all([{**pod("p"), **change}]))
    result = run_cli("dry-run", "-p", str(policy), str(f))
    assert result.code == 2, result.out + result.err
    assert f"{f}: {needle}" in result.err
    assert "Traceback" not in result.err


def test_bad_cluster_state_object_exits_2_naming_file_and_document(tmp_path: Path, policy: Path) -> None:
    state = tmp_path / "state.yaml"
    state.write_text(dump_all([pod("ok"), {**pod("bad"), "metadata": 7}]))
    f = tmp_path / "in.yaml"
    f.write_text(dump_all([pod("a")]))
    result = run_cli("dry-run", "-p", str(policy), "--cluster-state", str(state), str(f))
    assert result.code == 2
    assert f"--cluster-state: {state}: document 2: metadata: must be a mapping" in result.err


def test_the_table_says_which_sequence_each_object_went_through(tmp_path: Path, policy: Path) -> None:
    f = tmp_path / "in.yaml"
    f.write_text(dump_all([pod("a")]))
    result = run_cli("dry-run", "--policies", str(policy), "--namespace", "shop", "--color", "never", str(f))
    assert result.code == 0
    assert "each object: mutate, apply the patch, validate the result" in result.out


def test_validate_only_judges_the_object_as_written(tmp_path: Path, policy: Path) -> None:
    """What /validate answers when /mutate (which fails open) was down: the defaults are not assumed."""
    f = tmp_path / "in.yaml"
    f.write_text(dump_all([pod("a")]))  # no cpu limit: the tenant's default would fill it
    full = run_cli("dry-run", "--policies", str(policy), "--namespace", "shop", "-o", "json", str(f))
    assert full.code == 0 and full.json()["results"][0]["allowed"] is True
    raw = run_cli("dry-run", "--policies", str(policy), "--namespace", "shop", "-o", "json", "--validate-only",
                  str(f))
    assert raw.code == 1, raw.err
    [item] = raw.json()["results"]
    assert item["allowed"] is False and item["patch"] == []
    assert [v["rule"] for v in item["violations"]] == ["requireLimits", "quota"]  # no limit, no request
    table = run_cli("dry-run", "--policies", str(policy), "--namespace", "shop", "--color", "never",
                    "--validate-only", str(f))
    assert "each object: validate the object as written" in table.out
