"""The CustomResourceDefinitions of TenantPolicy and ClusterPolicy, generated from the pydantic models.

One source of truth: each CRD's ``openAPIV3Schema`` is the editor schema of its kind
(webhook.policy.json_schema: what a policy file may hold, descriptions from the models'
field docstrings) made structural, plus the status the elected replica writes
(webhook.policy.status). A field added to a model is in the CRD at the next ``tenantguard
schema --crd``; the chart's ``crds/`` hold that output and a test fails when they differ.

Making the schema *structural*, as ``apiextensions.k8s.io/v1`` requires:

- every ``$ref`` is inlined; ``Optional[X]`` is X (an absent field, not ``null``);
- a value that may be a number or a string (a quantity: ``cpu: 2`` or ``cpu: 500m``) is
  ``x-kubernetes-int-or-string``, with the string's pattern;
- a map whose keys follow a pattern (``requests: {cpu: 1}``) is a map of its values: the
  key pattern is the loader's to check;
- a field that takes a shorthand of another type (``podSecurity: restricted`` or an object,
  ``networkIsolation: true`` or an object, ``securityContext: restricted`` or an object, a
  label value YAML reads as a number or a boolean) cannot be typed in a structural schema: it
  keeps ``x-kubernetes-preserve-unknown-fields`` and the loader checks it (the object's
  Ready condition names what is wrong);
- ``additionalProperties: false`` is not allowed next to ``properties``: unknown fields are
  pruned, and rejected outright under strict field validation, which ``kubectl apply`` and
  ``kubectl create`` ask for (``--validate=strict``, their default);
- defaults are left to the loader (the stored object stays as written), but for
  ``spec.enforcement`` (and a ClusterPolicy's empty ``spec``), which the printer columns show.

Descriptions are the models' docstrings: ``kubectl explain tenantpolicy.spec.rules`` prints them.
"""

from __future__ import annotations

import copy
from typing import Any

from webhook.policy.json_schema import policy_schema
from webhook.policy.resources import GROUP, PLURALS, SHORT_NAMES, VERSION
from webhook.policy.status import PolicyStatus

KINDS = ("ClusterPolicy", "TenantPolicy")  # the order `tenantguard schema --crd` prints them
# JSON Schema keywords an openAPIV3Schema node keeps as they are (value validations)
_VALUE_KEYS = ("minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems", "pattern", "enum",
               "format", "minProperties", "maxProperties")
_FORMATS = frozenset({"int32", "int64", "date-time", "date", "byte", "double", "float"})
_SCALARS = frozenset({"string", "integer", "number", "boolean"})
# the standard texts of every Kubernetes object's apiVersion and kind
API_VERSION_DOC = ("APIVersion defines the versioned schema of this representation of an object: "
                   "tenantguard.io/v1alpha1.")
KIND_DOC = "Kind is a string value representing the REST resource this object represents: {kind}."


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
        target.update({k: v for k, v in node.items() if k != "$ref"})  # a field's own description wins
        node = target
    return node


def _type_of(option: dict[str, Any]) -> set[str]:
    kind = option.get("type")
    if isinstance(kind, list):
        return set(kind)
    if kind is not None:
        return {kind}
    if "properties" in option or "additionalProperties" in option or "patternProperties" in option:
        return {"object"}
    if "const" in option or "enum" in option:
        values = [option["const"]] if "const" in option else option["enum"]
        return {{str: "string", bool: "boolean", int: "integer", float: "number"}.get(type(v), "any")
                for v in values}
    return {"any"}


