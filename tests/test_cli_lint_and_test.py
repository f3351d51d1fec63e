"""`tenantguard lint` and `tenantguard test` as users run them; shipped files stay valid."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import k8s_schema
from tests.conftest import EXAMPLES, GOLDEN, POLICIES, run_cli
from webhook.actions.dry_run import run
from webhook.inputs.manifests import read_objects
from webhook.policy import load_policies
from webhook.views.memory import InMemoryClusterState

CLUSTER = "apiVersion: tenantguard.io/v1alpha1\nkind: ClusterPolicy\nmetadata: {name: base}\nspec:\n"
TENANT = "apiVersion: tenantguard.io/v1alpha1\nkind: TenantPolicy\nmetadata: {name: t}\nspec:\n  namespaces: [t]\n"


def test_shipped_policies_lint_clean() -> None:
    result = run_cli("lint", "--strict", str(POLICIES))
    assert result.code == 0, result.out + result.err
    assert "ok" in result.out


def test_lint_errors_exit_2_with_location(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(TENANT + "  rules: {qosClass: Gold}\n")
    result = run_cli("lint", str(bad))
    assert result.code == 2
    assert f"{bad}: document 1: spec.rules.qosClass: must be one of" in result.err


def test_lint_warnings(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(CLUSTER + "  rules: {podSecurity: restricted, qosClass: Burstable}\n"
                    "  exemptions: [{namespaces: [a]}, {namespaces: [b], reason: old, expires: 2020-01-01}]\n---\n" +
                    TENANT + "  rules: {podSecurity: baseline, qosClass: BestEffort}\n")
    result = run_cli("lint", str(path))
    assert result.code == 0
    assert "spec.exemptions[0]: no reason given" in result.out
    assert "spec.exemptions[1]: expired on 2020-01-01" in result.out
    assert "spec.rules.podSecurity: baseline is looser than restricted in ClusterPolicy base" in result.out
    assert "spec.rules.qosClass: BestEffort is looser than Burstable" in result.out
    assert run_cli("lint", "--strict", str(path)).code == 2


def test_lint_strict_prints_warnings_as_errors(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(CLUSTER + "  exemptions: [{namespaces: [a]}, {groups: [system:authenticated], reason: all}]\n")
    result = run_cli("lint", "--strict", str(path))
    assert result.code == 2
    assert result.err.splitlines()[0] == f"error: {path}: ClusterPolicy base: spec.exemptions[0]: no reason given"
    assert result.err.splitlines()[1].startswith(f"error: {path}: ClusterPolicy base: spec.exemptions[1].groups[0]: "
                                                 "every authenticated caller is in group system:authenticated")
    assert result.out == "1 policy (1 cluster, 0 tenant): 2 error(s)\n"


def test_lint_rejects_label_keys_the_api_server_refuses(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(TENANT + "  defaults: {labels: {\"we~ird/key\": x}, nodeSelector: {pool: \"gpu nodes\"}}\n")
    result = run_cli("lint", str(bad))
    assert result.code == 2
    assert result.err.splitlines() == [
        (f"error: {bad}: document 1: spec.defaults.labels[\"we~ird/key\"]: invalid label key 'we~ird/key': prefix part "
         "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start "
         "and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
         "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"),
        (f"error: {bad}: document 1: spec.defaults.nodeSelector.pool: invalid label value 'gpu nodes': a valid label "
         "must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
         "an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is "
         "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
    ]


def test_policy_test_command_exit_codes(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(TENANT + "  rules: {requireLimits: [cpu]}\n")
    suite = tmp_path / "suite.yaml"
    body = ("apiVersion: tenantguard.io/v1alpha1\nkind: PolicyTest\nmetadata: {name: s}\nspec:\n"
            "  policies: [p.yaml]\n  namespace: t\n  cases:\n  - name: denied without limits\n"
            "    object: {apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: c, image: i}]}}\n"
            "    expect: {allowed: EXPECTED, violations: [{rule: requireLimits, container: c}]}\n")
    suite.write_text(body.replace("EXPECTED", "false"))
    ok = run_cli("test", "--color", "never", "-v", str(tmp_path))
    assert ok.code == 0 and "PASS" in ok.out and "1 cases: 1 passed, 0 failed" in ok.out
    suite.write_text(body.replace("EXPECTED", "true"))
    failed = run_cli("test", "--color", "never", str(suite))
    assert failed.code == 1 and "FAIL" in failed.out
    assert "      allowed: expected true, got false\n" in failed.out
    assert "-allowed: true\n" in failed.out and "+allowed: false\n" in failed.out
    suite.write_text(body.replace("expect:", "expectt:"))
    invalid = run_cli("test", "--color", "never", str(suite))
    assert invalid.code == 2 and invalid.err == ""
    hints = re.compile(r" \(did you mean [^()]*\?\)$")  # the spelling hints are tested with them
    assert [hints.sub("", line) for line in invalid.out.splitlines()] == [
        f"INVALID  {suite}",
        f"      {suite}: document 1: spec.cases[0].expect: required field is missing",
        f"      {suite}: document 1: spec.cases[0].expectt: unknown field",
        f"0 cases: 0 passed, 0 failed; 1 invalid suite: {suite}",
    ]
    missing = run_cli("test", "--color", "never", str(tmp_path / "none"))
    assert missing.code == 2 and f"INVALID  {tmp_path / 'none'}" in missing.out
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = run_cli("test", str(empty))
    assert nothing.code == 2 and nothing.err == f"tenantguard: no PolicyTest suites found in {empty}\n"


def test_shipped_golden_suites_pass_through_the_cli() -> None:
    result = run_cli("test", "--color", "never", str(GOLDEN / "shipped"))
    assert result.code == 0, result.out


@pytest.fixture(scope="module")
def example_results():
    return run(read_objects([str(EXAMPLES)]), load_policies([POLICIES]), InMemoryClusterState())


def test_every_mutated_example_is_valid_kubernetes(example_results) -> None:
    assert example_results
    for result in example_results:
        k8s_schema.assert_valid(result.obj)


def test_examples_verdicts(example_results) -> None:
    verdicts = {(r.obj["kind"], r.obj["metadata"]["name"]): r.decision.allowed for r in example_results}
    assert [k for k, allowed in verdicts.items() if not allowed] == [
        ("Pod", "debug"), ("Pod", "more-training"), ("Deployment", "quote-cache")]
    for r in example_results:
        if r.obj["kind"] == "Pod" and r.decision.tenant:
            assert r.decision.tenant == r.request.namespace.split("-")[0] or r.decision.tenant == "customer-a"


@pytest.mark.parametrize("case,needle", [
    ("    user: alice\n    object: {apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: []}}\n",
     "suite.yaml: document 1: spec.cases[0].user: must be a mapping (got a string)"),
    ("    operation: PATCH\n    object: {apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: []}}\n",
     "suite.yaml: document 1: spec.cases[0].operation: must be one of 'CREATE', 'UPDATE', 'DELETE' or 'CONNECT'"),
    ("    object: {apiVersion: admission.k8s.io/v1, kind: AdmissionReview, request: {operation: CREATE}}\n",
     "suite.yaml: document 1: spec.cases[0].object: invalid AdmissionReview: request.uid is required"),
    (("    object: {apiVersion: v1, kind: Pod, metadata: {name: p},\n"
      "             spec: {containers: [{name: c, image: i, resources: {requests: {cpu: lots}}}]}}\n"),
     "case 'c': invalid quantity: container \"c\" resources.requests.cpu"),
])
def test_policy_test_bad_cases_exit_2_naming_the_case(tmp_path: Path, case: str, needle: str) -> None:
    (tmp_path / "p.yaml").write_text(TENANT)
    suite = tmp_path / "suite.yaml"
    suite.write_text("apiVersion: tenantguard.io/v1alpha1\nkind: PolicyTest\nmetadata: {name: s}\nspec:\n"
                     "  policies: [p.yaml]\n  namespace: t\n  cases:\n  - name: c\n" + case
                     + "    expect: {allowed: true}\n")
    result = run_cli("test", "--color", "never", str(suite))
    assert result.code == 2, result.out + result.err
    assert f"INVALID  {suite}" in result.out and needle in result.out
    assert result.err == ""


def test_policy_test_bad_cluster_state_exits_2(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(TENANT)
    suite = tmp_path / "suite.yaml"
    suite.write_text("apiVersion: tenantguard.io/v1alpha1\nkind: PolicyTest\nmetadata: {name: s}\nspec:\n"
                     "  policies: [p.yaml]\n  namespace: t\n"
                     "  clusterState: [{apiVersion: v1, kind: Namespace, metadata: {name: t, labels: [x]}}]\n"
                     "  cases:\n  - object: {apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: []}}\n"
                     "    expect: {allowed: true}\n")
    result = run_cli("test", "--color", "never", str(suite))
    assert result.code == 2 and f"INVALID  {suite}" in result.out
    assert "spec.clusterState object 1: metadata.labels: must be a mapping" in result.out
