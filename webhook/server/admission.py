"""The one function the server wraps: an endpoint and a review dict in, a response dict out.

No aiohttp, no I/O: the same core the CLI runs (``webhook.core.engine.evaluate``, through
the cluster view's ``judge``), with the phase each endpoint owns, exactly as the API
server chains the two webhooks:

- ``/mutate``   = ``evaluate(mutate=True, validate=False)``: the patch (defaults), plus the
  warnings of the mutation phase (failed defaults, Audit-mode "would set ...");
- ``/validate`` = ``evaluate(mutate=True, validate=True)``, answered without a patch: the
  same pipeline as ``tenantguard dry-run`` (DESIGN §1: validate the MUTATED object), so a
  review gives the dry-run's verdict whichever endpoint it is sent to. In a cluster the
  object reaching /validate already carries our defaults (the API server calls validating
  webhooks after the mutating ones), and a second mutation pass is a no-op, so it is judged
  as received. Only its Warn-mode findings become warnings (the mutation phase's own
  warnings were already given by /mutate; kubectl would print them twice).

Should /mutate fail open (its failurePolicy is Ignore in the chart), /validate judges the
object as it would be with the defaults; the native backstops of ``tenantguard render``
(Pod Security labels, LimitRange, ResourceQuota) then hold what the missing defaults
would have guaranteed.

Malformed reviews raise :class:`webhook.core.request.ReviewError` (HTTP 400, the caller's
business). A review that is well formed but whose evaluation raises is answered in the
endpoint's fail posture (DESIGN §6: mutation may fail open, security rules fail closed):
``/mutate`` allows without a patch and says so in a warning; ``/validate`` denies with
a message naming the error. ``Outcome.exception`` carries it for logs and metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import orjson

from webhook.core.decision import Decision
from webhook.core.plan import PolicySet
from webhook.core.request import AdmissionRequest, from_review
from webhook.core.response import admission_response, error_response
from webhook.server.cluster_view import ClusterView

__all__ = ["MUTATE", "VALIDATE", "Endpoint", "Outcome", "admit", "rule_ids", "warned_rule_ids"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    validate: bool  # run the rules (both endpoints run the defaults first)
    fail_open: bool  # internal error: allow (no patch) when True, deny when False

    @property
    def patches(self) -> bool:
        """Only the mutating endpoint answers with the patch."""
        return not self.validate


MUTATE = Endpoint("mutate", validate=False, fail_open=True)
VALIDATE = Endpoint("validate", validate=True, fail_open=False)


@dataclass(slots=True)
class Outcome:
    """What one review came to: the AdmissionReview to send, and what it was made from."""

    review: dict[str, Any]
    request: AdmissionRequest
    decision: Decision | None  # None when the evaluation raised
    exception: Exception | None = None

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


def _internal_error(endpoint: Endpoint, request: AdmissionRequest, exc: BaseException) -> dict[str, Any]:
    what = f"{type(exc).__name__}: {exc}"
    if endpoint.fail_open:
        message = f"tenantguard could not evaluate the defaults ({what}); admitted without them"
        return error_response(request.uid, request.api_version, 500, message, allowed=True)
    message = (f"tenantguard could not evaluate the policies for this request ({what}); "
               "denied because the security rules fail closed")
    return error_response(request.uid, request.api_version, 500, message, allowed=False)


def admit(endpoint: Endpoint, body: Any, policies: PolicySet, view: ClusterView, *,
          today: date | None = None, dumps: Callable[[Any], bytes] = _dumps, consume: bool = False) -> Outcome:
    """Answer one AdmissionReview for ``endpoint``; raise ReviewError when ``body`` is not a valid one.

    ``view.judge`` runs the core's ``evaluate`` (and, on /validate, reserves an admitted pod's
    usage in a watch-backed view; dry-run requests reserve nothing). ``consume``: the caller
    hands ``body`` over (it was just parsed for this call), so /mutate fills the object in place
    instead of copying it first.
    """
    request = from_review(body, today=today, writable=consume)
    try:
        decision = view.judge(request, policies, mutate=True, validate=endpoint.validate)
        answer = decision
        if endpoint.validate:
            # the rules' own warnings only: /mutate already answered with the mutation phase's
            answer = replace(decision, warnings=[v.summary() for v in decision.warned])
        review = admission_response(request, answer, include_patch=endpoint.patches, dumps=dumps)
    except Exception as exc:  # noqa: BLE001 - the fail posture, not a 500
        return Outcome(_internal_error(endpoint, request, exc), request, None, exc)
    return Outcome(review, request, decision)


def rule_ids(decision: Decision) -> list[str]:
    """``policy/rule`` of every finding that denied or was audited, in order, without repeats."""
    seen = dict.fromkeys(f"{v.policy}/{v.rule}" for v in (*decision.violations, *decision.audit))
    return list(seen)


def warned_rule_ids(decision: Decision) -> Iterator[tuple[str, str]]:
    """(policy, rule) of each Warn-mode finding."""
    for v in decision.warned:
        yield v.policy, v.rule
