"""Reading the objects a dry-run judges: files, directories, ``-`` (stdin).

Each document may be a bare object, a ``kind: List`` (or ``*List``) whose
items are expanded, or an AdmissionReview. JSON files are read as JSON (YAML
would choke on tab indentation). Errors name the file and document.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from webhook.inputs.yamlio import InputError, document_files, load_documents


@dataclass(frozen=True, slots=True)
class InputObject:
    obj: dict[str, Any]
    source: str
    document: int  # 1-based document number in its source


def _files(arg: str) -> list[Path]:
    path = Path(arg)
    if path.is_dir():
        return document_files(path)
    if path.is_file():
        return [path]
    raise InputError(f"{arg}: no such file or directory")


# what text.lstrip().startswith(("{", "[")) says, without copying the text
_JSON_START = re.compile(r"\s*[{\[]")


def parse_text(text: str, source: str) -> list[Any]:
    if source.endswith(".json") or _JSON_START.match(text):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            if source.endswith(".json"):
                raise InputError(f"{source}: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
        else:
            return value if isinstance(value, list) else [value]
    return load_documents(text, source)


def _expand(doc: Any, source: str, number: int) -> list[InputObject]:
    if not isinstance(doc, dict):
        raise InputError(f"{source}: document {number}: expected a Kubernetes object, got {type(doc).__name__}")
    kind = doc.get("kind")
    if not isinstance(kind, str) or not kind:
        raise InputError(f"{source}: document {number}: kind: required field is missing")
    if kind == "List" or (kind.endswith("List") and isinstance(doc.get("items"), list)):
        items = doc.get("items")
        if not isinstance(items, list):
            raise InputError(f"{source}: document {number}: items: must be a list")
        out: list[InputObject] = []
        for item in items:
            out.extend(_expand(item, source, number))
        return out
    if kind != "AdmissionReview" and not isinstance(doc.get("apiVersion"), str):
        raise InputError(f"{source}: document {number}: apiVersion: required field is missing")
    return [InputObject(doc, source, number)]


def read_objects(args: Iterable[str], stdin: TextIO | None = None) -> list[InputObject]:
    """Every object named by ``args``, in order; raise InputError on the first unreadable input."""
    out: list[InputObject] = []
    for arg in args:
        if arg == "-":
            sources: list[tuple[str, str]] = [("<stdin>", (stdin or sys.stdin).read())]
        else:
            sources = []
            for path in _files(arg):
                try:
                    sources.append((str(path), path.read_text(encoding="utf-8")))
                except (OSError, UnicodeDecodeError) as exc:
                    raise InputError(f"{path}: cannot read: {exc}") from None
        for source, text in sources:
            for number, doc in enumerate(parse_text(text, source), start=1):
                out.extend(_expand(doc, source, number))
    return out
