"""Building the AdmissionReview answer: a pure function that omits empty keys.

``patch`` and ``patchType`` appear only when there is a patch; ``warnings``,
``auditAnnotations`` and ``status`` only when non-empty / denied.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from webhook.core.decision import Decision
from webhook.core.request import AdmissionRequest
from webhook.core.wire import AdmissionResponseBody, AdmissionReviewResponse

# Kubernetes caps each warning (longer ones are truncated by the API server) and their total.
MAX_WARNING_CHARS = 512


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def admission_response(request: AdmissionRequest, decision: Decision, *, include_patch: bool,
                       dumps: Callable[[Any], bytes] = _dumps) -> AdmissionReviewResponse:
    """The AdmissionReview to send back, in the request's apiVersion, with the same uid."""
    response: AdmissionResponseBody = {"uid": request.uid, "allowed": decision.allowed}
    if include_patch and decision.patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(dumps(decision.patch_json())).decode()
    if not decision.allowed:
        response["status"] = {
            "code": 403,
            "reason": "Forbidden",
            "message": decision.message(),
        }
    if decision.warnings:
        response["warnings"] = [w if len(w) <= MAX_WARNING_CHARS else w[: MAX_WARNING_CHARS - 3] + "..."
                                for w in decision.warnings]
    annotations = decision.audit_annotations()
    if annotations:
        response["auditAnnotations"] = annotations
    return {"apiVersion": request.api_version, "kind": "AdmissionReview", "response": response}


def error_response(uid: str, api_version: str, code: int, message: str, *,
                   allowed: bool = False) -> AdmissionReviewResponse:
    """An answer for a review we could not evaluate (e.g. no policies loaded yet)."""
    response: AdmissionResponseBody = {"uid": uid, "allowed": allowed}
    if not allowed:
        response["status"] = {"code": code, "message": message}
    else:
        response["warnings"] = [message]
    return {"apiVersion": api_version, "kind": "AdmissionReview", "response": response}