def _describe(out: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``out`` with ``node``'s description first, on one line."""
    description = node.get("description")
    if not description:
        return out
    return {"description": " ".join(description.split()), **{k: v for k, v in out.items() if k != "description"}}


def _union(node: dict[str, Any], options: list[dict[str, Any]], defs: dict[str, Any]) -> dict[str, Any]:
    """A node that is one of several shapes: as structural as the shapes allow."""
    options = [_resolve(o, defs) for o in options]
    options = [o for o in options if _type_of(o) != {"null"}]
    rest = {k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}
    if len(options) == 1:
        return structural({**options[0], **rest}, defs)
    types = set().union(*(_type_of(o) for o in options))
    if types <= {"integer", "number", "string"} and "string" in types and len(types) > 1:
        out: dict[str, Any] = {"x-kubernetes-int-or-string": True}
        patterns = {o["pattern"] for o in options if "pattern" in o}
        if len(patterns) == 1:
            out["pattern"] = patterns.pop()
    elif len(types) == 1 and types <= _SCALARS:  # one type, several values or patterns
        merged = {**rest, "type": types.pop()}
        if all("const" in o or "enum" in o for o in options):
            merged["enum"] = [v for o in options for v in ([o["const"]] if "const" in o else o["enum"])]
        out = structural(merged, defs)
    else:  # a shorthand of another type: unchecked here, checked by the loader
        out = {"x-kubernetes-preserve-unknown-fields": True}
    return _describe(out, node)


def structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """One node of the JSON Schema (draft 2020-12, pydantic's) as a structural openAPIV3Schema node."""
    node = _resolve(node, defs)
    options = node.get("anyOf") or node.get("oneOf")
    if options is not None:
        return _union(node, options, defs)
    if isinstance(node.get("type"), list):
        return _union({k: v for k, v in node.items() if k != "type"}, [{"type": t} for t in node["type"]], defs)
    out = _describe({}, node)
    if "const" in node:
        node = {**node, "enum": [node["const"]]}
    types = _type_of(node)
    if len(types) != 1 or not types <= _SCALARS | {"object", "array"}:
        return {**out, "x-kubernetes-preserve-unknown-fields": True}
    kind = out["type"] = types.pop()
    out.update({key: node[key] for key in _VALUE_KEYS if key in node})
    if "exclusiveMinimum" in node:  # JSON Schema 2020-12 number -> OpenAPI 3.0 flag
        out["minimum"], out["exclusiveMinimum"] = node["exclusiveMinimum"], True
    if "exclusiveMaximum" in node:
        out["maximum"], out["exclusiveMaximum"] = node["exclusiveMaximum"], True
    if out.get("format") not in _FORMATS:
        out.pop("format", None)
    if kind == "array":
        items = out["items"] = structural(node.get("items") or {}, defs)
        if node.get("uniqueItems") and items.get("type") in _SCALARS:
            out["x-kubernetes-list-type"] = "set"
    elif kind == "object":
        _object(out, node, defs)
    return out


def _object(out: dict[str, Any], node: dict[str, Any], defs: dict[str, Any]) -> None:
    props = node.get("properties")
    extra = node.get("additionalProperties")
    by_pattern = list((node.get("patternProperties") or {}).values())
    if props:
        out["properties"] = {name: structural(prop, defs) for name, prop in props.items()}
        required = [r for r in node.get("required") or [] if r in props]
        if required:
            out["required"] = required
    elif isinstance(extra, dict):
        out["additionalProperties"] = structural(extra, defs)
    elif len(by_pattern) == 1 and extra in (None, False):  # the keys' pattern is the loader's to check
        out["additionalProperties"] = structural(by_pattern[0], defs)
    elif extra is not False:
        out["x-kubernetes-preserve-unknown-fields"] = True


def openapi_schema(kind: str) -> dict[str, Any]:
    """The structural openAPIV3Schema of ``kind`` (TenantPolicy or ClusterPolicy), with its status."""
    document = policy_schema((kind,))
    out = structural({"$ref": document["$ref"]}, document["$defs"])
    props = out["properties"]
    props["apiVersion"] = {"type": "string", "description": API_VERSION_DOC}
    props["kind"] = {"type": "string", "description": KIND_DOC.format(kind=kind)}
    props["metadata"] = {"type": "object"}  # ObjectMeta: the API server's own, and nothing else is allowed
    spec = props["spec"]
    spec["properties"]["enforcement"]["default"] = "Enforce"
    if "spec" not in out.get("required", ()):
        spec["default"] = {}  # so that the enforcement default (and its printer column) applies
    status = PolicyStatus.model_json_schema(mode="serialization")
    props["status"] = structural(status, status.get("$defs", {}))
    conditions = props["status"]["properties"]["conditions"]
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    out["required"] = [r for r in out.get("required", []) if r not in ("apiVersion", "kind", "metadata")]
    if not out["required"]:
        del out["required"]
    return out


def printer_columns(kind: str) -> list[dict[str, Any]]:
    """What ``kubectl get tp`` (``cp``) shows; priority 1 only with ``-o wide``."""
    ready = '.status.conditions[?(@.type=="Ready")]'
    columns: list[dict[str, Any]] = [
        {"name": "Enforcement", "type": "string", "jsonPath": ".spec.enforcement",
         "description": "Enforce denies, Warn warns, Audit only reports"},
    ]
    if kind == "TenantPolicy":
        columns.append({"name": "Namespaces", "type": "string", "jsonPath": ".spec.namespaces",
                        "description": "The namespaces (names or globs) the tenant claims"})
    columns += [
        {"name": "Ready", "type": "string", "jsonPath": f"{ready}.status",
         "description": "True when the webhook enforces this generation of the policy"},
        {"name": "Reason", "type": "string", "jsonPath": f"{ready}.reason", "priority": 1,
         "description": "Loaded, Invalid (this policy has errors) or Blocked (another policy's error)"},
        {"name": "Denied", "type": "integer", "jsonPath": ".status.audit.denied", "priority": 1,
         "description": "Live pods the last background audit found this policy would deny"},
        {"name": "Message", "type": "string", "jsonPath": f"{ready}.message", "priority": 1,
         "description": "The errors, or the policy set enforced"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return columns


def crd_for(kind: str) -> dict[str, Any]:
    """The CustomResourceDefinition of ``kind`` (TenantPolicy or ClusterPolicy)."""
    plural = PLURALS[kind]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "tenantguard", "app.kubernetes.io/part-of": "tenantguard"},
            "annotations": {"tenantguard.io/generated-by": "tenantguard schema --crd"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Cluster",
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower(),
                      "shortNames": [SHORT_NAMES[kind]], "categories": ["tenantguard"]},
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": printer_columns(kind),
                "schema": {"openAPIV3Schema": openapi_schema(kind)},
            }],
        },
    }


def crds() -> list[dict[str, Any]]:
    """Both CRDs, ClusterPolicy first (the order ``tenantguard schema --crd`` prints them)."""
    return [crd_for(kind) for kind in KINDS]
