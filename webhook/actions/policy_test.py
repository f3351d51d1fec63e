"""Policy test suites (``kind: PolicyTest``, docs/policy-tests.md): load, run, compare, report.

Used by ``tenantguard test`` and by our golden tests, which run every case
through the core, the CLI and the HTTP server with the same expectations.
:func:`run_suites` runs many suite files into one :class:`Report`: an invalid suite is
part of it (``SuiteReport.error``), not the end of the run.
"""

from __future__ import annotations

import difflib
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from webhook.actions.dry_run import findings
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
#
# A mismatch names the expectation's field (``violations``, ``patch.contains``, ...), says in one
# line per problem what is wrong (``violations[1]: matches no violation``) and carries two YAML
# documents, the expected part and the actual one, which reports show as a diff. The actual
# document is shaped like the expected one: an entry that is met appears on both sides alike
# (context), one that is not is set against the nearest actual item, and what nothing expected
# (where that matters) comes last.

_WIDE = 1 << 30  # never fold long strings: a diff line per field


class _DiffDumper(yaml.SafeDumper):
    """Block style; a list's items indented under their key, so they stay readable behind diff markers."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _plain(value: Any) -> Any:
    """What the YAML safe dumper writes: mappings, lists and scalars; anything else as its text."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    for kind in (bool, int, float, str):  # subclasses (enums, ...) as their plain value
        if isinstance(value, kind):
            return kind(value)
    if value is None or type(value) in (date, datetime):
        return value
    return str(value)


def to_yaml(value: Any) -> str:
    """``value`` as block-style YAML, keys in their order (``yaml.safe_dump`` with sorted keys off)."""
    return yaml.dump(_plain(value), Dumper=_DiffDumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=_WIDE)


def _inline(value: Any) -> str:
    """A value as YAML on one line (``true``, ``null``, ``quota``, ``'a: b'``), for a problem's line."""
    text = yaml.safe_dump(_plain(value), default_flow_style=True, allow_unicode=True, width=_WIDE)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def yaml_diff(expected: Any, actual: Any) -> list[str]:
    """A unified diff of two values as YAML (``-`` expected, ``+`` actual); [] when they read the same.

    Short documents are shown whole; long ones by hunk, with three lines of context.
    """
    want, got = to_yaml(expected).splitlines(), to_yaml(actual).splitlines()
    whole = max(len(want), len(got)) <= 60
    lines = list(difflib.unified_diff(want, got, "expected", "actual",
                                      n=max(len(want), len(got)) if whole else 3, lineterm=""))
    if not lines:
        return []
    body = [line for line in lines[2:] if not (whole and line.startswith("@@"))]
    return ["--- expected", "+++ actual", *body]


@dataclass(slots=True)
class Mismatch:
    """One expectation not met: which field, one line per problem, and the expected and actual documents."""

    field: str
    problems: list[str]
    expected: dict[str, Any]
    actual: dict[str, Any]

    def diff(self) -> list[str]:
        return yaml_diff(self.expected, self.actual)

    def text(self) -> str:
        """The problems, then the YAML diff: what reports print."""
        return "\n".join([*self.problems, *self.diff()])

    def as_json(self) -> dict[str, Any]:
        return {"field": self.field, "message": "; ".join(self.problems), "expected": self.expected,
                "actual": self.actual, "diff": "\n".join(self.diff())}


