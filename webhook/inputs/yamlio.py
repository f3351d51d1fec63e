"""Reading YAML and JSON documents, with errors that name the file, line and column.

Manifests go through libyaml's C loader (fast); policy files additionally
refuse duplicate mapping keys, which YAML itself would silently resolve to the
last one, hiding a half-edited policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from webhook.core.errors import TenantguardError

try:
    _Loader: type = yaml.CSafeLoader
    _Dumper: type = yaml.CSafeDumper
except AttributeError:  # pragma: no cover - libyaml missing
    _Loader = yaml.SafeLoader
    _Dumper = yaml.SafeDumper


DOCUMENT_SUFFIXES = (".yaml", ".yml", ".json")


class InputError(TenantguardError):
    """A file or document that cannot be read (exit code 2)."""


def document_files(directory: Path, suffixes: tuple[str, ...] = DOCUMENT_SUFFIXES) -> list[Path]:
    """The files under ``directory`` (recursively, sorted) ending in one of ``suffixes``.

    Hidden entries are skipped, so a mounted ConfigMap's ``..data`` indirection is read once.
    """
    return [
        path for path in sorted(directory.rglob("*"))
        if path.suffix in suffixes and not any(part.startswith(".") for part in path.relative_to(directory).parts)
        and path.is_file()
    ]


class _StrictLoader(_Loader):
    pass


def _no_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", mark,
            )
        seen[key] = True
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)

# YAML 1.1 reads `2027-06-30` as a date; keep dates for policy fields that want them (exemption expiry).


def _describe(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return problem


def load_documents(text: str, source: str, *, strict: bool = False) -> list[Any]:
    """All documents of a YAML (or JSON) stream, empty documents dropped."""
    try:
        docs = list(yaml.load_all(text, Loader=_StrictLoader if strict else _Loader))
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: {_describe(exc)}") from None
    return [d for d in docs if d is not None]


def dump(value: Any) -> str:
    return yaml.dump(value, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)


def dump_all(values: list[Any]) -> str:
    return yaml.dump_all(values, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)
