"""Loading policy files: YAML -> validated documents -> one compiled PolicySet.

Every error line starts with the file it is about, then names the document
(1-based, in file order) and the field path, and all errors of a load are
reported together::

    policies/x.yaml: document 1: spec.defualts: unknown field

A conflict between two files (a policy name defined twice, a namespace claimed
by two tenants) is reported against the later file and names the earlier one.
A file that holds no document (0 bytes, only whitespace or comments, e.g. one
truncated by a non-atomic rewrite) is an error, never an empty set of rules.

Directories are read recursively (``*.yaml``, ``*.yml``, ``*.json``), skipping
hidden entries, so a mounted ConfigMap's ``..data`` indirection is read once.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from webhook.core.errors import TenantguardError
from webhook.core.plan import CompiledPolicy, PolicySet
from webhook.core.selectors import glob_match, glob_start, globs_overlap, is_glob
from webhook.inputs.yamlio import InputError, document_files, load_documents
from webhook.policy import schema
from webhook.policy.compile import PolicyCompileError, compile_policy
from webhook.policy.fields import TYPE_TAG, unknown_field_hint

_PLAIN_PART = re.compile(r"[A-Za-z0-9_-]+")
_MODEL_NAMES = {name for name, obj in vars(schema).items() if isinstance(obj, type)}


class PolicyError(TenantguardError):
    """One or more policy files are invalid; ``errors`` holds one line per problem."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors

    def lines(self) -> list[str]:
        return [f"error: {line}" for line in self.errors]


@dataclass(frozen=True, slots=True)
class SourceDoc:
    """One raw document and where it came from."""

    raw: Any
    source: str
    index: int  # 1-based position in its file; 0 for an object that is not in a file (a custom resource)

    @property
    def where(self) -> str:
        """How error lines name it: ``policies/x.yaml: document 2``, or ``TenantPolicy/team-a``."""
        return f"{self.source}: document {self.index}" if self.index else self.source


def policy_files(paths: Iterable[str | Path]) -> list[Path]:
    """The policy files under ``paths`` (files as given; directories walked, sorted, hidden entries skipped)."""
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out.extend(document_files(path))
        elif path.exists():
            out.append(path)
        else:
            raise PolicyError([f"{path}: no such file or directory"])
    return out


def read_documents(paths: Iterable[str | Path]) -> tuple[list[SourceDoc], list[str]]:
    docs: list[SourceDoc] = []
    errors: list[str] = []
    for path in policy_files(paths):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(f"{path}: cannot read: {exc}")
            continue
        try:
            raw_docs = load_documents(text, str(path), strict=True)
        except InputError as exc:
            errors.append(str(exc))
            continue
        if not raw_docs:
            errors.append(f"{path}: {_empty_file(text)} (a policy file must hold at least one policy document)")
            continue
        docs.extend(SourceDoc(raw, str(path), i) for i, raw in enumerate(raw_docs, start=1))
    return docs, errors


def _empty_file(text: str) -> str:
    if not text.strip():
        return "file is empty"
    return "file holds no document, only comments, blank lines or empty documents"


def format_loc(loc: Sequence[Any], field_last: bool = False) -> str:
    """``loc`` as a field path; parts pydantic inserts (union members, validators) are left out.
    ``field_last``: the last part is a field name as written, even where it looks like a model name
    (an unknown field ``Rules``)."""
    out = ""
    for n, part in enumerate(loc):
        if field_last and n == len(loc) - 1 and isinstance(part, str):
            out += ("." if out else "") + part if _PLAIN_PART.fullmatch(part) else f"[{json.dumps(part)}]"
            continue
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        part = str(part)
        if part in _MODEL_NAMES or TYPE_TAG.match(part) or part == "[key]":
            continue
        if not _PLAIN_PART.fullmatch(part):  # a map key such as "example.com/team", "bad key" or ""
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
        else:
            out += ("." if out else "") + part
    return out


def format_error(err: Any) -> str:
    kind = err.get("type")
    msg = str(err.get("msg", ""))
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error":
        expected = (err.get("ctx") or {}).get("expected", "")
        return f"must be one of {expected} (got {err.get('input')!r})"
    if msg.startswith("Value error, "):
        return msg[len("Value error, "):]
    if msg.startswith("Assertion failed, "):
        return msg[len("Assertion failed, "):]
    return msg[:1].lower() + msg[1:]


def error_lines(exc: ValidationError, where: str) -> list[str]:
    """One ``where: field.path: message`` line per error of ``exc``, in order, duplicates dropped.

    ``where`` names the file and document (``policies/x.yaml: document 1``); policy files and
    PolicyTest suites (webhook.policy.suite) report their schema errors through it alike.
    """
    lines = []
    for err in exc.errors():
        loc = format_loc(err.get("loc", ()), field_last=err.get("type") == "extra_forbidden")
        lines.append(f"{where}: {loc + ': ' if loc else ''}{format_error(err)}{unknown_field_hint(exc.title, err)}")
    return list(dict.fromkeys(lines))


def validate_document(doc: SourceDoc) -> tuple[schema.PolicyDoc | None, list[str]]:
    where = doc.where
    raw = doc.raw
    if not isinstance(raw, dict):
        return None, [f"{where}: expected a mapping (a policy document), got {type(raw).__name__}"]
    kind = raw.get("kind")
    model = schema.POLICY_KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        return None, [f"{where}: kind: must be ClusterPolicy or TenantPolicy (got {kind!r})"]
    if raw.get("apiVersion") != schema.API_VERSION:
        return None, [f"{where}: apiVersion: must be {schema.API_VERSION} (got {raw.get('apiVersion')!r})"]
    try:
        return model.model_validate(raw), []
    except ValidationError as exc:
        return None, error_lines(exc, where)