def _nested(field: str, value: Any) -> dict[str, Any]:
    """``patch.contains``, value -> ``{patch: {contains: value}}``."""
    for key in reversed(field.split(".")):
        value = {key: value}
    return value


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _violation_matches(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    for key, value in expected.items():
        if key == "count":
            continue
        if key == "messageContains":
            if str(value) not in str(actual.get("message", "")):
                return False
        elif actual.get(key) != value:
            return False
    return True


def _assign(slot_entry: list[int], fits: list[list[bool]], n_actual: int) -> dict[int, int]:
    """A largest matching of slots (an entry's count of them) to distinct actual violations: actual -> slot.

    Augmenting paths (Kuhn): an entry never loses a violation to an earlier, looser one that could
    have taken another.
    """
    owner: dict[int, int] = {}

    def place(slot: int, seen: set[int]) -> bool:
        for a in range(n_actual):
            if fits[slot_entry[slot]][a] and a not in seen:
                seen.add(a)
                if a not in owner or place(owner[a], seen):
                    owner[a] = slot
                    return True
        return False

    for slot in range(len(slot_entry)):
        place(slot, set())
    return owner


def _nearest(entry: Mapping[str, Any], actual: list[dict[str, Any]], pool: list[int]) -> int | None:
    """The actual violation of ``pool`` that agrees with ``entry`` on the most fields (at least one)."""
    best, best_score = None, 0
    for a in pool:
        score = sum(1 for key, value in entry.items() if key != "count" and _violation_matches({key: value}, actual[a]))
        if score > best_score:
            best, best_score = a, score
    return best


def _aligned(violation: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
    """The violation with the entry's fields first, in its order (``message`` for ``messageContains``)."""
    keys = ["message" if key == "messageContains" else key for key in entry if key != "count"]
    out = {key: violation[key] for key in keys if key in violation}
    out.update((key, value) for key, value in violation.items() if key not in out)
    return out


def _count_problem(where: str, count: int, matching: int) -> str:
    verb = "matches" if matching == 1 else "match"
    return f"{where}: count {count}, but {_plural(matching, 'violation')} {verb}"


def _violations_mismatch(entries: list[Mapping[str, Any]], actual: list[dict[str, Any]],
                         field: str = "violations") -> Mismatch | None:
    """The exact list: each entry matches distinct actual violations (``count`` of them, else one), and every
    actual violation is matched; an entry with ``count`` matches exactly that many. ``field``: ``violations``
    (what denies) or ``findings`` (every finding)."""
    fits = [[_violation_matches(entry, a) for a in actual] for entry in entries]
    needs = [1 if entry.get("count") is None else int(entry["count"]) for entry in entries]
    slot_entry = [i for i, need in enumerate(needs) for _ in range(min(need, len(actual)))]
    owner = _assign(slot_entry, fits, len(actual))
    filled = Counter(slot_entry[slot] for slot in owner.values())
    unassigned = [a for a in range(len(actual)) if a not in owner]
    pool = list(unassigned)
    problems: list[str] = []
    shown: list[Any] = []
    for i, entry in enumerate(entries):
        where, count, matching = f"{field}[{i}]", entry.get("count"), sum(fits[i])
        if count is not None and matching != count:
            problems.append(_count_problem(where, count, matching))
            shown.append({**entry, "count": matching})
        elif filled[i] < needs[i]:
            problems.append(f"{where}: matches no violation" if matching == 0 else
                            f"{where}: the violations it matches are matched by other entries")
            near = _nearest(entry, actual, pool)
            if near is not None:
                pool.remove(near)
                shown.append(_aligned(actual[near], entry))
        else:
            shown.append(entry)
    if unassigned:
        problems.append(f"{field}: expected none, got {len(actual)}" if not entries else
                        f"{field}: {_plural(len(unassigned), 'violation')} not expected")
        shown.extend(actual[a] for a in pool)
    if not problems:
        return None
    return Mismatch(field, problems, {field: list(entries)}, {field: shown})


def _violations_contains_mismatch(entries: list[Mapping[str, Any]], actual: list[dict[str, Any]],
                                  top: str = "violations") -> Mismatch | None:
    """``{contains: [...]}``: each entry matches some actual violation (with ``count``: exactly that many);
    entries are independent, and other violations may exist."""
    field = f"{top}.contains"
    problems: list[str] = []
    shown: list[Any] = []
    everything = list(range(len(actual)))
    for i, entry in enumerate(entries):
        where, count = f"{field}[{i}]", entry.get("count")
        matching = sum(1 for a in actual if _violation_matches(entry, a))
        if count is not None and matching != count:
            problems.append(_count_problem(where, count, matching))
            shown.append({**entry, "count": matching})
        elif count is None and not matching:
            problems.append(f"{where}: matches no violation" if actual else f"{where}: there is no violation")
            near = _nearest(entry, actual, everything)
            if near is not None:
                shown.append(_aligned(actual[near], entry))
        else:
            shown.append(entry)
    if not problems:
        return None
    return Mismatch(top, problems, _nested(field, list(entries)), _nested(field, shown))


def _op_key(op: Any) -> str:
    return json.dumps(op, sort_keys=True, default=str)


def _op_view(op: Mapping[str, Any]) -> dict[str, Any]:
    """An RFC 6902 operation with its fields in the usual order: op, path, from, value."""
    out = {key: op[key] for key in ("op", "path", "from", "value") if key in op}
    out.update((key, value) for key, value in op.items() if key not in out)
    return out


def _op_sort_key(op: Mapping[str, Any]) -> tuple[str, str, str]:
    return str(op.get("path")), str(op.get("op")), _op_key(op)


def _patch_mismatch(entries: list[Mapping[str, Any]], patch: list[dict[str, Any]]) -> Mismatch | None:
    """The exact patch, in any order: every field of every operation compared."""
    want, got = Counter(_op_key(op) for op in entries), Counter(_op_key(op) for op in patch)
    if want == got:
        return None
    missing, extra = sum((want - got).values()), sum((got - want).values())
    if not entries:
        problems = [f"patch: expected no patch, got {_plural(len(patch), 'operation')}"]
    else:
        parts = [f"{_plural(missing, 'expected operation')} not in the patch" if missing else "",
                 f"{_plural(extra, 'operation')} not expected" if extra else ""]
        problems = ["patch: " + "; ".join(p for p in parts if p)]
    return Mismatch("patch", problems,
                    {"patch": [_op_view(op) for op in sorted(entries, key=_op_sort_key)]},
                    {"patch": [_op_view(op) for op in sorted(patch, key=_op_sort_key)]})


def _op_matches(entry: Mapping[str, Any], op: Mapping[str, Any]) -> bool:
    """Every field the entry gives equals the operation's (``value`` and ``from`` only when given)."""
    return all(key in op and _op_key(op[key]) == _op_key(value) for key, value in entry.items())


def _patch_contains_mismatch(field: str, entries: list[Mapping[str, Any]],
                             patch: list[dict[str, Any]]) -> Mismatch | None:
    problems: list[str] = []
    shown: list[Any] = []
    for i, entry in enumerate(entries):
        if any(_op_matches(entry, op) for op in patch):
            shown.append(_op_view(entry))
            continue
        same_path = [_op_view(op) for op in patch if op.get("path") == entry.get("path")]
        if same_path:
            problems.append(f"{field}[{i}]: not in the patch (its operation at {entry.get('path')} differs)")
        else:
            problems.append(f"{field}[{i}]: not in the patch, which has no operation at {entry.get('path')}")
        shown.extend(same_path)
    if not problems:
        return None
    return Mismatch(field.split(".")[0], problems, _nested(field, [_op_view(op) for op in entries]),
                    _nested(field, shown))


def _warnings_mismatch(wanted: list[Any], warnings: list[str]) -> Mismatch | None:
    problems: list[str] = []
    shown: list[str] = []
    used: set[int] = set()
    if not wanted and warnings:
        problems.append(f"warnings: expected none, got {len(warnings)}")
    for i, text in enumerate(wanted):
        hit = next((k for k, w in enumerate(warnings) if str(text) in w), None)
        if hit is None:
            problems.append(f"warnings[{i}]: no warning contains {_inline(str(text))}")
        else:
            used.add(hit)
            shown.append(str(text))
    if not problems:
        return None
    shown.extend(w for k, w in enumerate(warnings) if k not in used)
    return Mismatch("warnings", problems, {"warnings": [str(t) for t in wanted]}, {"warnings": shown})


def mismatches(expect: Mapping[str, Any], decision: Decision) -> list[Mismatch]:
    """The expectations a decision does not meet (none: the case passes), in the order of the expect fields."""
    out: list[Mismatch | None] = []
    violations = [v.as_json() for v in decision.violations]
    if "allowed" in expect and bool(expect["allowed"]) != decision.allowed:
        actual: dict[str, Any] = {"allowed": decision.allowed}
        if violations and "violations" not in expect:  # why it was denied
            actual["violations"] = violations
        problem = f"allowed: expected {_inline(bool(expect['allowed']))}, got {_inline(decision.allowed)}"
        out.append(Mismatch("allowed", [problem], {"allowed": bool(expect["allowed"])}, actual))
    if "tenant" in expect and expect["tenant"] != decision.tenant:
        out.append(Mismatch("tenant", [f"tenant: expected {_inline(expect['tenant'])}, got {_inline(decision.tenant)}"],
                            {"tenant": expect["tenant"]}, {"tenant": decision.tenant}))
    every = [v.as_json() for v in findings(decision)]
    for key, actual_list in (("violations", violations), ("findings", every)):
        wanted = expect.get(key)
        if isinstance(wanted, Mapping):
            out.append(_violations_contains_mismatch(list(wanted["contains"]), actual_list, key))
        elif key in expect:
            out.append(_violations_mismatch(list(wanted or []), actual_list, key))
    patch = decision.patch_json()
    wanted_patch = expect.get("patch")
    if isinstance(wanted_patch, Mapping):
        out.append(_patch_contains_mismatch("patch.contains", list(wanted_patch["contains"]), patch))
    elif "patch" in expect:
        out.append(_patch_mismatch(list(wanted_patch or []), patch))
    if expect.get("patchContains"):
        out.append(_patch_contains_mismatch("patchContains", list(expect["patchContains"]), patch))
    if "warnings" in expect:
        out.append(_warnings_mismatch(list(expect["warnings"] or []), decision.warnings))
    return [m for m in out if m is not None]


def compare(expect: Mapping[str, Any], decision: Decision) -> list[str]:
    """The expectations a decision does not meet, as report text (each: its problems, then a YAML diff)."""
    return [m.text() for m in mismatches(expect, decision)]


# --- running -----------------------------------------------------------------------------------

@dataclass(slots=True)
class CaseResult:
    suite: str
    case: str
    mismatches: list[Mismatch]
    decision: Decision
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.mismatches

    @property
    def failures(self) -> list[str]:
        """Each mismatch as report text: its problems, then a YAML diff."""
        return [m.text() for m in self.mismatches]

    def as_json(self) -> dict[str, Any]:
        d = self.decision
        return {
            "name": self.case,
            "passed": self.passed,
            "failures": [m.as_json() for m in self.mismatches],
            "decision": {"allowed": d.allowed, "tenant": d.tenant, "violations": [v.as_json() for v in d.violations],
                         "findings": [v.as_json() for v in findings(d)],
                         "warnings": list(d.warnings), "patch": d.patch_json()},
        }


Evaluator = Callable[[Case, Suite, InMemoryClusterState], Decision]


def core_evaluator(case: Case, suite: Suite, state: InMemoryClusterState) -> Decision:
    return judge(case.request, suite.policies, state)


def run_suite(suite: Suite, evaluate: Evaluator = core_evaluator) -> list[CaseResult]:
    """Run every case on a fresh cluster state; SuiteError when a case's objects cannot join the state."""
    results = []
    for case in suite.cases:
        started = time.perf_counter()
        state = suite.fresh_state()
        try:
            for obj in case.before:
                ns = _namespace_of(obj) or case.request.namespace
                judge(from_manifest(obj, default_namespace=ns), suite.policies, state)
            decision = evaluate(case, suite, state)
        except StateError as exc:
            raise SuiteError(f"{suite.source}: case {case.name!r}: {exc}") from None
        found = mismatches(case.expect, decision)
        results.append(CaseResult(suite.name, case.name, found, decision, time.perf_counter() - started))
    return results


@dataclass(slots=True)
class SuiteReport:
    """One suite file's outcome: its selected cases' results, or, when it is invalid, why (``error``)."""

    source: str
    name: str
    results: list[CaseResult] = field(default_factory=list)
    error: list[str] = field(default_factory=list)  # one line per problem (file, document, field)
    seconds: float = 0.0

    @property
    def invalid(self) -> bool:
        return bool(self.error)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "source": self.source, "cases": [r.as_json() for r in self.results]}
        if self.error:
            out["error"] = "\n".join(self.error)
        return out


@dataclass(slots=True)
class Report:
    """Every suite run (those with a selected case, and every invalid one), and the cases left out by ``select``."""

    suites: list[SuiteReport] = field(default_factory=list)
    selected: int = 0  # cases picked to run, in the suites that loaded
    deselected: int = 0  # cases left out by ``select``

    @property
    def results(self) -> list[CaseResult]:
        return [r for s in self.suites for r in s.results]

    @property
    def passed(self) -> int:
        return sum(1 for r in self.results if r.passed)

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results if not r.passed)

    @property
    def errors(self) -> int:
        """How many suites are invalid."""
        return sum(1 for s in self.suites if s.invalid)

    def as_json(self) -> dict[str, Any]:
        return {"suites": [s.as_json() for s in self.suites],
                "summary": {"passed": self.passed, "failed": self.failed, "errors": self.errors,
                            "deselected": self.deselected}}


