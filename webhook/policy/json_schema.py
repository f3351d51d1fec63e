"""The JSON Schema (draft 2020-12) of policy files and PolicyTest suites, from the pydantic models.

An editor with a YAML language server completes fields, shows what each means and marks a
typo as the author types, with this schema as its ``$schema``::

    # yaml-language-server: $schema=tenantguard-policy.schema.json

The schema is generated from the same models the loader validates with (``schema``,
``suite``), so a field added there is in it. Where a field accepts more than its annotation
says (a before-validator reads the input first: ``podSecurity: restricted``,
``securityContext: restricted``, ``networkIsolation: true``, quantities written as numbers,
label values YAML reads as numbers or booleans, inline policies in a suite), the schema
describes what a file may hold, not what the model keeps. The loader stays the authority:
the schema checks shapes, names and spellings; values it cannot express (label key rules,
namespace claims, cross-document checks) are left to ``tenantguard lint``.

The API (stable; ``tenantguard schema`` and other generators, such as a CRD's
``openAPIV3Schema``, build on it):

- :func:`policy_schema` ``(kinds=("TenantPolicy", "ClusterPolicy")) -> dict``: the root schema of
  one policy document of the given kinds (``oneOf`` when several), ``$defs`` holding every model;
- :func:`suite_schema` ``() -> dict``: the root schema of a PolicyTest suite;
- :data:`FIELD_DOCS` (and :func:`field_docs`): ``"Model.field" -> description`` for every described
  field (the descriptions are the models' field docstrings), and :func:`documented_fields` over its keys;
- :data:`QUANTITY_PATTERN`, :data:`POD_SECURITY_PATTERN`, :data:`DRAFT_2020_12`.

Both functions return a fresh dict on every call (callers may change it) and the same content
for the same models (stable bytes once dumped with sorted or insertion order).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

from webhook.policy import schema, suite
from webhook.policy.schema import POD_SECURITY_PATTERN, QUANTITY_PATTERN

__all__ = ["DRAFT_2020_12", "FIELD_DOCS", "POD_SECURITY_PATTERN", "QUANTITY_PATTERN", "documented_fields",
           "field_docs", "policy_schema", "suite_schema"]

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


def _any_of(*options: JsonSchemaValue) -> JsonSchemaValue:
    flat: list[JsonSchemaValue] = []
    for option in options:
        flat.extend(option["anyOf"] if set(option) == {"anyOf"} else [option])
    return {"anyOf": flat}


def _policy_refs(gen: GenerateJsonSchema) -> list[JsonSchemaValue]:
    return [gen.generate_inner(m.__pydantic_core_schema__) for m in (schema.TenantPolicyDoc, schema.ClusterPolicyDoc)]


Shape = Callable[[GenerateJsonSchema, JsonSchemaValue], JsonSchemaValue]

# before-validators -> what the field accepts in a file (the model's own schema is `inner`). The policy models
# declare theirs (BeforeValidator(json_schema_input_type=...), which pydantic's generator reads); these are the
# suite's.
INPUT_SHAPES: dict[Callable[..., Any], Shape] = {
    suite._to_text: lambda gen, inner: {"type": ["string", "number"]},
    suite._null_as_empty: lambda gen, inner: _any_of(inner, {"type": "null"}),
    suite._path_or_policy: lambda gen, inner: _any_of(
        {"type": "string", "description": "A policy file or directory, relative to the suite file."},
        *_policy_refs(gen)),
}


class _Generator(GenerateJsonSchema):
    """pydantic's generator, with what before-validators accept instead of what the model keeps."""

    def function_before_schema(self, schema: core_schema.BeforeValidatorFunctionSchema) -> JsonSchemaValue:
        inner = super().function_before_schema(schema)
        function = schema.get("function", {}).get("function")
        shape = INPUT_SHAPES.get(function) if function is not None else None
        return shape(self, inner) if shape is not None else inner


def _one_line(node: Any) -> None:
    """Descriptions (the models' docstrings) as running text: the line breaks of the source are not the reader's."""
    if isinstance(node, dict):
        if isinstance(node.get("description"), str):
            node["description"] = " ".join(node["description"].split())
        for value in node.values():
            _one_line(value)
    elif isinstance(node, list):
        for value in node:
            _one_line(value)


def _tidy(defs: dict[str, JsonSchemaValue]) -> None:
    """No titles repeating field names; no defaults that spell out a whole nested model; descriptions on one
    line. (Field descriptions are the models' field docstrings.)"""
    for definition in defs.values():
        for prop in (definition.get("properties") or {}).values():
            prop.pop("title", None)
            if isinstance(prop.get("default"), dict) and prop["default"]:
                del prop["default"]
    _one_line(defs)


def _generate(models: tuple[type[BaseModel], ...]) -> tuple[list[JsonSchemaValue], dict[str, JsonSchemaValue]]:
    refs, top = models_json_schema([(m, "validation") for m in models], schema_generator=_Generator)
    defs: dict[str, JsonSchemaValue] = top.get("$defs", {})
    _tidy(defs)
    return [refs[(m, "validation")] for m in models], defs


def policy_schema(kinds: tuple[str, ...] = ("TenantPolicy", "ClusterPolicy")) -> dict[str, Any]:
    """The schema of one policy document: one of the ``kinds`` (TenantPolicy, ClusterPolicy)."""
    refs, defs = _generate(tuple(schema.POLICY_KINDS[k] for k in kinds))
    root: dict[str, Any] = {
        "$schema": DRAFT_2020_12,
        "title": f"tenantguard {' or '.join(kinds)}",
        "description": "A tenantguard policy document (apiVersion tenantguard.io/v1alpha1). Generated by "
                       "`tenantguard schema`.",
    }
    root.update({"oneOf": refs} if len(refs) > 1 else refs[0])
    root["$defs"] = defs
    return root


def suite_schema() -> dict[str, Any]:
    """The schema of a PolicyTest suite document (inline policies included)."""
    refs, defs = _generate((suite.PolicyTestDoc,))
    return {
        "$schema": DRAFT_2020_12,
        "title": "tenantguard PolicyTest",
        "description": "A tenantguard policy test suite (kind PolicyTest). Generated by `tenantguard schema "
                       "--kind PolicyTest`.",
        **refs[0],
        "$defs": defs,
    }


def field_docs() -> dict[str, str]:
    """The description of every field of the policy schema that has one, by "Model.field"."""
    return {f"{model}.{name}": prop["description"]
            for model, definition in policy_schema()["$defs"].items()
            for name, prop in (definition.get("properties") or {}).items() if "description" in prop}


def documented_fields() -> Iterator[tuple[str, str]]:
    """The (model, field) pairs the policy schema describes."""
    for key in field_docs():
        model, _, name = key.partition(".")
        yield model, name


class _FieldDocs(Mapping[str, str]):
    """:func:`field_docs`, generated when first read (it needs the whole schema; the CLI starts without it)."""

    @functools.cached_property
    def _docs(self) -> dict[str, str]:
        return field_docs()

    def __getitem__(self, key: str) -> str:
        return self._docs[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._docs)

    def __len__(self) -> int:
        return len(self._docs)


FIELD_DOCS: Mapping[str, str] = _FieldDocs()
