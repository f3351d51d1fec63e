"""`tenantguard dry-run` as a user runs it: inputs, formats, exit codes (the CLI contract in the README)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import EXAMPLES, POLICIES, ROOT, fixture_review, run_cli
from webhook.inputs import yamlio
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
    assert doc["summary"] == {"allowed": 1, "denied": 0, "skipped": 0,
                              "findings": {"Enforce": 0, "Warn": 0, "Audit": 0}}
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
    assert {k: doc["summary"][k] for k in ("allowed", "denied")} == {"allowed": 2, "denied": 1}
    assert doc["summary"]["findings"]["Enforce"] == 1
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
    ("- {apiVersion: v1, kind: Pod, metadata: {name: p}}\n", "document 1: expected a Kubernetes object, got a YAML "
     "list (write objects as documents separated by ---, or as a kind: List)"),
    ("apiVersion: v1\nmetadata: {name: x}\n", "document 1: kind: required field is missing"),
    ("kind: Pod\nmetadata: {name: x}\n", "document 1: apiVersion: required field is missing"),
    ("just a string\n", "document 1: expected a Kubernetes object, got str"),
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


# --- the manifest loader: libyaml's C loader building documents in one pass, as CSafeLoader builds them ---

def _shape(value: Any, seen: dict[int, int] | None = None) -> Any:
    """``value`` as comparable data: types kept, NaN comparable, and which collections are one object."""
    seen = {} if seen is None else seen
    if isinstance(value, (dict, list, set)):
        if id(value) in seen:
            return ("same as", seen[id(value)])
        seen[id(value)] = len(seen)
        if isinstance(value, dict):
            return ("dict", [(_shape(k, seen), _shape(v, seen)) for k, v in value.items()])
        if isinstance(value, set):
            return ("set", sorted(repr(v) for v in value))
        return ("list", [_shape(v, seen) for v in value])
    if isinstance(value, tuple):
        return ("tuple", [_shape(v, seen) for v in value])
    return (type(value).__name__, repr(value))


def _load(text: str, loader: type) -> tuple[str, Any]:
    try:
        return "docs", _shape(list(yaml.load_all(text, Loader=loader)))
    except Exception as exc:  # noqa: BLE001 - the same failure, whatever it is
        return "error", (type(exc).__name__, str(exc))


def assert_loads_as_csafeloader(text: str) -> None:
    assert _load(text, yamlio._ManifestLoader) == _load(text, yaml.CSafeLoader)


YAML_CASES = {
    "scalars": "a: yes\nb: No\nc: on\nd: ~\ne: null\nf: 0x1F\ng: 0o17\nh: 017\ni: 1_000\nj: 1:30\n"
               "k: -.inf\nl: .NaN\nm: 1.5e-7\nn: 2024-01-02\no: 2024-01-02T03:04:05.5+01:00\np: '123'\n"
               "q: \"true\"\nr: !!str 1\ns: !!float 1\nt: !!binary aGVsbG8=\nu: ''\nv: 12e3\nw: 0b101\n"
               "x: +12\ny: 190:20:30.15\n",
    "keys": "1: int\ntrue: bool\nnull: none\n1.5: float\n2024-01-02: date\n? !!binary aGk=\n: bytes\n",
    "duplicate keys (last wins, first place)": "a: 1\nb: 2\na: 3\n1: x\ntrue: y\n",
    "aliases": "base: &b {cpu: 1, list: &l [1, 2]}\nfirst: *b\nsecond: *b\nl: *l\n"
               "scalar: &s hello\nagain: *s\n",
    "merge keys": "base: &b {cpu: 1, memory: 2}\nmerged:\n  <<: *b\n  cpu: 3\nmany:\n  <<: [*b, {x: 1}]\n",
    "recursive": "a: &a\n  self: *a\n",
    "recursive list": "&l [1, *l]\n",
    "value key": "=: x\n",
    "set omap pairs": "s: !!set {a, b}\no: !!omap [{a: 1}, {b: 2}]\np: !!pairs [{a: 1}, {a: 2}]\n",
    "tagged collections": "m: !!map {a: 1}\nq: !!seq [1]\n",
    "complex key": "? [a, b]\n: c\n",
    "mapping key": "? {a: 1}\n: c\n",
    "unknown tag": "a: !foo bar\n",
    "bad int": "a: !!int abc\n",
    "bad bool": "a: !!bool maybe\n",
    "bad timestamp": "a: !!timestamp nope\n",
    "bad binary": "a: !!binary é\n",
    "syntax error": "a: [b\n",
    "several documents": "---\na: 1\n---\n---\n- x\n- &y {b: 2}\n- *y\n...\n",
    "empty": "",
    "deep": "a: " + "[" * 200 + "]" * 200 + "\n",
}


@pytest.mark.parametrize("text", YAML_CASES.values(), ids=YAML_CASES.keys())
def test_the_manifest_loader_loads_and_fails_as_csafeloader(text: str) -> None:
    assert_loads_as_csafeloader(text)


def test_ordinary_manifests_are_built_in_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """The examples, the golden suites, every plain scalar form and aliases: never PyYAML's constructor."""
    def generic(*args: Any) -> Any:
        raise AssertionError("built by the generic constructor")

    paths = sorted(EXAMPLES.rglob("*.yaml")) + sorted((ROOT / "tests" / "golden").rglob("*.yaml"))
    texts = [p.read_text() for p in paths] + [YAML_CASES["scalars"] + "shared: &a {x: 1}\nz: [*a, *a]\n"]
    expected = [_load(t, yaml.CSafeLoader) for t in texts]
    monkeypatch.setattr(yaml.constructor.BaseConstructor, "construct_document", generic)
    assert [_load(t, yamlio._ManifestLoader) for t in texts] == expected


