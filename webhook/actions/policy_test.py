"""Policy test suites (``kind: PolicyTest``, docs/policy-tests.md): load, run, compare.

Used by ``tenantguard test`` and by our golden tests, which run every case
through the core, the CLI and the HTTP server with the same expectations.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from webhook.core.cluster_state import StateError
from webhook.core.decision import Decision
from webhook.core.errors import TenantguardError
from webhook.core.pipeline import judge
from webhook.core.plan import PolicySet
from webhook.core.request import AdmissionRequest, ReviewError, from_manifest, from_review
from webhook.inputs.manifests import parse_text, read_objects
from webhook.inputs.yamlio import InputError, document_files, load_documents
from webhook.policy.loader import PolicyError, SourceDoc, build_policy_set, error_lines, read_documents
from webhook.policy.suite import KIND, CaseSpec, PolicyTestDoc, UserInfo
from webhook.views.memory import InMemoryClusterState


class SuiteError(TenantguardError):
    """A suite file is malformed (exit code 2)."""


@dataclass(slots=True)
class Case:
    name: str
    request: AdmissionRequest
    before: list[dict[str, Any]]
    expect: Mapping[str, Any]


@dataclass(slots=True)
class Suite:
    name: str
    source: str
    policies: PolicySet
    state_objects: list[dict[str, Any]]
    cases: list[Case] = field(default_factory=list)

    def fresh_state(self) -> InMemoryClusterState:
        """The suite's cluster state, anew; SuiteError naming the object that cannot join it."""
        state = InMemoryClusterState()
        for index, obj in enumerate(self.state_objects):
            try:
                state.add_object(obj)
            except StateError as exc:
                raise SuiteError(f"{self.source}: spec.clusterState object {index + 1}: {exc}") from None
        return state


@dataclass(slots=True)
class CaseResult:
    suite: str
    case: str
    failures: list[str]
    decision: Decision

    @property
    def passed(self) -> bool:
        return not self.failures


def _resolve(base: Path, entry: str) -> Path:
    path = Path(entry)
    return path if path.is_absolute() else base / path


def _load_policies(entries: list[str | dict[str, Any]], base: Path, source: str) -> PolicySet:
    docs: list[SourceDoc] = []
    for index, entry in enumerate(entries):
        if isinstance(entry, str):
            found, errors = read_documents([_resolve(base, entry)])
            if errors:
                raise SuiteError("\n".join(errors))
            docs.extend(found)
        else:  # inline: the suite schema has validated it; this names it in cross-document errors
            docs.append(SourceDoc(entry, f"{source}: spec.policies[{index}]", 1))
    try:
        return build_policy_set(docs)
    except PolicyError as exc:
        raise SuiteError("\n".join(exc.errors)) from None


