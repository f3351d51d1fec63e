"""Reading the objects a dry-run judges: files, directories, ``-`` (stdin).

Each document may be a bare object, a ``kind: List`` (or ``*List``) whose
items are expanded, or an AdmissionReview. JSON files are read as JSON (YAML
would choke on tab indentation). Errors name the file and document.

A repository holds more than Kubernetes objects. Given a ``notes`` list,
:func:`read_objects` skips, with a note there, what is not an object to judge:
kustomizations (``kustomization.yaml``/``.yml``/``Kustomization``, or
``kustomize.config.k8s.io`` documents), tenantguard's own documents (policies,
PolicyTest suites), Helm ``Chart.yaml``, values files and chart templates (the
files under a chart's ``templates/``, which are Go templates, not YAML), and any
other YAML with neither ``apiVersion`` nor ``kind`` (CI workflows, compose files,
lists of settings). What stays an error: a document that is not valid YAML, and one
that looks like a broken object (``kind`` without ``apiVersion`` or the reverse, a
YAML list of objects). Without ``notes`` every document must be an object
(``--cluster-state``, PolicyTest ``state``).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from webhook.inputs.yamlio import InputError, document_files, load_documents

STDIN = "<stdin>"  # the source name of what ``-`` reads


@dataclass(frozen=True, slots=True)
class InputObject:
    obj: dict[str, Any]
    source: str
    document: int  # 1-based document number in its source
    # the ``kind: List`` document the object is an item of (the outermost one), None for a document of its own:
    # what lets ``dry-run -o manifests`` print the list again as the input had it
    within: dict[str, Any] | None = field(default=None, compare=False)


def _files(arg: str) -> list[Path]:
    path = Path(arg)
    if path.is_dir():
        return document_files(path)
    if path.is_file():
        return [path]
    if path.exists():  # a pipe, /dev/stdin, a process substitution <(...): read once, as given
        return [path]
    raise InputError(f"{arg}: no such file or directory")


KUSTOMIZATION_FILES = frozenset({"kustomization.yaml", "kustomization.yml", "Kustomization"})
HELM_CHART_FILES = frozenset({"Chart.yaml", "Chart.yml"})


def _chart_templates(files: list[Path]) -> set[Path]:
    """The files under the ``templates/`` directory of a Helm chart (a directory holding Chart.yaml)."""
    templates = {f.parent / "templates" for f in files if f.name in HELM_CHART_FILES}
    if not templates:
        return set()
    return {f for f in files if not templates.isdisjoint(f.parents)}


def _not_an_object(doc: Any, filename: str) -> str | None:
    """What ``doc`` is when it is no object to judge (skipped with a note), or None (an object, or an error)."""
    if filename in KUSTOMIZATION_FILES:
        return "kustomization"
    if isinstance(doc, list):
        if any(isinstance(item, dict) and "kind" in item for item in doc):
            return None  # objects written as a YAML list: an error, as kubectl makes it
        return "a YAML list"
    if not isinstance(doc, dict):
        return None
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if isinstance(api_version, str) and api_version.startswith("kustomize.config.k8s.io/"):
        return "kustomization"
    if isinstance(api_version, str) and api_version.startswith("tenantguard.io/"):
        if kind == "PolicyTest":
            return "tenantguard PolicyTest; run it with tenantguard test"
        if kind in ("ClusterPolicy", "TenantPolicy"):
            return f"tenantguard {kind}; policies are read with --policies"
        return f"tenantguard {kind}"
    if filename in HELM_CHART_FILES:
        return "Helm chart metadata"
    if "apiVersion" not in doc and "kind" not in doc:
        return "Helm values" if filename.startswith("values") else "no apiVersion or kind"
    return None


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


def _expand(doc: Any, source: str, number: int, within: dict[str, Any] | None = None) -> list[InputObject]:
    if isinstance(doc, list):
        raise InputError(f"{source}: document {number}: expected a Kubernetes object, got a YAML list (write "
                         "objects as documents separated by ---, or as a kind: List)")
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
            out.extend(_expand(item, source, number, within if within is not None else doc))
        return out
    if kind != "AdmissionReview" and not isinstance(doc.get("apiVersion"), str):
        raise InputError(f"{source}: document {number}: apiVersion: required field is missing")
    return [InputObject(doc, source, number, within)]


def read_objects(args: Iterable[str], stdin: TextIO | None = None, *,
                 notes: list[str] | None = None) -> list[InputObject]:
    """Every object named by ``args``, in order; raise InputError on the first unreadable input.

    With ``notes``, documents that are no Kubernetes object (see the module docstring) are skipped and
    each is described there, one line per document (per file for a chart template)."""
    out: list[InputObject] = []
    for arg in args:
        if arg == "-":
            _read_text(STDIN, (stdin or sys.stdin).read(), out, notes)
            continue
        files = _files(arg)
        templates = _chart_templates(files) if notes is not None else set()
        for path in files:
            if notes is not None and path in templates:
                notes.append(f"{path}: a Helm chart template, not YAML until rendered (helm template ... | "
                             "tenantguard dry-run -); skipped")
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"{path}: cannot read: {exc}") from None
            _read_text(str(path), text, out, notes)
    return out



def _read_text(source: str, text: str, out: list[InputObject], notes: list[str] | None) -> None:
    filename = Path(source).name if source != STDIN else ""
    for number, doc in enumerate(parse_text(text, source), start=1):
        if notes is not None:
            what = _not_an_object(doc, filename)
            if what is not None:
                notes.append(f"{source}: document {number}: not a Kubernetes object ({what}); skipped")
                continue
        out.extend(_expand(doc, source, number))
