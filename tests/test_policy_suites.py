"""PolicyTest suites as a schema: errors name file, document and field path; valid suites load as before."""

from __future__ import annotations

import copy
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from tests.conftest import EXAMPLES, GOLDEN, POLICIES, ROOT
from webhook.actions.policy_test import SuiteError, load_suite, run_suite, suite_files
from webhook.core.errors import TenantguardError
from webhook.policy import PolicyError, load_policies
from webhook.policy.suite import (
    CaseSpec,
    Expectation,
    ExpectedViolation,
    PatchContains,
    PatchOperation,
    PolicyTestDoc,
    SuiteMetadata,
    SuiteSpec,
    UserInfo,
    ViolationsContains,
)

TODAY = date(2025, 6, 1)
TENANT = {"apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": "t"},
          "spec": {"namespaces": ["t"], "rules": {"requireLimits": ["cpu"]}}}
INLINE = {"apiVersion": "tenantguard.io/v1alpha1", "kind": "ClusterPolicy", "metadata": {"name": "base"},
          "spec": {"defaults": {"labels": {"team": "x"}}}}


def pod(limits: bool = True) -> dict[str, Any]:
    resources = {"limits": {"cpu": "1"}} if limits else {}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"team": "x"}},
            "spec": {"containers": [{"name": "c", "image": "i", "resources": resources}]}}


BASE: dict[str, Any] = {
    "apiVersion": "tenantguard.io/v1alpha1",
    "kind": "PolicyTest",
    "metadata": {"name": "s"},
    "spec": {
        "policies": ["p.yaml", INLINE],
        "namespace": "t",
        "clusterState": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t"}}],
        "cases": [
            {"name": "with limits", "object": pod(), "expect": {"allowed": True, "patch": []}},
            {"name": "without limits", "user": {"username": "alice", "groups": ["dev"]}, "object": pod(False),
             "expect": {"allowed": False, "violations": [{"rule": "requireLimits", "container": "c"}]}},
            {"name": "update", "operation": "UPDATE", "oldObject": pod(), "object": pod(),
             "expect": {"allowed": True, "tenant": "t"}},
        ],
    },
}

DROP = object()