def selects(pattern: re.Pattern[str], suite: str, case: str) -> bool:
    """Whether ``--run`` picks a case: the pattern is found in its name or in ``suite::case``."""
    return bool(pattern.search(case) or pattern.search(f"{suite}::{case}"))


def _declared_name(path: Path) -> str:
    """An invalid suite's name: its ``metadata.name`` when it can be read, else the file name without suffix."""
    try:
        docs = load_documents(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError, InputError):
        return path.stem
    meta = docs[0].get("metadata") if len(docs) == 1 and isinstance(docs[0], dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return str(name) if isinstance(name, (str, int)) and not isinstance(name, bool) and str(name) else path.stem


def run_suites(paths: Sequence[str | Path], *, today: date | None = None, select: re.Pattern[str] | None = None,
               evaluate: Evaluator = core_evaluator) -> Report:
    """Load and run every suite; an invalid one is reported (``SuiteReport.error``) and the others still run.

    With ``select``, only the cases it picks (:func:`selects`) run; a suite none of whose cases is
    picked is left out of the report, an invalid one never is.
    """
    report = Report()
    for p in paths:
        path = Path(p)
        started = time.perf_counter()
        try:
            suite = load_suite(path, today=today)
        except TenantguardError as exc:
            report.suites.append(SuiteReport(str(path), _declared_name(path), error=_lines(exc),
                                             seconds=time.perf_counter() - started))
            continue
        chosen = [c for c in suite.cases if select is None or selects(select, suite.name, c.name)]
        report.selected += len(chosen)
        report.deselected += len(suite.cases) - len(chosen)
        if not chosen:
            continue
        try:
            results = run_suite(replace(suite, cases=chosen), evaluate)
        except TenantguardError as exc:
            report.suites.append(SuiteReport(suite.source, suite.name, error=_lines(exc),
                                             seconds=time.perf_counter() - started))
            continue
        report.suites.append(SuiteReport(suite.source, suite.name, results, seconds=time.perf_counter() - started))
    return report


def _lines(exc: TenantguardError) -> list[str]:
    return str(exc).splitlines() or [type(exc).__name__]
