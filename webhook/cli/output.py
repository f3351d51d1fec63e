"""Printing dry-run results: table (default), json (contract), yaml, diff, patch, manifests, policyreport.

The json output is ``json.dumps(document, indent=2, default=str)`` and a newline, byte
for byte: :func:`json_text` writes it with orjson, which is many times faster, where orjson
writes the same bytes, and with ``json.dumps`` where it would not (see there).
"""

from __future__ import annotations

import datetime
import difflib
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any, TextIO

import orjson

from webhook.actions.dry_run import AUDIT, ENFORCE, ENFORCEMENTS, WARN, Result
from webhook.core.policy_report import Judged, build_reports
from webhook.inputs.yamlio import dump

FORMATS = ("table", "json", "yaml", "diff", "patch", "manifests", "policyreport")

# orjson writes dates its own way (2027-06-30T00:00:00): hand them to default=str, as json.dumps does
_ORJSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_APPEND_NEWLINE
# values both write alike: the JSON scalars, and what both hand to default=str
_SCALARS = frozenset({str, int, bool, type(None), Decimal, datetime.date, datetime.datetime})
# json.dumps escapes everything outside printable ASCII (ensure_ascii); orjson writes it as UTF-8
_NOT_ASCII = re.compile("[\x7f-\U0010ffff]")
# json.dumps(value, separators=(",", ":")) without making an encoder for each value
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def _same_in_both(value: Any) -> bool:
    """Whether orjson writes ``value`` as json.dumps(default=str) does, as far as its types tell.

    Not: floats json.dumps writes in exponent form below 1e-4 (``1e-05``; orjson ``0.00001``,
    ``1.5e-7``), NaN and infinities (orjson ``null``), enums (orjson their value, json.dumps
    their str()), dict/list/tuple subclasses (namedtuples), anything else. What orjson
    refuses outright (keys that are not strings, ints beyond 64 bits, lone surrogates,
    nesting deeper than 254) raises in :func:`json_text`.
    """
    kind = type(value)
    if kind is dict:  # orjson refuses keys that are not strings
        for member in value.values():
            if type(member) not in _SCALARS and not _same_in_both(member):
                return False
        return True
    if kind is list or kind is tuple:
        for member in value:
            if type(member) not in _SCALARS and not _same_in_both(member):
                return False
        return True
    if kind is float:
        return value == 0.0 or (abs(value) >= 1e-4 and math.isfinite(value))
    return kind in _SCALARS


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}"


