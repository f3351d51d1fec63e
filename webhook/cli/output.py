"""Printing dry-run results: table (default), json (contract), yaml, diff, patch."""

from __future__ import annotations

import difflib
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

from webhook.actions.dry_run import Result
from webhook.inputs.yamlio import dump

FORMATS = ("table", "json", "yaml", "diff", "patch")


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
            value = json.dumps(op.value, separators=(",", ":")) if op.op != "remove" else ""
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
        "json": lambda: stream.write(json.dumps(document(results), indent=2, default=str) + "\n"),
        "yaml": lambda: stream.write(dump(json.loads(json.dumps(document(results), default=str)))),
        "table": lambda: write_table(results, stream, use_colour(stream, colour), pipeline),
        "diff": lambda: write_diff(results, stream, use_colour(stream, colour)),
        "patch": lambda: stream.write("".join(json.dumps(r.decision.patch_json(), default=str) + "\n"
                                              for r in results)),
    }
    writers[fmt]()
