"""Running the engine over manifests, as the API server would run the webhook.

For each object: build the request (bare manifest -> CREATE; AdmissionReview
-> its own request), mutate, apply the patch, validate the result. Objects
admitted earlier in the input join the cluster view, so they count toward
quota for later ones (Namespaces in the input contribute their labels).
Shared by ``tenantguard dry-run``, ``tenantguard test`` and the golden tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from webhook.core.cluster_state import InMemoryClusterState, StateError
from webhook.core.decision import Decision
from webhook.core.engine import evaluate
from webhook.core.plan import PolicySet
from webhook.core.request import AdmissionRequest, ReviewError, from_manifest, from_review
from webhook.manifests import InputObject
from webhook.yamlio import InputError


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


def admit(request: AdmissionRequest, policies: PolicySet, state: InMemoryClusterState) -> Decision:
    """Evaluate one request and, when it creates something allowed, add it to the cluster view.

    Raises StateError when the admitted object cannot join the view (malformed metadata, a quantity that
    does not parse: the API server would have refused it as invalid).
    """
    decision = evaluate(request, policies, state)
    obj = decision.mutated if decision.mutated is not None else request.obj
    if decision.allowed and not request.dry_run and request.operation == "CREATE" and isinstance(obj, dict):
        kind = obj.get("kind")
        if kind == "Namespace":
            state.add_object(obj)
        elif kind in ("Pod", "NetworkPolicy", "ResourceQuota"):
            state.add_object(obj, request.namespace)
    return decision


def run(items: list[InputObject], policies: PolicySet, state: InMemoryClusterState, *, namespace: str = "default",
        today: date | None = None, username: str = "", groups: tuple[str, ...] = ()) -> list[Result]:
    """Judge ``items`` in order; raise InputError naming the file and document of a malformed one."""
    results: list[Result] = []
    for item in items:
        try:
            request = to_request(item, namespace=namespace, today=today, username=username, groups=groups)
            decision = admit(request, policies, state)
        except ReviewError as exc:
            raise InputError(f"{item.source}: document {item.document}: invalid AdmissionReview: {exc}") from None
        except StateError as exc:
            raise InputError(f"{item.source}: document {item.document}: {exc}") from None
        original = dict(request.obj) if request.obj is not None else dict(request.old_obj or {})
        results.append(Result(request, decision, original))
    return results