def orjson_text(value: Any) -> str | None:
    """``json.dumps(value, indent=2, default=str) + "\\n"`` written by orjson; None where orjson would not
    write the same bytes.

    orjson writes the same structure, indentation, separators, key order, integers, escapes
    below 0x7f and floats from 1e-4 up; its UTF-8 is then escaped as json.dumps escapes it
    (``\\u00e9``, a surrogate pair above U+FFFF, DEL as ``\\u007f``).
    """
    try:
        same = _same_in_both(value)
    except RecursionError:  # nested too deep for us, or a structure inside itself: json.dumps says which
        return None
    if not same:
        return None
    try:
        data = orjson.dumps(value, default=str, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return None
    text = data.decode()
    if not data.isascii() or "\x7f" in text:
        text = _NOT_ASCII.sub(_escape, text)
    return text


def json_text(value: Any) -> str:
    """``json.dumps(value, indent=2, default=str) + "\\n"``, byte for byte: orjson's where it writes the same
    (nearly always), json.dumps' own otherwise."""
    text = orjson_text(value)
    return text if text is not None else json.dumps(value, indent=2, default=str) + "\n"


def summary(results: list[Result]) -> dict[str, Any]:
    """``allowed`` + ``denied`` is every object (a skipped object is allowed); ``skipped`` counts those no rule
    judged; ``findings`` the findings of each enforcement."""
    denied = sum(1 for r in results if not r.decision.allowed)
    return {"allowed": len(results) - denied, "denied": denied,
            "skipped": sum(1 for r in results if r.decision.skipped),
            "findings": {mode: sum(r.count(mode) for r in results) for mode in ENFORCEMENTS}}


def document(results: list[Result]) -> dict[str, Any]:
    return {"results": [r.as_json() for r in results], "summary": summary(results)}


def use_colour(stream: TextIO, choice: str = "auto") -> bool:
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return hasattr(stream, "isatty") and stream.isatty()


class Paint:
    """``paint(text, code)``: ``text`` in an ANSI SGR ``code`` when colour is on."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __call__(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled else text


def _label(r: Result) -> str:
    ns = f"{r.request.namespace}/" if r.request.namespace else ""
    return f"{r.obj.get('kind', '')} {ns}{r.name or '<unnamed>'}"


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def write_table(results: list[Result], out: TextIO, colour: bool, pipeline: str | None = None) -> None:
    paint = Paint(colour)
    for r in results:
        d = r.decision
        audited = f" ({plural(len(d.audit), 'audit finding')})" if d.audit else ""
        if not d.allowed:
            status = paint("DENIED" + (audited or " "), "1;31")
        elif d.skipped:
            status = paint("SKIPPED", "2")
        else:
            status = paint("ALLOWED" + audited, "1;35" if audited else "1;32")
        tenant = f"  tenant={d.tenant}" if d.tenant else ""
        changes = f"  {plural(len(d.patch), 'patch op')}" if d.patch else ""
        out.write(f"{status}  {_label(r)}{tenant}{changes}\n")
        if d.skipped:
            out.write(f"    {paint('skipped: ' + d.skipped, '2')}\n")
        for v in d.violations:
            where = f" ({v.field})" if v.field else ""
            out.write(f"    {paint('x', '31')} {v.summary()}{where}\n")
        for v in d.audit:  # as visible as a denial: Audit is how a policy is tried before it is enforced
            where = f" ({v.field})" if v.field else ""
            out.write(f"    {paint('AUDIT', '1;35')} {v.summary()}{where}\n")
        out.writelines(f"    {paint('!', '33')} {w}\n" for w in d.warnings)
        for op in d.patch:
            value = _COMPACT.encode(op.value) if op.op != "remove" else ""
            if len(value) > 100:
                value = value[:97] + "..."
            out.write(f"    {paint('+', '36')} {op.op} {op.path} {value}  {paint(f'({op.policy}/{op.rule})', '2')}\n")
    s = summary(results)
    skipped = f" ({s['skipped']} skipped)" if s["skipped"] else ""
    line = f"{plural(len(results), 'object')}: {s['allowed']} allowed{skipped}, {s['denied']} denied"
    findings = s["findings"]
    if any(findings.values()):
        line += f"; findings: {findings[ENFORCE]} Enforce, {findings[WARN]} Warn, {findings[AUDIT]} Audit"
    out.write(("\n" if results else "") + paint(line, "1") + "\n")
    if pipeline:
        out.write(paint(f"each object: {pipeline}", "2") + "\n")


def write_diff(results: list[Result], out: TextIO, colour: bool) -> None:
    paint = Paint(colour)
    for r in results:
        label = _label(r).replace(" ", "/")
        out.writelines(paint(f"# DENIED {_label(r)}: {v.summary()}", "31") + "\n"
                       for v in r.decision.violations)
        before = dump(r.original).splitlines(keepends=True)
        after = dump(r.obj).splitlines(keepends=True)
        for line in difflib.unified_diff(before, after, fromfile=f"a/{label}", tofile=f"b/{label}"):
            if not line.endswith("\n"):
                line += "\n"
            code = "1" if line.startswith(("---", "+++")) else "32" if line.startswith("+") else \
                "31" if line.startswith("-") else "36" if line.startswith("@@") else ""
            out.write(paint(line.rstrip("\n"), code) + "\n" if code else line)


def _comment(text: str) -> str:
    return "".join(f"# {line}\n" for line in text.splitlines() or [""])


def _denials(r: Result) -> str:
    return "".join(_comment(f"DENIED: {v.summary()}" + (f" ({v.field})" if v.field else ""))
                   for v in r.decision.violations)


def _documents(results: list[Result]) -> Iterator[tuple[str, Any]]:
    """(comment lines, document) per output document: an object, or a ``kind: List`` of the objects that were
    its items in the input (consecutive results read from the same list document)."""
    index = 0
    while index < len(results):
        r = results[index]
        within = r.item.within if r.item is not None else None
        if within is None:
            index += 1
            if r.request.obj is not None:
                yield _denials(r), r.obj
            continue
        group = [r]
        while index + len(group) < len(results):
            nxt = results[index + len(group)].item
            if nxt is None or nxt.within is not within:
                break
            group.append(results[index + len(group)])
        index += len(group)
        listing = {key: value for key, value in within.items() if key != "items"}
        listing["items"] = [g.obj for g in group if g.request.obj is not None]
        yield "".join(_denials(g) for g in group), listing


def write_manifests(results: list[Result], out: TextIO) -> None:
    """The objects as the API server would store them (mutated), in input order and layout (one YAML
    document each, a ``kind: List`` as a list of its items): ready for ``kubectl apply --dry-run=server -f -``
    or to commit. A skipped object is passed through as written; a denied one is printed too, its document
    after ``# DENIED: ...`` comment lines naming each Enforce finding (YAML ignores them). A review without
    an object (DELETE) has nothing to print."""
    for number, (comments, doc) in enumerate(_documents(results)):
        if number:
            out.write("---\n")
        out.write(comments)
        out.write(dump(doc))


def write_policy_reports(judged: list[Judged], out: TextIO) -> None:
    """One ``wgpolicyk8s.io/v1alpha2`` PolicyReport per namespace (every result kept, clean namespaces
    too), as a YAML stream: what ``kubectl apply`` takes, or what Policy Reporter reads."""
    now = int(datetime.datetime.now(datetime.UTC).timestamp())
    reports = build_reports(judged, seconds=now)
    out.write("".join(f"---\n{dump(r)}" for r in reports))


def judged_of(results: Sequence[Result]) -> list[Judged]:
    """The dry-run's results as the report builder takes them: each object as written, in its namespace."""
    return [Judged(r.original, r.request.namespace, r.decision) for r in results]


def write(results: list[Result], fmt: str, out: TextIO | None = None, colour: str = "auto",
          pipeline: str | None = None) -> None:
    stream = out or sys.stdout
    writers: dict[str, Callable[[], object]] = {
        "json": lambda: stream.write(json_text(document(results))),
        "yaml": lambda: stream.write(dump(json.loads(json.dumps(document(results), default=str)))),
        "table": lambda: write_table(results, stream, use_colour(stream, colour), pipeline),
        "diff": lambda: write_diff(results, stream, use_colour(stream, colour)),
        "patch": lambda: stream.write("".join(json.dumps(r.decision.patch_json(), default=str) + "\n"
                                              for r in results)),
        "manifests": lambda: write_manifests(results, stream),
        "policyreport": lambda: write_policy_reports(judged_of(results), stream),
    }
    writers[fmt]()
