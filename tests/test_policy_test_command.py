"""`tenantguard test` for CI: partial expectations, YAML diffs, JUnit XML, JSON, --run, invalid suites."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import GOLDEN, run_cli
from webhook.actions.policy_test import Mismatch, load_suite, mismatches, suite_files
from webhook.core.decision import Decision, Violation
from webhook.core.patch import PatchOp

POLICY = {"apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": "t"},
          "spec": {"namespaces": ["t"], "defaults": {"labels": {"team": "x"}},
                   "rules": {"requireLimits": ["cpu", "memory"]}}}


def pod(name: str = "p", limits: bool = False) -> dict[str, Any]:
    resources = {"limits": {"cpu": "1", "memory": "1Gi"}} if limits else {}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "i", "resources": resources}]}}


def suite_doc(name: str, *cases: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "tenantguard.io/v1alpha1", "kind": "PolicyTest", "metadata": {"name": name},
            "spec": {"policies": ["p.yaml"], "namespace": "t", "cases": list(cases)}}


def write(directory: Path, file: str, doc: dict[str, Any]) -> Path:
    (directory / "p.yaml").write_text(yaml.safe_dump(POLICY))
    path = directory / file
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


DENIED = {"name": "denied without limits", "object": pod(),
          "expect": {"allowed": False, "violations": {"contains": [{"rule": "requireLimits", "count": 2}]},
                     "patch": {"contains": [{"op": "add", "path": "/metadata/labels"}]}}}
WRONG = {"name": "wrongly expected to be admitted", "object": pod(), "expect": {"allowed": True}}
ADMITTED = {"name": "admitted with limits", "object": pod(limits=True), "expect": {"allowed": True, "tenant": "t"}}
INVALID = {"apiVersion": "tenantguard.io/v1alpha1", "kind": "PolicyTest", "metadata": {"name": "broken"},
           "spec": {"policies": ["p.yaml"], "cases": [{"object": pod(), "expect": {"allowd": True}}]}}


@pytest.fixture
def suites(tmp_path: Path) -> Path:
    """a.yaml (one case passes, one fails), b.yaml (passes), c.yaml (invalid)."""
    write(tmp_path, "a.yaml", suite_doc("alpha", DENIED, WRONG))
    write(tmp_path, "b.yaml", suite_doc("beta", ADMITTED))
    write(tmp_path, "c.yaml", INVALID)
    return tmp_path


# --- comparing: partial expectations -------------------------------------------------------------

def violation(rule: str, message: str, **fields: Any) -> Violation:
    return Violation(policy="t", rule=rule, message=message, **fields)


QUOTA = violation("quota", "cpu requests 3 exceed the tenant's limit 2", actual="3", required="2")
CPU = violation("requireLimits", 'container "a" has no cpu limit', container="a")
MEMORY = violation("requireLimits", 'container "b" has no memory limit', container="b")
LABELS = PatchOp("add", "/metadata/labels", {"team": "x"}, "t", "defaults.labels")


def decision(*violations: Violation, patch: tuple[PatchOp, ...] = (LABELS,), notes: tuple[str, ...] = ()) -> Decision:
    return Decision(allowed=not violations, tenant="t", violations=list(violations), patch=list(patch),
                    notes=list(notes))


def problems(expect: dict[str, Any], d: Decision) -> list[str]:
    return [p for m in mismatches(expect, d) for p in m.problems]


def test_violations_contains_lets_other_violations_be() -> None:
    d = decision(QUOTA, CPU, MEMORY)
    assert problems({"violations": {"contains": [{"rule": "quota"}, {"messageContains": "limit"}]}}, d) == []
    assert problems({"violations": {"contains": [{"rule": "quota", "actual": "4"}]}}, d) == [
        "violations.contains[0]: matches no violation"]
    assert problems({"violations": {"contains": [{"rule": "quota"}]}}, decision()) == [
        "violations.contains[0]: there is no violation"]
    # the exact list is unchanged: what nothing expected fails the case
    assert problems({"violations": [{"rule": "quota"}, {"messageContains": "limit"}]}, d) == [
        "violations: 1 violation not expected"]


WARNED = violation("requireProbes", 'container "a" has no liveness probe', container="a", enforcement="Warn")
AUDITED = violation("requireRequests", 'container "a" has no cpu request', container="a", enforcement="Audit")


def test_findings_are_every_finding_with_its_enforcement_violations_what_denies() -> None:
    d = Decision(allowed=False, tenant="t", violations=[CPU], warned=[WARNED], audit=[AUDITED])
    # violations: what denies (Enforce), as before
    assert problems({"violations": [{"rule": "requireLimits"}]}, d) == []
    assert problems({"violations": {"contains": [{"enforcement": "Audit"}]}}, d) == [
        "violations.contains[0]: matches no violation"]
    # findings: Enforce, Warn and Audit, each with the enforcement it was handled under
    assert problems({"findings": {"contains": [{"rule": "requireRequests", "enforcement": "Audit"},
                                               {"enforcement": "Warn", "count": 1}]}}, d) == []
    assert problems({"findings": [{"enforcement": "Enforce"}, {"enforcement": "Warn"}, {"enforcement": "Audit"}]},
                    d) == []
    [mismatch] = mismatches({"findings": [{"enforcement": "Enforce"}, {"enforcement": "Warn"}]}, d)
    assert mismatch.field == "findings" and mismatch.problems == ["findings: 1 violation not expected"]
    assert "+  - policy: t\n+    rule: requireRequests" in mismatch.text()
    assert "+    enforcement: Audit" in mismatch.text()
    # the enforcement is the one the finding was handled under, whatever the violation said
    routed = Decision(allowed=True, tenant="t", audit=[CPU])
    assert problems({"findings": [{"rule": "requireLimits", "enforcement": "Audit"}]}, routed) == []


def test_findings_through_the_cli(tmp_path: Path) -> None:
    policies = tmp_path / "p.yaml"
    policies.write_text(yaml.safe_dump_all([POLICY, {
        "apiVersion": "tenantguard.io/v1alpha1", "kind": "ClusterPolicy", "metadata": {"name": "probes"},
        "spec": {"enforcement": "Audit", "rules": {"requireProbes": ["liveness"]}}}]))
    case = {"name": "audited", "object": pod(limits=True),
            "expect": {"allowed": True, "violations": [],
                       "findings": {"contains": [{"policy": "probes", "enforcement": "Audit", "count": 1}]}}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(suite_doc("s", case), sort_keys=False))
    result = run_cli("test", "-o", "json", str(path))
    assert result.code == 0, result.out
    [finding] = result.json()["suites"][0]["cases"][0]["decision"]["findings"]
    assert (finding["policy"], finding["rule"], finding["enforcement"]) == ("probes", "requireProbes", "Audit")
    case["expect"]["findings"] = {"contains": [{"policy": "probes", "enforcement": "Warn"}]}
    path.write_text(yaml.safe_dump(suite_doc("s", case), sort_keys=False))
    failed = run_cli("test", "--color", "never", str(path))
    assert failed.code == 1
    assert "findings.contains[0]: matches no violation" in failed.out
    assert "-      enforcement: Warn\n" in failed.out and "+      enforcement: Audit\n" in failed.out


def test_contains_entries_are_checked_on_their_own() -> None:
    d = decision(CPU)
    assert problems({"violations": {"contains": [{"rule": "requireLimits"}, {"container": "a"}]}}, d) == []
    assert problems({"violations": [{"rule": "requireLimits"}, {"container": "a"}]}, d) == [
        "violations[1]: the violations it matches are matched by other entries"]


def test_count_is_how_many_violations_match_the_entry() -> None:
    two = decision(CPU, MEMORY, QUOTA)
    assert problems({"violations": {"contains": [{"rule": "requireLimits", "count": 2}]}}, two) == []
    assert problems({"violations": {"contains": [{"rule": "requireLimits", "count": 1}]}}, two) == [
        "violations.contains[0]: count 1, but 2 violations match"]
    assert problems({"violations": {"contains": [{"rule": "requireLimits", "count": 3}]}}, decision(CPU)) == [
        "violations.contains[0]: count 3, but 1 violation matches"]
    assert problems({"violations": {"contains": [{"rule": "podSecurity", "count": 0}]}}, two) == []
    assert problems({"violations": {"contains": [{"rule": "quota", "count": 0}]}}, two) == [
        "violations.contains[0]: count 0, but 1 violation matches"]
    # in the exact list an entry with a count stands for that many violations
    assert problems({"violations": [{"rule": "requireLimits", "count": 2}, {"rule": "quota"}]}, two) == []
    assert problems({"violations": [{"rule": "requireLimits", "count": 2}]}, two) == [
        "violations: 1 violation not expected"]


def test_the_exact_list_is_matched_as_a_whole_not_first_come() -> None:
    d = decision(CPU, MEMORY)
    # a first-come matching gives CPU to the loose entry and leaves the precise one without
    assert problems({"violations": [{"rule": "requireLimits"}, {"rule": "requireLimits", "container": "a"}]}, d) == []
    assert problems({"violations": [{"container": "a"}, {"container": "a"}]}, d) == [
        "violations[1]: the violations it matches are matched by other entries", "violations: 1 violation not expected"]


def test_patch_contains_compares_value_only_when_given() -> None:
    d = decision(patch=(LABELS, PatchOp("remove", "/spec/x", None, "t", "r")))
    for form in ({"patch": {"contains": [{"op": "add", "path": "/metadata/labels"}]}},
                 {"patchContains": [{"op": "add", "path": "/metadata/labels"}]},
                 {"patch": {"contains": [{"op": "add", "path": "/metadata/labels", "value": {"team": "x"}},
                                         {"op": "remove", "path": "/spec/x"}]}}):
        assert problems(form, d) == [], form
    assert problems({"patch": {"contains": [{"op": "add", "path": "/metadata/labels", "value": {"team": "y"}},
                                            {"op": "replace", "path": "/metadata/labels"},
                                            {"op": "add", "path": "/spec/y"}]}}, d) == [
        "patch.contains[0]: not in the patch (its operation at /metadata/labels differs)",
        "patch.contains[1]: not in the patch (its operation at /metadata/labels differs)",
        "patch.contains[2]: not in the patch, which has no operation at /spec/y"]
    # the exact list still compares every field: an `add` without its value is not the one made
    assert problems({"patch": [{"op": "add", "path": "/metadata/labels"}, {"op": "remove", "path": "/spec/x"}]}, d) == [
        "patch: 1 expected operation not in the patch; 1 operation not expected"]
    assert problems({"patch": []}, d) == ["patch: expected no patch, got 2 operations"]


# --- failure texts: YAML diffs, never Python reprs -----------------------------------------------

def sides(m: Mismatch) -> tuple[Any, Any]:
    """The expected and actual YAML documents a (whole-document) diff was made of, read back."""
    body = m.diff()[2:]
    expected = "\n".join(line[1:] for line in body if line[:1] in (" ", "-"))
    actual = "\n".join(line[1:] for line in body if line[:1] in (" ", "+"))
    return yaml.safe_load(expected), yaml.safe_load(actual)


EVERYTHING_WRONG = {
    "allowed": True, "tenant": None,
    "violations": [{"rule": "quota", "actual": "4"}, {"rule": "requireLimits", "container": "a"}],
    "patch": [{"op": "add", "path": "/metadata/labels", "value": {"team": "y"}}],
    "patchContains": [{"op": "add", "path": "/spec/x"}],
    "warnings": ["probe"],
}


def test_every_failure_is_a_yaml_diff_of_the_mismatching_part() -> None:
    d = decision(QUOTA, CPU, MEMORY, notes=("no liveness probe",))
    found = mismatches(EVERYTHING_WRONG, d)
    assert [m.field for m in found] == ["allowed", "tenant", "violations", "patch", "patchContains"]
    for m in found:
        text = m.text()
        assert m.diff()[:2] == ["--- expected", "+++ actual"], text
        for python in ("True", "False", "None", "{'", "['", "\\n"):
            assert python not in text, (python, text)
        assert sides(m) == (m.expected, m.actual)  # the diff is exactly the two YAML documents
    allowed, tenant, violations, patch, _ = found
    assert allowed.problems == ["allowed: expected true, got false"]
    assert allowed.diff()[2:4] == ["-allowed: true", "+allowed: false"]
    assert tenant.problems == ["tenant: expected null, got t"]
    assert tenant.diff()[2:] == ["-tenant: null", "+tenant: t"]
    assert violations.problems == ["violations[0]: matches no violation", "violations: 2 violations not expected"]
    assert violations.diff() == [
        "--- expected",
        "+++ actual",
        " violations:",
        "   - rule: quota",
        "-    actual: '4'",
        "+    actual: '3'",
        "+    policy: t",
        "+    message: cpu requests 3 exceed the tenant's limit 2",
        "+    required: '2'",
        "+    enforcement: Enforce",
        "   - rule: requireLimits",
        "     container: a",
        "+  - policy: t",
        "+    rule: requireLimits",
        "+    message: container \"b\" has no memory limit",
        "+    container: b",
        "+    enforcement: Enforce",
    ]
    assert patch.diff()[2:] == [" patch:", "   - op: add", "     path: /metadata/labels", "     value:",
                                "-      team: y", "+      team: x"]


def test_warnings_failures_show_what_was_warned() -> None:
    d = decision(notes=("container \"c\" has no liveness probe", "audit: would set x"))
    [m] = mismatches({"warnings": ["liveness", "readiness"]}, d)
    assert m.problems == ["warnings[1]: no warning contains readiness"]
    assert sides(m) == ({"warnings": ["liveness", "readiness"]},
                        {"warnings": ["liveness", "audit: would set x"]})
    [m] = mismatches({"warnings": []}, d)
    assert m.problems == ["warnings: expected none, got 2"]


def test_values_yaml_cannot_write_are_shown_as_text() -> None:
    odd = Violation(policy="t", rule="x", message="m", actual=Decision, required=frozenset())
    [m] = mismatches({"violations": []}, decision(odd))
    assert "actual: <class 'webhook.core.decision.Decision'>" in m.text()


# --- the command -------------------------------------------------------------------------------

def test_the_golden_suites_pass_with_a_junit_report_of_one_testcase_per_case(tmp_path: Path) -> None:
    report = tmp_path / "reports" / "junit.xml"
    result = run_cli("test", "--color", "never", str(GOLDEN), "--junit", str(report))
    assert result.code == 0, result.out + result.err
    files = suite_files([str(GOLDEN)])
    expected = {(s.name, c.name) for s in map(load_suite, files) for c in s.cases}
    root = ET.parse(report).getroot()
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == sum(len(load_suite(f).cases) for f in files) == int(root.get("tests", "-1"))
    assert {(c.get("classname"), c.get("name")) for c in cases} == expected
    assert len(root.findall("./testsuite")) == len(files)
    for suite in root.iter("testsuite"):
        assert int(suite.get("tests", "-1")) == len(suite.findall("testcase"))
        assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("0", "0", "0")
    assert root.findall(".//failure") == [] and root.findall(".//error") == []
    assert f"{len(cases)} cases: {len(cases)} passed, 0 failed" in result.out


def test_junit_holds_failures_and_the_invalid_suite(suites: Path) -> None:
    report = suites / "junit.xml"
    result = run_cli("test", "--color", "never", str(suites), "--junit", str(report))
    assert result.code == 2
    root = ET.parse(report).getroot()
    assert (root.tag, root.get("tests"), root.get("failures"), root.get("errors")) == ("testsuites", "4", "1", "1")
    alpha, beta, broken = root.findall("testsuite")
    assert [(s.get("name"), s.get("tests"), s.get("failures"), s.get("errors")) for s in (alpha, beta, broken)] == [
        ("alpha", "2", "1", "0"), ("beta", "1", "0", "0"), ("broken", "1", "0", "1")]
    assert alpha.get("file") == str(suites / "a.yaml")
    passed, failed = alpha.findall("testcase")
    assert (passed.get("classname"), passed.get("name")) == ("alpha", "denied without limits")
    assert passed.find("failure") is None and float(passed.get("time", "x")) >= 0
    failure = failed.find("failure")
    assert failure is not None and failure.get("message") == "allowed: expected true, got false"
    assert (failure.text or "").splitlines()[:5] == [
        "allowed: expected true, got false", "--- expected", "+++ actual", "-allowed: true", "+allowed: false"]
    [invalid] = broken.findall("testcase")
    assert (invalid.get("classname"), invalid.get("name")) == ("broken", str(suites / "c.yaml"))
    error = invalid.find("error")
    assert error is not None
    assert (error.text or "").startswith(f"{suites / 'c.yaml'}: document 1: spec.cases[0].expect.allowd: unknown field")


def test_the_table_runs_every_suite_and_names_the_invalid_ones(suites: Path) -> None:
    result = run_cli("test", "--color", "never", "-v", str(suites))
    assert result.code == 2 and result.err == ""
    lines = result.out.splitlines()
    assert lines[0] == f"PASS  {suites / 'a.yaml'}: denied without limits"
    assert lines[1] == f"FAIL  {suites / 'a.yaml'}: wrongly expected to be admitted"
    assert f"PASS  {suites / 'b.yaml'}: admitted with limits" in lines
    assert f"INVALID  {suites / 'c.yaml'}" in lines
    assert lines[-1] == f"3 cases: 2 passed, 1 failed; 1 invalid suite: {suites / 'c.yaml'}"


def test_an_invalid_suite_exits_2_even_when_every_case_passes(suites: Path) -> None:
    assert run_cli("test", str(suites / "b.yaml")).code == 0
    assert run_cli("test", str(suites / "a.yaml")).code == 1
    result = run_cli("test", "--color", "never", str(suites / "b.yaml"), str(suites / "c.yaml"))
    assert result.code == 2
    assert result.out.splitlines()[-1] == f"1 cases: 1 passed, 0 failed; 1 invalid suite: {suites / 'c.yaml'}"


def test_the_json_document(suites: Path) -> None:
    result = run_cli("test", "-o", "json", str(suites))
    assert result.code == 2 and result.err == ""
    doc = result.json()
    assert set(doc) == {"suites", "summary"}
    assert doc["summary"] == {"passed": 2, "failed": 1, "errors": 1, "deselected": 0}
    alpha, beta, broken = doc["suites"]
    assert [(s["name"], s["source"]) for s in doc["suites"]] == [
        ("alpha", str(suites / "a.yaml")), ("beta", str(suites / "b.yaml")), ("broken", str(suites / "c.yaml"))]
    assert "error" not in alpha and "error" not in beta
    assert broken["cases"] == [] and broken["error"].startswith(f"{suites / 'c.yaml'}: document 1: ")
    passed, failed = alpha["cases"]
    assert set(passed) == {"name", "passed", "failures", "decision"}
    assert (passed["name"], passed["passed"], passed["failures"]) == ("denied without limits", True, [])
    assert set(passed["decision"]) == {"allowed", "tenant", "violations", "findings", "warnings", "patch"}
    assert passed["decision"]["findings"] == passed["decision"]["violations"]  # no Warn or Audit policy here
    assert passed["decision"]["allowed"] is False and passed["decision"]["tenant"] == "t"
    assert [v["rule"] for v in passed["decision"]["violations"]] == ["requireLimits", "requireLimits"]
    assert passed["decision"]["patch"] == [{"op": "add", "path": "/metadata/labels", "value": {"team": "x"}}]
    [failure] = failed["failures"]
    assert failure == {
        "field": "allowed", "message": "allowed: expected true, got false",
        "expected": {"allowed": True}, "actual": {"allowed": False, "violations": passed["decision"]["violations"]},
        "diff": failure["diff"]}
    assert failure["diff"].splitlines()[:4] == ["--- expected", "+++ actual", "-allowed: true", "+allowed: false"]


def test_run_selects_cases_by_name_or_suite_and_case(suites: Path) -> None:
    result = run_cli("test", "--color", "never", "-v", "--run", "limits", str(suites / "a.yaml"), str(suites / "b.yaml"))
    assert result.code == 0
    assert result.out.splitlines() == [
        f"PASS  {suites / 'a.yaml'}: denied without limits",
        f"PASS  {suites / 'b.yaml'}: admitted with limits",
        "--run limits: 2 of 3 cases selected",
        "2 cases: 2 passed, 0 failed",
    ]
    only = run_cli("test", "-o", "json", "--run", "^beta::", str(suites / "a.yaml"), str(suites / "b.yaml"))
    assert only.code == 0
    assert [s["name"] for s in only.json()["suites"]] == ["beta"]  # a suite with no selected case is left out
    assert only.json()["summary"] == {"passed": 1, "failed": 0, "errors": 0, "deselected": 2}
    failing = run_cli("test", "--run", "alpha::wrongly", str(suites / "a.yaml"))
    assert failing.code == 1


def test_run_selecting_nothing_exits_2(suites: Path) -> None:
    report = suites / "junit.xml"
    result = run_cli("test", "--run", "no such case", "--junit", str(report), str(suites / "a.yaml"))
    assert result.code == 2
    assert result.err == "tenantguard: no case matches --run no such case (2 cases left out)\n"
    assert "--run no such case: 0 of 2 cases selected" in result.out
    assert ET.parse(report).getroot().get("tests") == "0"
    bad = run_cli("test", "--run", "(", str(suites / "a.yaml"))
    assert bad.code == 2 and bad.err.startswith("tenantguard: --run: invalid regular expression (: ")


def test_an_invalid_suite_is_reported_whatever_run_selects(suites: Path) -> None:
    result = run_cli("test", "-o", "json", "--run", "admitted with", str(suites))
    assert result.code == 2
    assert [(s["name"], "error" in s) for s in result.json()["suites"]] == [("beta", False), ("broken", True)]


def test_junit_is_well_formed_whatever_the_names_hold(tmp_path: Path) -> None:
    odd = dict(WRONG, name="bell \x07 & <tag> \"quoted\" \u00e9\U0001f600")
    write(tmp_path, "odd.yaml", suite_doc("odd \x1b suite", odd))
    report = tmp_path / "junit.xml"
    assert run_cli("test", str(tmp_path / "odd.yaml"), "--junit", str(report)).code == 1
    [case] = ET.parse(report).getroot().iter("testcase")
    assert case.get("name") == "bell \ufffd & <tag> \"quoted\" \u00e9\U0001f600"
    assert case.get("classname") == "odd \ufffd suite"


def test_junit_cannot_be_written_exits_2(suites: Path) -> None:
    (suites / "taken").write_text("")
    result = run_cli("test", "--junit", str(suites / "taken" / "junit.xml"), str(suites / "b.yaml"))
    assert result.code == 2 and result.err.startswith(f"tenantguard: --junit {suites / 'taken' / 'junit.xml'}: ")


def test_the_json_document_is_what_json_reads(suites: Path) -> None:
    text = run_cli("test", "-o", "json", str(suites / "a.yaml")).out
    assert text.endswith("}\n") and json.loads(text)["summary"]["failed"] == 1