def edit(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set (or, with DROP, delete) the field at a path such as ``spec.cases[2].expect.allowd``."""
    keys: list[str | int] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        keys.append(int(index) if index else name)
    target: Any = doc
    for key in keys[:-1]:
        target = target[key]
    if value is DROP:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value


def write_suite(tmp_path: Path, *edits: tuple[str, Any], text: str | None = None) -> Path:
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(TENANT))
    doc = copy.deepcopy(BASE)
    for path, value in edits:
        edit(doc, path, value)
    suite = tmp_path / "suite.yaml"
    suite.write_text(text if text is not None else yaml.safe_dump(doc, sort_keys=False))
    return suite


def without_hint(line: str) -> str:
    """A line without the ``(did you mean ...?)`` an unknown field may end with (tested with the spelling hints)."""
    return re.sub(r" \(did you mean [^()]*\?\)$", "", line)


def errors(path: Path) -> list[str]:
    with pytest.raises(SuiteError) as caught:
        load_suite(path, today=TODAY)
    return [without_hint(line) for line in str(caught.value).splitlines()]


def test_the_base_suite_loads_and_passes(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path), today=TODAY)
    results = run_suite(suite)
    assert [r.case for r in results] == ["with limits", "without limits", "update"]
    assert all(r.passed for r in results), [r.failures for r in results]


INVALID = [
    # unknown fields, at every depth
    pytest.param("status", {}, "status: unknown field", id="unknown-top"),
    pytest.param("spec.namespce", "t", "spec.namespce: unknown field", id="unknown-spec"),
    pytest.param("spec.cases[0].nmae", "x", "spec.cases[0].nmae: unknown field", id="unknown-case"),
    pytest.param("spec.cases[2].expect.allowd", True, "spec.cases[2].expect.allowd: unknown field",
                 id="unknown-expect"),
    pytest.param("spec.cases[1].expect.violations[0].rul", "x",
                 "spec.cases[1].expect.violations[0].rul: unknown field", id="unknown-violation"),
    pytest.param("spec.cases[1].user.group", ["dev"], "spec.cases[1].user.group: unknown field", id="unknown-user"),
    pytest.param("spec.cases[0].expect.patch", [{"op": "add", "path": "/x", "valeu": 1}],
                 "spec.cases[0].expect.patch[0].valeu: unknown field", id="unknown-patch-op"),
    pytest.param("spec.policies[1].spec.defualts", {}, "spec.policies[1].spec.defualts: unknown field",
                 id="unknown-inline-policy"),
    # wrong types
    pytest.param("spec", [], "spec: must be a mapping (got a list)", id="spec-list"),
    pytest.param("spec.cases", {}, "spec.cases: input should be a valid list", id="cases-mapping"),
    pytest.param("spec.cases[2]", "oops", "spec.cases[2]: must be a mapping (got a string)", id="case-string"),
    pytest.param("spec.cases[1].user", "alice", "spec.cases[1].user: must be a mapping (got a string)",
                 id="user-string"),
    pytest.param("spec.cases[1].user.groups", "dev", "spec.cases[1].user.groups: input should be a valid list",
                 id="groups-string"),
    pytest.param("spec.cases[0].object", ["x"], "spec.cases[0].object: input should be a valid dictionary",
                 id="object-list"),
    pytest.param("spec.cases[0].expect.allowed", "maybe",
                 "spec.cases[0].expect.allowed: input should be a valid boolean, unable to interpret input",
                 id="allowed-word"),
    pytest.param("spec.cases[0].expect.allowed", None, "spec.cases[0].expect.allowed: must be true or false",
                 id="allowed-null"),
    pytest.param("spec.cases[0].expect.warnings", "oops", "spec.cases[0].expect.warnings: input should be a valid list",
                 id="warnings-string"),
    pytest.param("spec.cases[0].dryRun", "maybe",
                 "spec.cases[0].dryRun: input should be a valid boolean, unable to interpret input", id="dry-run"),
    pytest.param("spec.policies[0]", 3, "spec.policies[0]: must be a path or an inline policy (got a number)",
                 id="policy-number"),
    pytest.param("spec.clusterState[0]", True, "spec.clusterState[0]: must be a path or an object (got a boolean)",
                 id="state-boolean"),
    pytest.param("spec.cases[0].before", [["x"]], "spec.cases[0].before[0]: must be a path or an object (got a list)",
                 id="before-list"),
    # missing required fields
    pytest.param("spec", DROP, "spec: required field is missing", id="no-spec"),
    pytest.param("spec.policies", DROP, "spec.policies: required field is missing", id="no-policies"),
    pytest.param("spec.policies", [], "spec.policies: must list policy files/directories or inline policies",
                 id="empty-policies"),
    pytest.param("spec.cases", DROP, "spec.cases: required field is missing", id="no-cases"),
    pytest.param("spec.cases", [], "spec.cases: must list at least one case", id="empty-cases"),
    pytest.param("spec.cases[1].expect", DROP, "spec.cases[1].expect: required field is missing", id="no-expect"),
    pytest.param("spec.cases[0].expect", {},
                 "spec.cases[0].expect: must set at least one of allowed, violations, findings, patch, patchContains, "
                 "warnings, tenant", id="empty-expect"),
    pytest.param("spec.cases[0].object", DROP,
                 "spec.cases[0]: needs `object` (a Kubernetes object or AdmissionReview) or `file`", id="no-object"),
    pytest.param("spec.cases[0].expect.patch", [{"op": "add"}],
                 "spec.cases[0].expect.patch[0].path: required field is missing", id="patch-op-no-path"),
    pytest.param("spec.policies[1].metadata", DROP, "spec.policies[1].metadata: required field is missing",
                 id="inline-policy-no-metadata"),
    # values out of their set
    pytest.param("spec.cases[2].operation", "PATCH",
                 "spec.cases[2].operation: must be one of 'CREATE', 'UPDATE', 'DELETE' or 'CONNECT' (got 'PATCH')",
                 id="operation"),
    pytest.param("spec.cases[0].operation", "create",
                 "spec.cases[0].operation: must be one of 'CREATE', 'UPDATE', 'DELETE' or 'CONNECT' (got 'create')",
                 id="operation-lowercase"),
    pytest.param("spec.cases[1].expect.violations[0].enforcement", "Enforced",
                 "spec.cases[1].expect.violations[0].enforcement: must be one of 'Enforce', 'Warn' or 'Audit' "
                 "(got 'Enforced')", id="enforcement"),
    pytest.param("spec.cases[0].expect.patch", [{"op": "ad", "path": "/x"}],
                 "spec.cases[0].expect.patch[0].op: must be one of 'add', 'remove', 'replace', 'move', 'copy' or "
                 "'test' (got 'ad')", id="patch-op"),
    pytest.param("apiVersion", "v1", "apiVersion: must be one of 'tenantguard.io/v1alpha1' (got 'v1')",
                 id="api-version"),
    pytest.param("kind", "TenantPolicy", "kind: must be PolicyTest (got 'TenantPolicy')", id="kind"),
    pytest.param("kind", DROP, "kind: must be PolicyTest (got None)", id="no-kind"),
    pytest.param("spec.policies[1].kind", "Policy",
                 "spec.policies[1].kind: must be one of 'ClusterPolicy' or 'TenantPolicy' (got 'Policy')",
                 id="inline-policy-kind"),
    pytest.param("spec.policies[1].spec.rules", {"qosClass": "Gold"},
                 "spec.policies[1].spec.rules.qosClass: must be one of 'Guaranteed', 'Burstable' or 'BestEffort' "
                 "(got 'Gold')", id="inline-policy-value"),
    # the two forms of expect.violations and expect.patch: each reports below its own path
    pytest.param("spec.cases[1].expect.violations", {"contains": [{"rul": "x"}]},
                 "spec.cases[1].expect.violations.contains[0].rul: unknown field", id="contains-violation-unknown"),
    pytest.param("spec.cases[1].expect.violations", {"contains": []},
                 "spec.cases[1].expect.violations.contains: must list at least one violation", id="contains-empty"),
    pytest.param("spec.cases[1].expect.violations", "quota",
                 "spec.cases[1].expect.violations: must be a list or a mapping {contains: [...]} (got a string)",
                 id="violations-string"),
    pytest.param("spec.cases[1].expect.violations", {"contains": [{"rule": "quota", "count": -1}]},
                 "spec.cases[1].expect.violations.contains[0].count: input should be greater than or equal to 0",
                 id="count-negative"),
    pytest.param("spec.cases[1].expect.violations", [{"rule": "quota", "count": "2"}],
                 "spec.cases[1].expect.violations[0].count: input should be a valid integer", id="count-string"),
    pytest.param("spec.cases[1].expect.violations", [{"rule": "quota", "count": True}],
                 "spec.cases[1].expect.violations[0].count: input should be a valid integer", id="count-boolean"),
    pytest.param("spec.cases[0].expect.patch", {"contains": [{"op": "ad", "path": "/x"}]},
                 "spec.cases[0].expect.patch.contains[0].op: must be one of 'add', 'remove', 'replace', 'move', "
                 "'copy' or 'test' (got 'ad')", id="patch-contains-op"),
    pytest.param("spec.cases[0].expect.patch", {"contains": [{"op": "add"}]},
                 "spec.cases[0].expect.patch.contains[0].path: required field is missing", id="patch-contains-no-path"),
    pytest.param("spec.cases[0].expect.patch", {"contains": None},
                 "spec.cases[0].expect.patch.contains: must list at least one operation", id="patch-contains-null"),
    pytest.param("spec.cases[0].expect.patch", 3,
                 "spec.cases[0].expect.patch: must be a list or a mapping {contains: [...]} (got a number)",
                 id="patch-number"),
]


@pytest.mark.parametrize("path,value,expected", INVALID)
def test_an_invalid_suite_gives_one_line_naming_file_document_and_field(
        tmp_path: Path, path: str, value: Any, expected: str) -> None:
    suite = write_suite(tmp_path, (path, value))
    assert errors(suite) == [f"{suite}: document 1: {expected}"]


def test_every_problem_of_a_suite_is_reported_at_once_in_document_order(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, ("spec.cases[0].expect.allowd", True), ("spec.cases[1].operation", "create"),
                        ("spec.cases[2].expect", DROP), ("spec.policies[0]", 3))
    assert errors(suite) == [f"{suite}: document 1: {line}" for line in (
        "spec.policies[0]: must be a path or an inline policy (got a number)",
        "spec.cases[0].expect.allowd: unknown field",
        "spec.cases[1].operation: must be one of 'CREATE', 'UPDATE', 'DELETE' or 'CONNECT' (got 'create')",
        "spec.cases[2].expect: required field is missing",
    )]


@pytest.mark.parametrize("field,value", [
    ("spec.defualts", {}),
    ("spec.rules", {"qosClass": "Gold"}),
    ("spec.rules", {"requireLimits": ["cpus"]}),
    ("spec.defaults", {"resources": {"limits": {"cpu": "lots"}}}),
    ("spec.exemptions", [{"reason": "none named"}]),
])
def test_an_inline_policy_error_reads_as_the_policy_loaders_below_its_entry(
        tmp_path: Path, field: str, value: Any) -> None:
    policy = copy.deepcopy(INLINE)
    edit(policy, field, value)
    policy_file = tmp_path / "inline.yaml"
    policy_file.write_text(yaml.safe_dump(policy))
    with pytest.raises(PolicyError) as caught:
        load_policies([policy_file])
    prefix = f"{policy_file}: document 1: "
    assert caught.value.errors and all(line.startswith(prefix) for line in caught.value.errors)
    suite = write_suite(tmp_path, (f"spec.policies[1].{field}", value))
    assert errors(suite) == [f"{suite}: document 1: spec.policies[1].{without_hint(line).removeprefix(prefix)}"
                             for line in caught.value.errors]


def test_a_misspelt_contains_is_both_unknown_and_missing(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, ("spec.cases[1].expect.violations", {"contain": [{"rule": "x"}]}))
    assert errors(suite) == [f"{suite}: document 1: spec.cases[1].expect.violations.{line}" for line in (
        "contains: required field is missing", "contain: unknown field")]


def test_errors_found_after_the_schema_name_their_field_too(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, ("spec.cases[1].object", DROP), ("spec.cases[1].file", "missing.yaml"))
    [line] = errors(suite)
    assert line.startswith(f"{suite}: document 1: spec.cases[1].file: ")
    suite = write_suite(tmp_path, ("spec.clusterState[0]", "nowhere/"))
    [line] = errors(suite)
    assert line.startswith(f"{suite}: document 1: spec.clusterState[0]: ")


def test_a_file_of_several_documents_is_no_suite(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, text=yaml.safe_dump(BASE) + "---\n" + yaml.safe_dump(BASE))
    assert errors(suite) == [f"{suite}: expected one document of kind PolicyTest, found 2"]


def test_suite_errors_exit_2_through_the_cli(cli, tmp_path: Path) -> None:
    suite = write_suite(tmp_path, ("spec.cases[2].expect.allowd", True))
    assert issubclass(SuiteError, TenantguardError)
    result = cli("test", "--color", "never", str(suite))
    assert result.code == 2 and result.err == ""
    assert [without_hint(line) for line in result.out.splitlines()] == [
        f"INVALID  {suite}",
        f"      {suite}: document 1: spec.cases[2].expect.allowd: unknown field",
        f"0 cases: 0 passed, 0 failed; 1 invalid suite: {suite}",
    ]


def test_both_forms_of_violations_and_patch_load_as_written(tmp_path: Path) -> None:
    contains = {"contains": [{"rule": "requireLimits", "count": 1}, {"messageContains": "cpu"}]}
    patch = {"contains": [{"op": "add", "path": "/metadata/labels"}]}
    suite = load_suite(write_suite(tmp_path, ("spec.cases[1].expect.violations", contains),
                                   ("spec.cases[1].expect.patch", patch)), today=TODAY)
    assert suite.cases[1].expect == {"allowed": False, "violations": contains, "patch": patch}
    doc = PolicyTestDoc.model_validate(yaml.safe_load(write_suite(tmp_path, ("spec.cases[1].expect.violations",
                                                                               contains)).read_text()))
    assert isinstance(doc.spec.cases[1].expect.violations, ViolationsContains)
    assert isinstance(doc.spec.cases[0].expect.patch, list)
    assert load_suite(write_suite(tmp_path, ("spec.cases[1].expect.violations", None)),
                      today=TODAY).cases[1].expect["violations"] == []


# --- what stays accepted ---------------------------------------------------------------------

SHIPPED = sorted(GOLDEN.rglob("*.yaml")) + suite_files([str(EXAMPLES), str(POLICIES)])


@pytest.mark.parametrize("path", SHIPPED, ids=[str(p.relative_to(ROOT)) for p in SHIPPED])
def test_the_model_accepts_every_shipped_and_golden_suite(path: Path) -> None:
    [raw] = list(yaml.safe_load_all(path.read_text()))
    doc = PolicyTestDoc.model_validate(raw)
    assert len(doc.spec.cases) == len(raw["spec"]["cases"])
    for case, raw_case in zip(doc.spec.cases, raw["spec"]["cases"], strict=True):
        assert case.expect.as_mapping() == raw_case["expect"]  # what compare() reads, unchanged
    assert [c.name for c in load_suite(path, today=TODAY).cases] == [c["name"] for c in raw["spec"]["cases"]]


def test_the_example_in_the_docs_is_a_valid_suite() -> None:
    text = (ROOT / "docs" / "policy-tests.md").read_text()
    [example] = re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)
    doc = PolicyTestDoc.model_validate(yaml.safe_load(example))
    assert doc.spec.cases[0].user == UserInfo(username="alice", groups=["dev"])


def test_lenient_forms_accepted_before_keep_their_meaning(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(TENANT))
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump(pod()) + "---\n" + yaml.safe_dump(pod(False)))
    suite = tmp_path / "lenient.yaml"
    suite.write_text(
        "kind: PolicyTest\n"               # apiVersion defaults; metadata may be empty
        "metadata:\n"
        "spec:\n"
        "  policies: [p.yaml]\n"
        "  clusterState:\n"
        "  cases:\n"
        "  - name: 2024\n"
        "    namespace: t\n"
        "    object: {apiVersion: v1, kind: Pod, metadata: {name: p, namespace: other}, spec: {containers: []}}\n"
        "    before:\n"
        "    user: {username: bob, groups: null}\n"
        "    subresource: ephemeralcontainers\n"
        "    dryRun: true\n"
        "    expect: {allowed: true, warnings: null, tenant: null, violations: [{rule: x, actual: 1}]}\n"
        "  - file: pod.yaml\n"
        "    expect: {patch: [{op: move, from: /a, path: /b}]}\n"
        "  - object: {apiVersion: v1, kind: Pod, metadata: {name: q, namespace: other}, spec: {containers: []}}\n"
        "    user:\n"
        "    expect: {tenant: t}\n"
    )
    loaded = load_suite(suite, today=TODAY)
    assert loaded.name == "lenient" and loaded.state_objects == []
    first, second, third = loaded.cases
    assert [c.name for c in loaded.cases] == ["2024", "case 2", "case 3"]
    r = first.request
    assert (r.namespace, r.operation, r.subresource, r.username, r.groups, r.dry_run, r.today) == (
        "t", "CREATE", "ephemeralcontainers", "bob", (), True, TODAY)
    assert first.before == []
    assert first.expect == {"allowed": True, "warnings": [], "tenant": None,
                            "violations": [{"rule": "x", "actual": 1}]}
    assert second.request.obj == pod() and second.request.namespace == "default"
    assert second.expect == {"patch": [{"op": "move", "from": "/a", "path": "/b"}]}
    assert third.request.namespace == "other" and third.request.username == ""
    assert third.expect == {"tenant": "t"}


def test_a_case_becomes_the_request_it_describes(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path), today=TODAY)
    with_limits, without, update = suite.cases
    assert with_limits.request.namespace == "t" and with_limits.request.operation == "CREATE"
    assert with_limits.request.old_obj is None and with_limits.expect == {"allowed": True, "patch": []}
    assert (without.request.username, without.request.groups) == ("alice", ("dev",))
    assert without.expect == {"allowed": False, "violations": [{"rule": "requireLimits", "container": "c"}]}
    assert update.request.operation == "UPDATE" and update.request.old_obj == pod()
    assert [r.uid for r in (with_limits.request, without.request, update.request)] == ["test-0", "test-1", "test-2"]


# --- the reference in docs/policy-tests.md is the schema ----------------------------------------

DOC_TABLES: dict[str, type[BaseModel]] = {
    "Document": PolicyTestDoc, "metadata": SuiteMetadata, "spec": SuiteSpec, "case": CaseSpec, "user": UserInfo,
    "expect": Expectation, "violation": ExpectedViolation, "violations contains": ViolationsContains,
    "patch contains": PatchContains, "patch operation": PatchOperation,
}


def _doc_tables() -> dict[str, dict[str, str]]:
    """Per ``### heading`` of the reference: field -> its Default column."""
    tables: dict[str, dict[str, str]] = {}
    heading = ""
    for line in (ROOT / "docs" / "policy-tests.md").read_text().splitlines():
        if line.startswith("### "):
            heading = line[4:].strip()
        row = re.match(r"\| `([^`]+)` \| [^|]+ \| ([^|]+) \|", line)
        if heading and row:
            tables.setdefault(heading, {})[row[1]] = row[2].strip()
    return tables


def test_the_docs_list_every_field_and_which_are_required() -> None:
    tables = _doc_tables()
    assert set(tables) == set(DOC_TABLES)
    for heading, model in DOC_TABLES.items():
        fields = {(info.alias or name): info for name, info in model.model_fields.items()}
        assert set(tables[heading]) == set(fields), heading
        for name, info in fields.items():
            assert tables[heading][name].startswith("required") == info.is_required(), (heading, name)
