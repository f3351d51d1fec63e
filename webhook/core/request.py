"""The one request shape the engine evaluates, from an AdmissionReview or a bare manifest."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from webhook.core.errors import TenantguardError


class ReviewError(TenantguardError, ValueError):
    """The review itself is malformed (not an AdmissionReview, wrong types, ...): an HTTP 400, not a denial."""


@dataclass(frozen=True, slots=True)
class AdmissionRequest:
    """What the engine needs to know about one admission.

    ``namespace`` is authoritative (AdmissionReview ``request.namespace``; the
    object's own may be empty). ``obj`` is None for DELETE. ``today`` feeds
    exemption expiry; the shell passes it, the core never reads the clock.
    ``writable``: the caller hands ``obj`` over (the server's freshly decoded
    JSON body), so mutation fills it in place instead of working on a copy.
    """

    obj: Mapping[str, Any] | None
    namespace: str
    operation: str = "CREATE"
    old_obj: Mapping[str, Any] | None = None
    uid: str = ""
    subresource: str = ""
    username: str = ""
    groups: tuple[str, ...] = ()
    dry_run: bool = False
    api_version: str = "admission.k8s.io/v1"
    today: date | None = None
    writable: bool = False

    @property
    def kind(self) -> str:
        obj = self.obj if self.obj is not None else self.old_obj
        kind = obj.get("kind") if obj else None
        return kind if isinstance(kind, str) else ""

    @property
    def name(self) -> str:
        obj = self.obj if self.obj is not None else self.old_obj
        meta = obj.get("metadata") if obj else None
        if isinstance(meta, dict):
            name = meta.get("name") or meta.get("generateName") or ""
            return name if isinstance(name, str) else ""
        return ""


def _shown(value: Any, limit: int = 40) -> str:
    """A value from the body, for an error message: short, so a body's content never reaches the logs."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ReviewError(f"{where} must be an object")
    return value


def _optional_mapping(value: Any, where: str) -> Mapping[str, Any] | None:
    if value is None:
        return None
    return _mapping(value, where)


def _string(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ReviewError(f"{where} must be a string")
    return value


SUPPORTED_REVIEW_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")


def from_review(review: Any, *, today: date | None = None, writable: bool = False) -> AdmissionRequest:
    """Parse an AdmissionReview dict; raise ReviewError when it is not a well-formed one.

    ``writable``: the caller will not use ``review`` again and it shares no members (freshly decoded JSON,
    unlike YAML with aliases), so the engine may fill its object in place.
    """
    review = _mapping(review, "body")
    if review.get("kind") != "AdmissionReview":
        raise ReviewError("kind must be AdmissionReview")
    api_version = review.get("apiVersion")
    if api_version not in SUPPORTED_REVIEW_VERSIONS:
        raise ReviewError(f"unsupported apiVersion {_shown(api_version)}; expected admission.k8s.io/v1")
    req = _mapping(review.get("request"), "request")
    uid = _string(req.get("uid"), "request.uid")
    if not uid:
        raise ReviewError("request.uid is required")
    operation = _string(req.get("operation"), "request.operation") or "CREATE"
    if operation not in ("CREATE", "UPDATE", "DELETE", "CONNECT"):
        raise ReviewError(f"request.operation {_shown(operation)} is not CREATE, UPDATE, DELETE or CONNECT")
    obj = _optional_mapping(req.get("object"), "request.object")
    old = _optional_mapping(req.get("oldObject"), "request.oldObject")
    if operation in ("CREATE", "UPDATE") and obj is None:
        raise ReviewError(f"request.object is required for {operation}")
    user = _optional_mapping(req.get("userInfo"), "request.userInfo") or {}
    groups = user.get("groups") or []
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise ReviewError("request.userInfo.groups must be a list of strings")
    dry_run = req.get("dryRun", False)
    if dry_run is None:
        dry_run = False
    if not isinstance(dry_run, bool):
        raise ReviewError("request.dryRun must be a boolean")
    namespace = _string(req.get("namespace"), "request.namespace")
    if not namespace:
        source = obj if obj is not None else old
        meta = source.get("metadata") if source else None
        namespace = meta.get("namespace", "") if isinstance(meta, dict) else ""
        namespace = namespace if isinstance(namespace, str) else ""
    return AdmissionRequest(
        obj=obj,
        old_obj=old,
        namespace=namespace,
        operation=operation,
        uid=uid,
        subresource=_string(req.get("subResource"), "request.subResource"),
        username=_string(user.get("username"), "request.userInfo.username"),
        groups=tuple(groups),
        dry_run=dry_run,
        api_version=api_version,
        today=today,
        writable=writable,
    )


# Kinds that live outside namespaces: their requests carry no namespace.
CLUSTER_SCOPED_KINDS = frozenset({
    "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "StorageClass", "PriorityClass",
    "CustomResourceDefinition", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "IngressClass", "RuntimeClass",
    "CSIDriver", "CSINode", "VolumeAttachment", "APIService", "ClusterPolicy",
})


def from_manifest(obj: Mapping[str, Any], *, default_namespace: str = "default", today: date | None = None,
                  username: str = "", groups: tuple[str, ...] = ()) -> AdmissionRequest:
    """A CREATE request for a bare manifest, as `kubectl apply` of a new object would send."""
    meta = obj.get("metadata")
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    if not (isinstance(namespace, str) and namespace):
        namespace = "" if obj.get("kind") in CLUSTER_SCOPED_KINDS else default_namespace
    return AdmissionRequest(
        obj=obj,
        namespace=namespace,
        operation="CREATE",
        username=username,
        groups=groups,
        today=today,
    )