def _clashes(pa: str, pb: str) -> bool:
    if is_glob(pa) and is_glob(pb):
        return globs_overlap(pa, pb)
    if is_glob(pa):
        return glob_match(pa, pb)
    if is_glob(pb):
        return glob_match(pb, pa)
    return pa == pb


def _namespace_conflicts(tenants: list[tuple[schema.TenantPolicyDoc, SourceDoc]]) -> list[str]:
    """Namespaces claimed by two tenants, literal or glob. Patterns are indexed by their literal start, so
    only patterns that could match a common name are compared: linear in the tenants for the usual
    shapes (``team-x``, ``team-x-*``), not quadratic."""
    by_start: dict[str, list[tuple[int, int, str]]] = {}  # literal start -> (tenant, position, pattern)
    for i, (doc, _) in enumerate(tenants):
        for k, pattern in enumerate(doc.spec.namespaces):
            by_start.setdefault(glob_start(pattern), []).append((i, k, pattern))
    starts = sorted(by_start)
    found: set[tuple[int, int, int, int]] = set()  # (earlier tenant, its position, later tenant, its position)
    for start in starts:
        # candidates: patterns whose start is a prefix of this one (shorter or equal) or extends it
        candidates = [by_start[start[:n]] for n in range(len(start) + 1) if start[:n] in by_start]
        lo = bisect.bisect_right(starts, start)
        while lo < len(starts) and starts[lo].startswith(start):
            candidates.append(by_start[starts[lo]])
            lo += 1
        for i, k, pa in by_start[start]:
            for group in candidates:
                for j, m, pb in group:
                    if i < j and _clashes(pa, pb):
                        found.add((i, k, j, m))
    errors: list[str] = []
    for i, k, j, m in sorted(found, key=lambda f: (f[0], f[2], f[1], f[3])):
        (a, a_src), (b, b_src) = tenants[i], tenants[j]
        pa, pb = a.spec.namespaces[k], b.spec.namespaces[m]
        shown = pb if pa == pb else f"{pb!r} overlaps {pa!r}"
        errors.append(
            f"{b_src.where}: spec.namespaces: {shown}: namespace already "
            f"claimed by TenantPolicy {a.metadata.name} ({a_src.where}); "
            "a namespace belongs to one tenant"
        )
    return errors


def build_policy_set(docs: Sequence[SourceDoc]) -> PolicySet:
    """Validate, cross-check and compile documents; raise PolicyError with every problem found."""
    errors: list[str] = []
    valid: list[tuple[schema.PolicyDoc, SourceDoc]] = []
    for doc in docs:
        parsed, errs = validate_document(doc)
        errors.extend(errs)
        if parsed is not None:
            valid.append((parsed, doc))
    # one name, one policy: findings, metrics, reports and status counts name a policy by its name alone
    seen: dict[str, tuple[str, SourceDoc]] = {}
    for parsed, doc in valid:
        name = parsed.metadata.name
        if name in seen:
            kind, first = seen[name]
            if kind == parsed.kind:
                errors.append(f"{doc.where}: metadata.name: {parsed.kind} {name} is already defined in {first.where}")
            else:
                errors.append(f"{doc.where}: metadata.name: {name} is already the name of {kind} {name} "
                              f"({first.where}); a TenantPolicy and a ClusterPolicy cannot share a name "
                              "(findings and reports name a policy by its name)")
        else:
            seen[name] = (parsed.kind, doc)
    tenants = [(p, d) for p, d in valid if isinstance(p, schema.TenantPolicyDoc)]
    errors.extend(_namespace_conflicts(tenants))
    if errors:
        raise PolicyError(errors)
    compiled: list[CompiledPolicy] = []
    for parsed, doc in valid:
        try:
            compiled.append(compile_policy(parsed, doc.source))
        except PolicyCompileError as exc:  # e.g. a CEL expression: each problem names its field
            errors.extend(f"{doc.where}: {field}: {message}" for field, message in exc.problems)
        except Exception as exc:  # noqa: BLE001 - a document the schema let through: still name its file
            errors.append(f"{doc.where}: cannot be compiled: {exc}")
    if errors:
        raise PolicyError(errors)
    digest = hashlib.sha256()
    for parsed, _ in valid:
        digest.update(json.dumps(parsed.model_dump(mode="json"), sort_keys=True).encode())
    return PolicySet(
        cluster=tuple(c for c in compiled if not c.is_tenant),
        tenants=tuple(c for c in compiled if c.is_tenant),
        generation=digest.hexdigest()[:16],
    )


def load_policies(paths: Iterable[str | Path]) -> PolicySet:
    """Load every policy under ``paths``; raise PolicyError listing every problem (file, document, field)."""
    paths = list(paths)
    docs, errors = read_documents(paths)
    if errors:
        # report reading errors together with validation errors of the readable files
        try:
            build_policy_set(docs)
        except PolicyError as exc:
            errors.extend(exc.errors)
        raise PolicyError(errors)
    if not docs:
        raise PolicyError([f"{', '.join(str(p) for p in paths)}: no policy documents found"])
    return build_policy_set(docs)
