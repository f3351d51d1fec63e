"""The one function the server wraps: an endpoint and a review dict in, a response dict out.

No aiohttp, no I/O: the core's one admission path (``webhook.core.pipeline.judge``) over
the server's cluster view, with the phase each endpoint owns, exactly as the API server
chains the two webhooks:

- ``/mutate``   = the mutation phase only: the patch (defaults), plus the warnings of the
  mutation phase (failed defaults, Audit-mode "would set ...");
- ``/validate`` = the validation phase only, on the object EXACTLY AS RECEIVED, answered
  without a patch. In a cluster that is the object after every mutating webhook ran, ours
  included; but ``/mutate`` fails open (its failurePolicy is Ignore in the chart), so the
  object may lack our defaults, and it is judged without them: a pod that lacks what a
  default would have filled is denied by the rule that default serves, never admitted on
  the assumption that the defaults were applied. ``/mutate`` then ``/validate`` on the
  patched object gives ``tenantguard dry-run``'s verdict; the raw object on ``/validate``
  gets the raw object's verdict.

Malformed reviews raise :class:`webhook.core.request.ReviewError` (HTTP 400, the caller's
business). A review that is well formed but whose evaluation raises is answered in the
endpoint's fail posture (mutation fails open, security rules fail closed): ``/mutate``
allows without a patch and says so in a warning; ``/validate`` denies with a message
naming the error. ``Outcome.exception`` carries it for logs and metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

import orjson

from webhook.core.decision import Decision, Violation
from webhook.core.complexity import ReviewLimits, measure
from webhook.core.engine import Timer
from webhook.core.pipeline import judge
from webhook.core.plan import PolicySet
from webhook.core.request import AdmissionRequest, from_review
from webhook.core.response import admission_response, error_response
from webhook.core.wire import AdmissionResponseBody, AdmissionReviewResponse
from webhook.server.answers import AnswerCache
from webhook.views import ClusterView

__all__ = ["MUTATE", "VALIDATE", "Endpoint", "Outcome", "answer", "findings", "rule_ids"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    validate: bool  # the validation phase (the rules) when True, else the mutation phase (the defaults)
    fail_open: bool  # internal error: allow (no patch) when True, deny when False

    @property
    def mutate(self) -> bool:
        return not self.validate

    @property
    def patches(self) -> bool:
        """Only the mutating endpoint answers with the patch."""
        return self.mutate


MUTATE = Endpoint("mutate", validate=False, fail_open=True)
VALIDATE = Endpoint("validate", validate=True, fail_open=False)


@dataclass(slots=True)
class Outcome:
    """What one review came to: the AdmissionReview to send, and what it was made from."""

    review: AdmissionReviewResponse
    request: AdmissionRequest
    decision: Decision | None  # None when the evaluation raised
    exception: Exception | None = None
    cached: bool = False  # the answer of an earlier, identical review

    @property
    def error(self) -> str | None:
        exc = self.exception
        return None if exc is None else f"{type(exc).__name__}: {exc}"

    @property
    def allowed(self) -> bool:
        return bool(self.review["response"]["allowed"])

    @property
    def verdict(self) -> str:
        """allowed | denied | error: the ``decision`` label of metrics and logs."""
        if self.error is not None:
            return "error"
        return "allowed" if self.allowed else "denied"


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def _internal_error(endpoint: Endpoint, request: AdmissionRequest, exc: BaseException) -> AdmissionReviewResponse:
    what = f"{type(exc).__name__}: {exc}"
    if endpoint.fail_open:
        message = f"tenantguard could not evaluate the defaults ({what}); admitted without them"
        return error_response(request.uid, request.api_version, 500, message, allowed=True)
    message = (f"tenantguard could not evaluate the policies for this request ({what}); "
               "denied because the security rules fail closed")
    return error_response(request.uid, request.api_version, 500, message, allowed=False)


def _too_large(endpoint: Endpoint, request: AdmissionRequest, why: str) -> AdmissionReviewResponse:
    if endpoint.fail_open:
        return error_response(request.uid, request.api_version, 413, f"tenantguard: {why}; admitted without "
                              "defaults", allowed=True)
    return error_response(request.uid, request.api_version, 403, f"tenantguard denied the request: {why}",
                          allowed=False)


def answer(endpoint: Endpoint, body: Any, policies: PolicySet, view: ClusterView, *,
          today: date | None = None, dumps: Callable[[Any], bytes] = _dumps, consume: bool = False,
          timer: Timer | None = None, record: bool = True, limits: ReviewLimits | None = None,
          cache: AnswerCache | None = None) -> Outcome:
    """Answer one AdmissionReview for ``endpoint``; raise ReviewError when ``body`` is not a valid one.

    On /validate an admitted creation is recorded in the view (a watch-backed view reserves
    the pod's usage until its watch reports the pod; dry-run requests record nothing).
    ``consume``: the caller hands ``body`` over (it was just parsed for this call), so /mutate
    fills the object in place instead of copying it first. ``timer`` times each rule.
    ``record=False``: a caller that may not reserve quota (webhook.server.callers). A pod beyond
    ``limits`` is not evaluated: denied on /validate, admitted without defaults on /mutate.
    ``cache``: answers of reviews that cannot be judged differently are reused (webhook.server.answers).
    """
    request = from_review(body, today=today, writable=consume)
    too_large = limits.exceeded(measure(request.obj, policies.pod_templates)) if limits is not None and request.obj is not None else None
    if too_large is not None:
        return Outcome(_too_large(endpoint, request, too_large), request, None)
    try:
        key = None
        if cache is not None:
            key = cache.key(endpoint.name, request, policies, view.namespace_labels(request.namespace))
            cached = cache.get(key) if key is not None else None
            if cached is not None:
                response = cast(AdmissionResponseBody, {"uid": request.uid, **cached.response})
                return Outcome({"apiVersion": request.api_version, "kind": "AdmissionReview", "response": response},
                               request, cached.decision, cached=True)
        decision = judge(request, policies, view, mutate=endpoint.mutate, validate=endpoint.validate, timer=timer,
                         record=record)
        review = admission_response(request, decision, include_patch=endpoint.patches, dumps=dumps)
        if key is not None and cache is not None:
            cache.put(key, review["response"], decision)
    except Exception as exc:  # noqa: BLE001 - the fail posture, not a 500
        return Outcome(_internal_error(endpoint, request, exc), request, None, exc)
    return Outcome(review, request, decision)


def rule_ids(decision: Decision) -> list[str]:
    """``policy/rule`` of every finding that denied or was audited, in order, without repeats."""
    seen = dict.fromkeys(f"{v.policy}/{v.rule}" for v in (*decision.violations, *decision.audit))
    return list(seen)


def findings(decision: Decision) -> Iterator[tuple[Violation, str]]:
    """Every finding with the mode it was filed under (Enforce, Warn, Audit)."""
    for v in decision.violations:
        yield v, "Enforce"
    for v in decision.warned:
        yield v, "Warn"
    for v in decision.audit:
        yield v, "Audit"
