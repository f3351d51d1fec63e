"""Running the engine over manifests, as the API server would run the webhook.

For each object: build the request (bare manifest -> CREATE; AdmissionReview
-> its own request), then the whole sequence the API server runs: the mutating
webhook (our defaults), the patch applied, the validating webhook on the
result. Objects admitted earlier in the input join the cluster view, so they
count toward quota for later ones (Namespaces in the input contribute their
labels). With ``mutate=False`` only the validating webhook runs, on the object
as written: what ``/validate`` answers when ``/mutate`` was down or skipped.
Shared by ``tenantguard dry-run``, ``tenantguard test`` and the golden tests.

Every finding of a result is one structured violation with the enforcement it was handled
under (:meth:`Result.findings`): ``Enforce`` (denies), ``Warn`` (a kubectl warning), ``Audit``
(an audit annotation). The JSON ``violations`` list holds them all, Enforce first; ``allowed``
is false only when an Enforce finding exists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from webhook.core.cluster_state import StateError
from webhook.core.decision import Decision, Violation
from webhook.core.pipeline import judge
from webhook.core.plan import Enforcement, PolicySet
from webhook.core.request import AdmissionRequest, ReviewError, from_manifest, from_review
from webhook.inputs.manifests import STDIN, InputObject
from webhook.inputs.yamlio import InputError
from webhook.views.memory import InMemoryClusterState


ENFORCE, WARN, AUDIT = Enforcement.ENFORCE.value, Enforcement.WARN.value, Enforcement.AUDIT.value
ENFORCEMENTS = (ENFORCE, WARN, AUDIT)


def findings(decision: Decision) -> list[Violation]:
    """Every finding of a decision, each with the enforcement it was handled under: the Enforce ones (they
    deny), then Warn (kubectl warnings), then Audit (audit annotations). What ``-o json`` lists as
    ``violations`` and what a PolicyTest's ``expect.violations`` is compared with."""
    d = decision
    return [v if v.enforcement == mode else v._replace(enforcement=mode)
            for mode, found in ((ENFORCE, d.violations), (WARN, d.warned), (AUDIT, d.audit)) for v in found]


@dataclass(slots=True)
class Result:
    request: AdmissionRequest
    decision: Decision
    original: dict[str, Any]
    item: InputObject | None = None  # where the object was read (None: built by a caller, not read from input)

    @property
    def obj(self) -> dict[str, Any]:
        return self.decision.mutated if self.decision.mutated is not None else self.original

    @property
    def name(self) -> str:
        """The object's name (or generateName); "" when it has none."""
        meta = self.obj.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        return meta.get("name") or meta.get("generateName") or ""

    def findings(self) -> list[Violation]:
        """Every finding, each with the enforcement it was handled under (:func:`findings`)."""
        return findings(self.decision)

    def count(self, enforcement: str) -> int:
        """How many findings were handled under ``enforcement`` (Enforce, Warn or Audit)."""
        d = self.decision
        return len({ENFORCE: d.violations, WARN: d.warned, AUDIT: d.audit}[enforcement])

    def as_json(self) -> dict[str, Any]:
        obj = self.obj
        out: dict[str, Any] = {
            "apiVersion": obj.get("apiVersion", ""),
            "kind": obj.get("kind", ""),
            "namespace": self.request.namespace,
            "name": self.name,
            "tenant": self.decision.tenant,
            "allowed": self.decision.allowed,
            "violations": [v.as_json() for v in self.findings()],
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
        results.append(Result(request, decision, original, item if isinstance(item, InputObject) else None))
    return results



def namespace_warnings(items: list[InputObject], results: list[Result], namespace: str) -> list[str]:
    """One warning per stdin document whose objects name no namespace and were judged in ``namespace``
    (the default): a stream piped in (``kustomize build | ...``) often leaves the namespace to kubectl's."""
    missing: dict[int, list[str]] = {}
    for item, result in zip(items, results, strict=True):
        if item.source != STDIN or item.obj.get("kind") == "AdmissionReview" or not result.request.namespace:
            continue  # from a file, a review (it says its namespace), or cluster-scoped
        meta = item.obj.get("metadata")
        named = meta.get("namespace") if isinstance(meta, dict) else None
        if not (isinstance(named, str) and named):
            missing.setdefault(item.document, []).append(f"{item.obj.get('kind', '')} {result.name or '<unnamed>'}")
    out = []
    for document, objects in missing.items():
        shown = ", ".join(objects[:3]) + (f" and {len(objects) - 3} more" if len(objects) > 3 else "")
        verb = "has" if len(objects) == 1 else "have"
        out.append(f"{STDIN}: document {document}: {shown} {verb} no namespace; judged in {json.dumps(namespace)} "
                   "(set --namespace or metadata.namespace)")
    return out
