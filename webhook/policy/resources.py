"""Policies as custom resources: ``tenantpolicies.tenantguard.io`` and ``clusterpolicies.tenantguard.io``.

A policy file's document and the custom resource are the same thing: ``kubectl apply -f
policies/`` stores each document as an object of its kind, and an object read back from the
API server is loaded like a document (its ``status`` and the metadata the server adds are
left out). Error lines name the object instead of a file and document::

    TenantPolicy/team-a: spec.defualts: unknown field
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from webhook.core.plan import PolicySet
from webhook.policy.loader import PolicyError, SourceDoc, build_policy_set

GROUP = "tenantguard.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
PLURALS = {"TenantPolicy": "tenantpolicies", "ClusterPolicy": "clusterpolicies"}
SHORT_NAMES = {"TenantPolicy": "tp", "ClusterPolicy": "cp"}
EMPTY_GENERATION = "empty"


def object_name(obj: Mapping[str, Any]) -> str:
    """``TenantPolicy/team-a``: how logs, errors and status name a policy object."""
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')}/{meta.get('name', '')}"


def document_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The policy document an object holds: everything but ``status`` (the loader ignores server metadata)."""
    return {k: v for k, v in obj.items() if k != "status"}


def load_objects(objects: Iterable[Mapping[str, Any]]) -> PolicySet:
    """The PolicySet the objects make; raise PolicyError naming every object that is wrong, and why.

    No objects at all is an empty set (nothing is enforced), not an error: the policies of a
    fresh install arrive after the webhook does.
    """
    docs = [SourceDoc(document_of(o), object_name(o), 0)
            for o in sorted(objects, key=lambda o: (str(o.get("kind")), (o.get("metadata") or {}).get("name", "")))]
    if not docs:
        return PolicySet(generation=EMPTY_GENERATION)
    return build_policy_set(docs)


def errors_by_object(errors: Iterable[str], names: Iterable[str]) -> dict[str, list[str]]:
    """The error lines about each object (``TenantPolicy/x: ...``), the object's own name cut off."""
    out: dict[str, list[str]] = {}
    wanted = sorted(set(names), key=len, reverse=True)
    for line in errors:
        for name in wanted:
            if line.startswith(name + ":"):
                out.setdefault(name, []).append(line[len(name) + 1:].strip())
                break
    return out


__all__ = ["API_VERSION", "GROUP", "PLURALS", "SHORT_NAMES", "VERSION", "PolicyError", "document_of",
           "errors_by_object", "load_objects", "object_name"]
