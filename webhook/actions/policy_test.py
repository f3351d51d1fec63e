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

from webhook.core.errors import TenantguardError
from webhook.views.memory import InMemoryClusterState
from webhook.core.cluster_state import StateError
from webhook.core.decision import Decision
from webhook.core.plan import PolicySet
from webhook.core.request import AdmissionRequest, ReviewError, from_manifest, from_review
from webhook.actions.dry_run import admit
from webhook.inputs.manifests import parse_text, read_objects
from webhook.policy.loader import PolicyError, SourceDoc, build_policy_set, read_documents
from webhook.inputs.yamlio import InputError, document_files, load_documents

KIND = "PolicyTest"
EXPECT_KEYS = {"allowed", "violations", "patch", "patchContains", "warnings", "tenant"}
CASE_KEYS = {"name", "namespace", "operation", "subresource", "user", "object", "file", "oldObject", "before",
             "expect", "dryRun"}
VIOLATION_KEYS = {"policy", "rule", "check", "container", "field", "message", "messageContains", "enforcement",
                  "actual", "required"}


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


def _load_policies(spec: Mapping[str, Any], base: Path, where: str) -> PolicySet:
    entries = spec.get("policies")
    if not isinstance(entries, list) or not entries:
        raise SuiteError(f"{where}: spec.policies: must list policy files/directories or inline policies")
    docs: list[SourceDoc] = []
    for index, entry in enumerate(entries):
        if isinstance(entry, str):
            found, errors = read_documents([_resolve(base, entry)])
            if errors:
                raise SuiteError("\n".join(errors))
            docs.extend(found)
        elif isinstance(entry, dict):
            docs.append(SourceDoc(entry, f"{where}: spec.policies[{index}]", 1))
        else:
            raise SuiteError(f"{where}: spec.policies[{index}]: must be a path or an inline policy")
    try:
        return build_policy_set(docs)
    except PolicyError as exc:
        raise SuiteError("\n".join(exc.errors)) from None


def _objects(entries: Any, base: Path, where: str) -> list[dict[str, Any]]:
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise SuiteError(f"{where}: must be a list of paths or objects")
    out: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        if isinstance(entry, str):
            try:
                out.extend(item.obj for item in read_objects([str(_resolve(base, entry))]))
            except InputError as exc:
                raise SuiteError(f"{where}[{index}]: {exc}") from None
        elif isinstance(entry, dict):
            out.append(entry)
        else:
            raise SuiteError(f"{where}[{index}]: must be a path or an object")
    return out


def _case(raw: Any, index: int, base: Path, where: str, default_ns: str, today: date | None) -> Case:
    at = f"{where}: spec.cases[{index}]"
    if not isinstance(raw, dict):
        raise SuiteError(f"{at}: must be a mapping")
    unknown = set(raw) - CASE_KEYS
    if unknown:
        raise SuiteError(f"{at}.{min(unknown)}: unknown field")
    name = str(raw.get("name") or f"case {index + 1}")
    expect = raw.get("expect")
    if not isinstance(expect, dict) or not expect:
        raise SuiteError(f"{at}.expect: required (allowed, violations, patch, patchContains, warnings, tenant)")
    unknown = set(expect) - EXPECT_KEYS
    if unknown:
        raise SuiteError(f"{at}.expect.{min(unknown)}: unknown field")
    for key in ("violations", "patch", "patchContains", "warnings"):
        if expect.get(key) is not None and not isinstance(expect[key], list):
            raise SuiteError(f"{at}.expect.{key}: must be a list")
    for i, wanted in enumerate(expect.get("violations") or ()):
        if not isinstance(wanted, dict):
            raise SuiteError(f"{at}.expect.violations[{i}]: must be a mapping ({', '.join(sorted(VIOLATION_KEYS))})")
        if set(wanted) - VIOLATION_KEYS:
            raise SuiteError(f"{at}.expect.violations[{i}].{min(set(wanted) - VIOLATION_KEYS)}: unknown field")
    obj = raw.get("object")
    if obj is None and "file" in raw:
        path = _resolve(base, str(raw["file"]))
        try:
            docs = parse_text(path.read_text(encoding="utf-8"), str(path))
        except (OSError, UnicodeDecodeError, InputError) as exc:
            raise SuiteError(f"{at}.file: {exc}") from None
        obj = docs[0] if docs else None
    if not isinstance(obj, dict):
        raise SuiteError(f"{at}: needs `object` (a Kubernetes object or AdmissionReview) or `file`")
    if obj.get("kind") == "AdmissionReview":
        try:
            request = from_review(obj, today=today)
        except ReviewError as exc:
            raise SuiteError(f"{at}.object: invalid AdmissionReview: {exc}") from None
    else:
        user = raw.get("user") or {}
        groups = (user.get("groups") or []) if isinstance(user, dict) else None
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise SuiteError(f"{at}.user: must be a mapping with username (a string) and groups (strings)")
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        namespace = raw.get("namespace") or meta.get("namespace") or default_ns
        base_request = from_manifest(obj, default_namespace=namespace, today=today,
                                     username=str(user.get("username", "")), groups=tuple(groups))
        request = AdmissionRequest(
            obj=obj,
            namespace=str(raw.get("namespace") or base_request.namespace),
            operation=str(raw.get("operation", "CREATE")),
            old_obj=raw.get("oldObject"),
            uid=f"test-{index}",
            subresource=str(raw.get("subresource", "")),
            username=base_request.username,
            groups=base_request.groups,
            dry_run=bool(raw.get("dryRun", False)),
            today=today,
        )
    return Case(name, request, _objects(raw.get("before"), base, f"{at}.before"), expect)


def load_suite(path: str | Path, *, today: date | None = None) -> Suite:
    """Load a suite; ``today`` (default: the real date) decides which exemptions have expired."""
    path = Path(path)
    today = today or date.today()
    where = str(path)
    try:
        docs = load_documents(path.read_text(encoding="utf-8"), where)
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{where}: cannot read: {exc}") from None
    except InputError as exc:
        raise SuiteError(str(exc)) from None
    if len(docs) != 1 or not isinstance(docs[0], dict) or docs[0].get("kind") != KIND:
        raise SuiteError(f"{where}: expected one document of kind {KIND}")
    doc = docs[0]
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        raise SuiteError(f"{where}: spec: required")
    base = path.parent
    suite = Suite(
        name=str((doc.get("metadata") or {}).get("name") or path.stem),
        source=where,
        policies=_load_policies(spec, base, where),
        state_objects=_objects(spec.get("clusterState"), base, f"{where}: spec.clusterState"),
    )
    cases = spec.get("cases")
    if not isinstance(cases, list) or not cases:
        raise SuiteError(f"{where}: spec.cases: must be a non-empty list")
    default_ns = str(spec.get("namespace") or "default")
    suite.cases = [_case(c, i, base, where, default_ns, today) for i, c in enumerate(cases)]
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
    return admit(case.request, suite.policies, state)


def run_suite(suite: Suite, evaluate: Evaluator = core_evaluator) -> list[CaseResult]:
    """Run every case on a fresh cluster state; SuiteError when a case's objects cannot join the state."""
    results = []
    for case in suite.cases:
        state = suite.fresh_state()
        try:
            for obj in case.before:
                meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
                ns = meta.get("namespace") or case.request.namespace
                admit(from_manifest(obj, default_namespace=ns), suite.policies, state)
            decision = evaluate(case, suite, state)
        except StateError as exc:
            raise SuiteError(f"{suite.source}: case {case.name!r}: {exc}") from None
        results.append(CaseResult(suite.name, case.name, compare(case.expect, decision), decision))
    return results
