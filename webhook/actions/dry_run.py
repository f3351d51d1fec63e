"""Running the engine over manifests, as the API server would run the webhook.

For each object: build the request (bare manifest -> CREATE; AdmissionReview
-> its own request), then the whole sequence the API server runs: the mutating
webhook (our defaults), the patch applied, the validating webhook on the
result. Objects admitted earlier in the input join the cluster view, so they
count toward quota for later ones (Namespaces in the input contribute their
labels). With ``mutate=False`` only the validating webhook runs, on the object
as written: what ``/validate`` answers when ``/mutate`` was down or skipped.
Shared by ``tenantguard dry-run``, ``tenantguard test`` and the golden tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from webhook.core.cluster_state import StateError
from webhook.core.decision import Decision
from webhook.core.pipeline import judge
from webhook.core.plan import PolicySet
from webhook.core.request import AdmissionRequest, ReviewError, from_manifest, from_review
from webhook.inputs.manifests import InputObject
from webhook.inputs.yamlio import InputError
from webhook.views.memory import InMemoryClusterState


@dataclass(slots=True)
class Result:
    request: AdmissionRequest
    decision: Decision
    original: dict[str, Any]

    @property
    def obj(self) -> dict[str, Any]:
        return self.decision.mutated if self.decision.mutated is not None else self.original

    @property
    def name(self) -> str:
        """The object's name (or generateName); "" when it has none."""
        meta = self.obj.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        return meta.get("name") or meta.get("generateName") or ""

    def as_json(self) -> dict[str, Any]:
        obj = self.obj
        out: dict[str, Any] = {
            "apiVersion": obj.get("apiVersion", ""),
            "kind": obj.get("kind", ""),
            "namespace": self.request.namespace,
            "name": self.name,
            "tenant": self.decision.tenant,
            "allowed": self.decision.allowed,
            "violations": [v.as_json() for v in self.decision.violations],
            "warnings": list(self.decision.warnings),
            "patch": self.decision.patch_json(),
            "object": obj,
        }
        if self.decision.audit:
            out["auditAnnotations"] = self.decision.audit_annotations()
        if self.decision.skipped:
            out["skipped"] = self.decision.skipped
        return out


def to_request(item: InputObject | dict[str, Any], *, namespace: str, today: date | None,
               username: str = "", groups: tuple[str, ...] = ()) -> AdmissionRequest:
    obj = item.obj if isinstance(item, InputObject) else item
    if obj.get("kind") == "AdmissionReview":
        return from_review(obj, today=today)
    return from_manifest(obj, default_namespace=namespace, today=today, username=username, groups=groups)


PIPELINE = "mutate, apply the patch, validate the result (as the API server chains the webhooks)"
VALIDATE_ONLY = "validate the object as written (as /validate judges it when /mutate was down or skipped)"


def run(items: list[InputObject], policies: PolicySet, state: InMemoryClusterState, *, namespace: str = "default",
        today: date | None = None, username: str = "", groups: tuple[str, ...] = (),
        mutate: bool = True) -> list[Result]:
    """Judge ``items`` in order; raise InputError naming the file and document of a malformed one."""
    results: list[Result] = []
    for item in items:
        try:
            request = to_request(item, namespace=namespace, today=today, username=username, groups=groups)
            decision = judge(request, policies, state, mutate=mutate)
        except ReviewError as exc:
            raise InputError(f"{item.source}: document {item.document}: invalid AdmissionReview: {exc}") from None
        except StateError as exc:
            raise InputError(f"{item.source}: document {item.document}: {exc}") from None
        # the engine never writes into the object it is given (it mutates a working copy): no copy here
        received = request.obj if request.obj is not None else request.old_obj
        original = received if isinstance(received, dict) else dict(received or {})
        results.append(Result(request, decision, original))
    return results