yaml_words = st.sampled_from([
    "yes", "no", "on", "off", "~", "null", "0x1F", "0o17", "017", "1_000", "1:30", ".inf", ".nan", "1.5e-7",
    "2024-01-02", "2024-01-02 03:04:05", "=", "<<", "", "-", "a: b", "- x", "#", "é", "😀", "tab\there",
    "line\nbreak", "123", "true",
])
yaml_scalars = st.one_of(yaml_words, st.text(max_size=8), st.integers(), st.floats(), st.booleans(),
                         st.none(), st.dates(), st.binary(max_size=6))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.recursive(yaml_scalars, lambda children: st.one_of(
           st.lists(children, max_size=4),
           st.dictionaries(st.one_of(yaml_words, st.text(max_size=6), st.integers()), children, max_size=4)),
           max_leaves=30),
       flow=st.sampled_from([False, True, None]), share=st.booleans())
def test_generated_documents_load_as_csafeloader_does(data: Any, flow: bool | None, share: bool) -> None:
    documents = [data, {"again": data, "list": [data]}] if share else [data]  # shared: anchors and aliases
    text = yaml.dump_all(documents, Dumper=yaml.CSafeDumper, default_flow_style=flow, allow_unicode=True)
    assert_loads_as_csafeloader(text)


def test_aliases_and_merge_keys_in_a_manifest_judge_as_written_out(tmp_path: Path, policy: Path) -> None:
    """One object in several places (an alias) is filled in each place on its own, as when written twice."""
    aliased = tmp_path / "aliased.yaml"
    aliased.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: a, labels: &l {app: a}}\nspec:\n"
                       "  containers:\n"
                       "  - &c {name: app, image: nginx, resources: &r {requests: {cpu: 50m}}}\n"
                       "  - <<: *c\n    name: side\n  - {name: third, image: nginx, resources: *r}\n"
                       "  nodeSelector: *l\n")
    expanded = tmp_path / "expanded.yaml"
    expanded.write_text(dump_all(json.loads(json.dumps(load_documents(aliased.read_text(), str(aliased))))))
    assert "&" not in expanded.read_text() and "*" not in expanded.read_text()
    by_alias = run_cli("dry-run", "-p", str(policy), "-n", "shop", "-o", "json", str(aliased))
    written_out = run_cli("dry-run", "-p", str(policy), "-n", "shop", "-o", "json", str(expanded))
    assert by_alias.code == written_out.code == 0, by_alias.err + written_out.err
    assert by_alias.out == written_out.out


def test_duplicate_keys_in_a_policy_exit_2_naming_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text(POLICY.replace("  rules:\n", "  rules:\n    requireLimits: [memory]\n"))
    f = tmp_path / "in.yaml"
    f.write_text(dump_all([pod("a")]))
    result = run_cli("dry-run", "-p", str(bad), str(f))
    assert result.code == 2
    assert f"{bad}: line 11, column 5: duplicate key 'requireLimits'" in result.err


def test_duplicate_keys_in_a_manifest_keep_the_last_value(tmp_path: Path, policy: Path) -> None:
    f = tmp_path / "in.yaml"
    f.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: first, name: last}\n"
                 "spec: {containers: [{name: app, image: nginx}]}\n")
    result = run_cli("dry-run", "-p", str(policy), "-n", "shop", "-o", "json", str(f))
    assert result.json()["results"][0]["name"] == "last"


@pytest.mark.parametrize("value", ["!!bool maybe", "!!int abc", "!!timestamp x"])
def test_a_value_that_cannot_be_its_explicit_tag_is_a_clear_error(tmp_path: Path, value: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: i, "
                 f"stdin: {value}}}]}}\n")
    result = run_cli("dry-run", "--policies", str(POLICIES), str(f))
    assert result.code == 2 and result.err.startswith(f"tenantguard: {f}: a value cannot be read") and \
        "Traceback" not in result.err
