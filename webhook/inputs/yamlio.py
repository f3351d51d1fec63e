"""Reading YAML and JSON documents, with errors that name the file, line and column.

Everything goes through libyaml's C parser (``yaml.CSafeLoader``). Manifests use a subclass
of it that builds the same documents faster: a plain scalar's tag is resolved once per
distinct text, and each document is built in one recursive pass over its nodes instead of
PyYAML's generic per-node machinery (an alias is one object in every place it appears, as
PyYAML makes it). A document that pass does not handle (merge keys ``<<``, ``!!set``,
``!!omap``, ``!!pairs``, unknown tags, a collection inside itself, any error) is built by
PyYAML's own constructor, so it loads, or fails, exactly as it did.
Policy files additionally refuse duplicate mapping keys, which YAML itself would silently
resolve to the last one, hiding a half-edited policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

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


_STR = "tag:yaml.org,2002:str"
_MAP = yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG
_SEQ = yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG
_NULL = "tag:yaml.org,2002:null"
_TRIVIAL = frozenset({_NULL, "tag:yaml.org,2002:bool"})
_SCALAR_TAGS = frozenset({  # the scalar tags the safe constructor builds from the scalar alone
    "tag:yaml.org,2002:null", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:binary", "tag:yaml.org,2002:timestamp",
})
_PLAIN_TAGS_MAX = 16384
_ABSENT, _BUILDING = object(), object()


class _Generic(Exception):
    """A document the fast pass leaves to PyYAML's own constructor."""


class _ManifestLoader(_Loader):
    """The C loader, building each document in one pass over its nodes (see the module docstring)."""

    # plain scalar -> its resolved tag. The safe resolver has no path resolvers, so a plain
    # scalar's tag depends on its text alone; shared, bounded.
    _plain_tags: ClassVar[dict[str, str]] = {}

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode and implicit[0]:
            tag = self._plain_tags.get(value)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(self._plain_tags) < _PLAIN_TAGS_MAX:
                    self._plain_tags[value] = tag
            return tag
        return super().resolve(kind, value, implicit)

    def construct_document(self, node: yaml.Node) -> Any:
        try:
            return self._build(node, {})
        except Exception:  # noqa: BLE001 - the generic constructor builds it, or raises its own error
            return super().construct_document(node)

    def _build(self, node: yaml.Node, collections: dict[int, Any]) -> Any:
        kind = type(node)
        tag = node.tag
        if kind is yaml.ScalarNode:
            if tag == _STR:
                return node.value
            if tag not in _SCALAR_TAGS:
                raise _Generic
            if tag in _TRIVIAL:  # null, bool: a look-up
                return None if tag == _NULL else self.bool_values[node.value.lower()]
            return self.yaml_constructors[tag](self, node)
        # an alias of a collection is the same object in every place, as PyYAML builds it; one inside itself
        # (a recursive structure) is left to the generic constructor
        built = collections.get(id(node), _ABSENT)
        if built is not _ABSENT:
            if built is _BUILDING:
                raise _Generic
            return built
        collections[id(node)] = _BUILDING
        result: dict[Any, Any] | list[Any]
        build, scalar = self._build, yaml.ScalarNode
        if kind is yaml.MappingNode and tag == _MAP:
            result = {}
            for key_node, value_node in node.value:
                # scalar keys only (a merge key `<<` has a tag of its own: generic); all of them hashable
                if type(key_node) is not scalar:
                    raise _Generic
                key = key_node.value if key_node.tag == _STR else build(key_node, collections)
                if type(value_node) is scalar and value_node.tag == _STR:  # most values: no call
                    result[key] = value_node.value
                else:
                    result[key] = build(value_node, collections)
        elif kind is yaml.SequenceNode and tag == _SEQ:
            result = [
                child.value if type(child) is scalar and child.tag == _STR else build(child, collections)
                for child in node.value
            ]
        else:
            raise _Generic
        collections[id(node)] = result
        return result


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
        docs = list(yaml.load_all(text, Loader=_StrictLoader if strict else _ManifestLoader))
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: {_describe(exc)}") from None
    except (ValueError, KeyError, AttributeError, TypeError) as exc:  # an explicit tag on a value it cannot be
        raise InputError(f"{source}: a value cannot be read as its explicit tag says "
                         f"({type(exc).__name__}: {str(exc)[:100]})") from None
    return [d for d in docs if d is not None]


def dump(value: Any) -> str:
    return yaml.dump(value, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)


def dump_all(values: list[Any]) -> str:
    return yaml.dump_all(values, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)