def _objects(entries: list[str | dict[str, Any]], base: Path, where: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        if isinstance(entry, str):
            try:
                out.extend(item.obj for item in read_objects([str(_resolve(base, entry))]))
            except InputError as exc:
                raise SuiteError(f"{where}[{index}]: {exc}") from None
        else:
            out.append(entry)
    return out


def _namespace_of(obj: Mapping[str, Any]) -> Any:
    meta = obj.get("metadata")
    return meta.get("namespace") if isinstance(meta, dict) else None


def _case_object(spec: CaseSpec, base: Path, at: str) -> dict[str, Any]:
    if spec.object is not None:
        return spec.object
    assert spec.file is not None  # CaseSpec: one of them
    path = _resolve(base, spec.file)
    try:
        docs = parse_text(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError, InputError) as exc:
        raise SuiteError(f"{at}.file: {exc}") from None
    if not docs or not isinstance(docs[0], dict):
        raise SuiteError(f"{at}.file: {path}: the first document must be a Kubernetes object "
                         "or an AdmissionReview")
    return docs[0]


def _case(spec: CaseSpec, index: int, base: Path, where: str, default_ns: str, today: date | None) -> Case:
    at = f"{where}: spec.cases[{index}]"
    obj = _case_object(spec, base, at)
    if obj.get("kind") == "AdmissionReview":
        try:
            request = from_review(obj, today=today)
        except ReviewError as exc:
            raise SuiteError(f"{at}.object: invalid AdmissionReview: {exc}") from None
    else:
        user = spec.user or UserInfo()
        namespace = spec.namespace or _namespace_of(obj) or default_ns
        base_request = from_manifest(obj, default_namespace=namespace, today=today,
                                     username=user.username, groups=tuple(user.groups))
        request = AdmissionRequest(
            obj=obj,
            namespace=spec.namespace or base_request.namespace,
            operation=spec.operation,
            old_obj=spec.oldObject,
            uid=f"test-{index}",
            subresource=spec.subresource,
            username=base_request.username,
            groups=base_request.groups,
            dry_run=spec.dryRun,
            today=today,
        )
    return Case(spec.name or f"case {index + 1}", request, _objects(spec.before, base, f"{at}.before"),
                spec.expect.as_mapping())


def load_suite(path: str | Path, *, today: date | None = None) -> Suite:
    """Load a suite; ``today`` (default: the real date) decides which exemptions have expired.

    SuiteError names the file, the document and the field path of every schema error
    (``tests/x.yaml: document 1: spec.cases[2].expect.allowd: unknown field``).
    """
    path = Path(path)
    today = today or date.today()
    try:
        docs = load_documents(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{path}: cannot read: {exc}") from None
    except InputError as exc:
        raise SuiteError(str(exc)) from None
    if len(docs) != 1:
        raise SuiteError(f"{path}: expected one document of kind {KIND}, found {len(docs)}")
    where = f"{path}: document 1"
    kind = docs[0].get("kind") if isinstance(docs[0], dict) else KIND
    if kind != KIND:  # not a suite at all (a policy file?): one line, not one per field
        raise SuiteError(f"{where}: kind: must be {KIND} (got {kind!r})")
    try:
        doc = PolicyTestDoc.model_validate(docs[0])
    except ValidationError as exc:
        raise SuiteError("\n".join(error_lines(exc, where))) from None
    base = path.parent
    spec = doc.spec
    suite = Suite(
        name=(doc.metadata.name if doc.metadata else None) or path.stem,
        source=str(path),
        policies=_load_policies(spec.policies, base, str(path)),
        state_objects=_objects(spec.clusterState, base, f"{where}: spec.clusterState"),
    )
    default_ns = spec.namespace or "default"
    suite.cases = [_case(c, i, base, where, default_ns, today) for i, c in enumerate(spec.cases)]
    return suite


def suite_files(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out.extend(f for f in document_files(path, (".yaml", ".yml")) if _is_suite(f))
        else:
            out.append(path)
    return out


def _is_suite(path: Path) -> bool:
    try:
        head = path.read_text(encoding="utf-8")[:4096]
    except (OSError, UnicodeDecodeError):
        return False
    return f"kind: {KIND}" in head


# --- comparing ---------------------------------------------------------------------------------

def _violation_matches(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    for key, value in expected.items():
        if key == "messageContains":
            if str(value) not in str(actual.get("message", "")):
                return False
        elif actual.get(key) != value:
            return False
    return True


def _op_key(op: Mapping[str, Any]) -> str:
    return json.dumps(op, sort_keys=True, default=str)


def compare(expect: Mapping[str, Any], decision: Decision) -> list[str]:
    """Differences between an expectation block and a decision (empty: the case passes)."""
    failures: list[str] = []
    if "allowed" in expect and bool(expect["allowed"]) != decision.allowed:
        detail = "; ".join(v.summary() for v in decision.violations) or "no violations"
        failures.append(f"allowed: expected {expect['allowed']}, got {decision.allowed} ({detail})")
    if "tenant" in expect and expect["tenant"] != decision.tenant:
        failures.append(f"tenant: expected {expect['tenant']!r}, got {decision.tenant!r}")
    if "violations" in expect:
        wanted = list(expect["violations"] or [])
        actual = [v.as_json() for v in decision.violations]
        remaining = list(actual)
        for w in wanted:
            match = next((a for a in remaining if _violation_matches(w, a)), None)
            if match is None:
                failures.append(f"violations: expected one matching {w}; got {actual}")
            else:
                remaining.remove(match)
        if len(wanted) != len(actual):
            failures.append(f"violations: expected {len(wanted)}, got {len(actual)}: "
                            f"{[a['rule'] + ': ' + a['message'] for a in actual]}")
    patch = decision.patch_json()
    if "patch" in expect:
        want = sorted(_op_key(op) for op in expect["patch"] or [])
        got = sorted(_op_key(op) for op in patch)
        if want != got:
            failures.append(f"patch: expected {expect['patch']}, got {patch}")
    for op in expect.get("patchContains") or []:
        if _op_key(op) not in {_op_key(p) for p in patch}:
            failures.append(f"patchContains: {op} not in patch {patch}")
    if "warnings" in expect:
        wanted_w = list(expect["warnings"] or [])
        if not wanted_w and decision.warnings:
            failures.append(f"warnings: expected none, got {decision.warnings}")
        for text in wanted_w:
            if not any(str(text) in w for w in decision.warnings):
                failures.append(f"warnings: none contains {text!r}; got {decision.warnings}")
    return failures


Evaluator = Callable[[Case, Suite, InMemoryClusterState], Decision]


def core_evaluator(case: Case, suite: Suite, state: InMemoryClusterState) -> Decision:
    return judge(case.request, suite.policies, state)


def run_suite(suite: Suite, evaluate: Evaluator = core_evaluator) -> list[CaseResult]:
    """Run every case on a fresh cluster state; SuiteError when a case's objects cannot join the state."""
    results = []
    for case in suite.cases:
        state = suite.fresh_state()
        try:
            for obj in case.before:
                ns = _namespace_of(obj) or case.request.namespace
                judge(from_manifest(obj, default_namespace=ns), suite.policies, state)
            decision = evaluate(case, suite, state)
        except StateError as exc:
            raise SuiteError(f"{suite.source}: case {case.name!r}: {exc}") from None
        results.append(CaseResult(suite.name, case.name, compare(case.expect, decision), decision))
    return results
