"""The AdmissionReview wire format (``admission.k8s.io/v1``), typed for the type checker.

Plain dicts at run time (as kopf types its reviews): these TypedDicts say what the API
server sends and what we answer, field by field, so that a misspelt key in the code that
builds or reads them is a type error. Incoming bodies are untrusted and are checked by
``webhook.core.request.from_review`` before anything relies on these shapes.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict


class GroupVersionKind(TypedDict):
    group: str
    version: str
    kind: str


class GroupVersionResource(TypedDict):
    group: str
    version: str
    resource: str


class UserInfo(TypedDict, total=False):
    username: str
    uid: str
    groups: list[str]
    extra: dict[str, list[str]]


Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]


class AdmissionRequestBody(TypedDict):
    """``request`` of an AdmissionReview the API server sends."""

    uid: str
    kind: NotRequired[GroupVersionKind]
    resource: NotRequired[GroupVersionResource]
    subResource: NotRequired[str]
    requestKind: NotRequired[GroupVersionKind]
    requestResource: NotRequired[GroupVersionResource]
    requestSubResource: NotRequired[str]
    name: NotRequired[str]
    namespace: NotRequired[str]
    operation: Operation
    userInfo: NotRequired[UserInfo]
    object: NotRequired[dict[str, Any] | None]
    oldObject: NotRequired[dict[str, Any] | None]
    dryRun: NotRequired[bool]
    options: NotRequired[dict[str, Any] | None]


class AdmissionReviewRequest(TypedDict):
    apiVersion: str
    kind: Literal["AdmissionReview"]
    request: AdmissionRequestBody


class StatusBody(TypedDict, total=False):
    code: int
    reason: str
    message: str


class AdmissionResponseBody(TypedDict):
    """``response`` of the AdmissionReview we answer: empty members are left out."""

    uid: str
    allowed: bool
    patchType: NotRequired[Literal["JSONPatch"]]
    patch: NotRequired[str]  # base64 of the JSON Patch
    status: NotRequired[StatusBody]
    warnings: NotRequired[list[str]]
    auditAnnotations: NotRequired[dict[str, str]]


class AdmissionReviewResponse(TypedDict):
    apiVersion: str
    kind: Literal["AdmissionReview"]
    response: AdmissionResponseBody
