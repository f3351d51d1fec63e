"""Golden cases (tests/golden/**.yaml, PolicyTest format) through the core and through the CLI.

For every case, beyond its own expectations:
- the patch equals jsonpatch's diff of original -> mutated (ops compared as a set),
  and applying it to the original gives the mutated object;
- a second pass over the mutated object yields no patch (idempotence);
- the mutated object passes the Kubernetes 1.35 OpenAPI schema.
The CLI runs `tenantguard test` per suite and `tenantguard dry-run --output json`
per CREATE case, and must give the core's decisions: its `violations` are every finding of
the core (the Enforce ones, then Warn, then Audit), each with the enforcement it was handled
under, and only an Enforce finding makes `allowed` false.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonpatch
import pytest

from tests import k8s_schema
from tests.conftest import golden_case_params, golden_suites, run_cli
from webhook.core.engine import evaluate
from webhook.core.request import AdmissionRequest
from webhook.actions.policy_test import load_suite, run_suite
from webhook.inputs.yamlio import dump_all

SUITES = golden_suites()


CASES = golden_case_params()


def _dry_run_expressible(path: Path, index: int) -> bool:
    """dry-run judges bare manifests as a CREATE by an anonymous user, with nothing admitted before."""
    case = load_suite(path).cases[index]
    r = case.request
    return (r.operation == "CREATE" and not case.before and not r.username and not r.groups and not r.subresource
            and r.obj is not None and r.obj.get("kind") != "AdmissionReview")


DRY_RUN_CASES = [c for c in CASES if _dry_run_expressible(*c.values)]


def _key(op: dict) -> str:
    return json.dumps(op, sort_keys=True)


@pytest.mark.parametrize("path,index", CASES)
def test_case_through_core(suites, path: Path, index: int) -> None:
    suite = suites[path]
    case = suite.cases[index]
    result = run_suite(type(suite)(suite.name, suite.source, suite.policies, suite.state_objects, [case]))[0]
    assert result.passed, "\n".join(result.failures)
    decision = result.decision
    if decision.mutated is None or case.request.obj is None:
        return
    original = json.loads(json.dumps(case.request.obj))
    patch = decision.patch_json()
    # ops == jsonpatch's diff, and they rebuild the mutated object
    expected_ops = jsonpatch.make_patch(original, decision.mutated).patch
    assert sorted(map(_key, patch)) == sorted(map(_key, expected_ops))
    assert jsonpatch.apply_patch(original, patch) == decision.mutated
    # idempotence: a second pass over our own output changes nothing
    again = AdmissionRequest(
        obj=decision.mutated, namespace=case.request.namespace, operation=case.request.operation,
        old_obj=case.request.old_obj, subresource=case.request.subresource, username=case.request.username,
        groups=case.request.groups, today=case.request.today,
    )
    state = suite.fresh_state()
    assert evaluate(again, suite.policies, state, validate=False).patch == []
    # what we emit is valid Kubernetes
    if decision.patch:
        k8s_schema.assert_valid(decision.mutated)


@pytest.mark.parametrize("path", SUITES, ids=[str(p.relative_to(p.parents[1])) for p in SUITES])
def test_suite_through_cli_test_command(path: Path) -> None:
    result = run_cli("test", "--color", "never", str(path))
    assert result.code == 0, result.out + result.err


@pytest.mark.parametrize("path,index", DRY_RUN_CASES)
def test_case_through_cli_dry_run(suites, tmp_path: Path, path: Path, index: int) -> None:
    suite = suites[path]
    case = suite.cases[index]
    core = run_suite(type(suite)(suite.name, suite.source, suite.policies, suite.state_objects, [case]))[0].decision
    raw_policies = _suite_policies(path)
    policy_file = tmp_path / "policies.yaml"
    policy_file.write_text(dump_all(raw_policies))
    manifest = tmp_path / "object.yaml"
    obj = dict(case.request.obj)
    obj["metadata"] = dict(obj.get("metadata") or {}, namespace=case.request.namespace)
    manifest.write_text(dump_all([obj]))
    args = ["dry-run", "--policies", str(policy_file), "--output", "json", str(manifest)]
    if suite.state_objects:
        state_file = tmp_path / "state.yaml"
        state_file.write_text(dump_all(suite.state_objects))
        args[1:1] = ["--cluster-state", str(state_file)]
    result = run_cli(*args)
    assert result.code == (0 if core.allowed else 1), result.err
    [item] = result.json()["results"]
    assert item["allowed"] == core.allowed
    assert item["tenant"] == core.tenant
    assert item["patch"] == core.patch_json()
    # every finding, each with the enforcement it was handled under: Enforce (denies), Warn, Audit
    findings = [(v, "Enforce") for v in core.violations] + [(v, "Warn") for v in core.warned] + \
        [(v, "Audit") for v in core.audit]
    assert item["violations"] == [{**v.as_json(), "enforcement": mode} for v, mode in findings]
    assert [v for v in item["violations"] if v["enforcement"] == "Enforce"] == [v.as_json() for v in core.violations]
    assert item["allowed"] == (not any(v["enforcement"] == "Enforce" for v in item["violations"]))
    assert item["warnings"] == core.warnings
    assert item.get("skipped") == core.skipped


def _suite_policies(path: Path) -> list[dict]:
    """The suite's policies as raw documents (inline ones, and files/directories it names)."""
    from webhook.policy.loader import read_documents
    from webhook.inputs.yamlio import load_documents

    doc = load_documents(path.read_text(), str(path))[0]
    out = []
    for entry in doc["spec"]["policies"]:
        if isinstance(entry, dict):
            out.append(entry)
        else:
            found, errors = read_documents([path.parent / entry])
            assert not errors
            out.extend(d.raw for d in found)
    return out
