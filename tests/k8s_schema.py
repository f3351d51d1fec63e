"""Kubernetes 1.35 OpenAPI schema checks for what we emit, with ONE cached validator.

``kubernetes_validate.validate()`` re-reads the 1.5 MB definitions file on every
call; here the definitions are loaded once per process and a Draft 2020-12
validator is kept per (apiVersion, kind).
"""

from __future__ import annotations

import json
import re
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
from referencing import Registry, Resource

KUBERNETES_VERSION = "1.35.0"
SCHEMA_DIR = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{KUBERNETES_VERSION}-local-strict"


class SchemaError(AssertionError):
    pass


@lru_cache(maxsize=1)
def _registry() -> Registry:
    definitions = json.loads((SCHEMA_DIR / "_definitions.json").read_text())
    return Resource.from_contents(definitions) @ Registry()


@cache
def _validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = SCHEMA_DIR / f"{kind.lower()}-{group_version}.json"
    if not path.exists():
        raise SchemaError(f"no Kubernetes {KUBERNETES_VERSION} schema for {api_version} {kind}")
    schema = json.loads(path.read_text())
    registry = Resource.from_contents(schema) @ _registry()
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def errors(obj: dict[str, Any]) -> list[str]:
    """Every schema error of ``obj`` (empty when it is valid)."""
    validator = _validator(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    return [
        f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    ]


def assert_valid(obj: dict[str, Any]) -> None:
    found = errors(obj)
    if found:
        meta = obj.get("metadata") or {}
        raise SchemaError(f"{obj.get('kind')} {meta.get('name', '')} is not valid Kubernetes "
                          f"{KUBERNETES_VERSION}:\n  " + "\n  ".join(found))
