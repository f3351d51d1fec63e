"""Printing dry-run results: table (default), json (contract), yaml, diff, patch.

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
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TextIO

import orjson

from webhook.actions.dry_run import Result
from webhook.inputs.yamlio import dump

FORMATS = ("table", "json", "yaml", "diff", "patch")

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


def summary(results: list[Result]) -> dict[str, int]:
    denied = sum(1 for r in results if not r.decision.allowed)
    return {"allowed": len(results) - denied, "denied": denied}


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


def write_table(results: list[Result], out: TextIO, colour: bool, pipeline: str | None = None) -> None:
    paint = Paint(colour)
    for r in results:
        d = r.decision
        if not d.allowed:
            status = paint("DENIED ", "1;31")
        elif d.skipped:
            status = paint("SKIPPED", "2")
        else:
            status = paint("ALLOWED", "1;32")
        tenant = f"  tenant={d.tenant}" if d.tenant else ""
        changes = f"  {len(d.patch)} patch op{'s' if len(d.patch) != 1 else ''}" if d.patch else ""
        out.write(f"{status}  {_label(r)}{tenant}{changes}\n")
        if d.skipped:
            out.write(f"    {paint('skipped: ' + d.skipped, '2')}\n")
        for v in d.violations:
            where = f" ({v.field})" if v.field else ""
            out.write(f"    {paint('x', '31')} {v.summary()}{where}\n")
        out.writelines(f"    {paint('!', '33')} {w}\n" for w in d.warnings)
        for op in d.patch:
            value = _COMPACT.encode(op.value) if op.op != "remove" else ""
            if len(value) > 100:
                value = value[:97] + "..."
            out.write(f"    {paint('+', '36')} {op.op} {op.path} {value}  {paint(f'({op.policy}/{op.rule})', '2')}\n")
    s = summary(results)
    line = f"{len(results)} object{'s' if len(results) != 1 else ''}: {s['allowed']} allowed, {s['denied']} denied"
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
    }
    writers[fmt]()
