"""The one admission path: lock the usage view, evaluate, record what was admitted.

Every caller judges through :func:`judge`: the webhook's endpoints, ``tenantguard
dry-run``, ``tenantguard test`` and ``tenantguard audit``. What differs between them is
only the view they hand in, behind :class:`UsageView`:

- ``locked()``: while it is held, no other admission can evaluate against the same usage
  or record into it (a no-op for a view only one caller uses; a store lock for the watched
  view; a lock shared by every worker process when several serve one port);
- ``record_admitted(request, decision)``: what an admitted request adds to the usage that
  later requests are judged against (the dry-run's in-memory view adds the object itself;
  the watched view reserves a pod's usage until its watch reports the pod; a fixed
  snapshot records nothing).

Only what can change usage takes the lock: the validating phase of a request that is not a
dry run and that creates an object or resizes a pod. Everything else is evaluated without it.
A caller may also judge without recording (``record=False``): the server does for reviews
from a caller it cannot trust, so a forged review never reserves a tenant's quota.

A view may refuse to record (``RecordRefused``: too many admissions it has not yet seen
happen); the admission is then denied, saying why, rather than admitted uncounted.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from webhook.core.cluster_state import ClusterState
from webhook.core.decision import Decision
from webhook.core.decision import Violation
from webhook.core.engine import Timer, evaluate
from webhook.core.errors import TenantguardError
from webhook.core.plan import RESIZE, PolicySet
from webhook.core.request import AdmissionRequest


class RecordRefused(TenantguardError):
    """A view cannot count one more admission now (it bounds what it holds unconfirmed)."""


class UsageView(ClusterState, Protocol):
    """A cluster view that admissions are judged against and recorded into."""

    def locked(self) -> AbstractContextManager[object]:
        """Exclusive use of the usage for one evaluate-and-record step."""
        ...

    def record_admitted(self, request: AdmissionRequest, decision: Decision) -> None:
        """Count what ``request`` (allowed by ``decision``) adds, for the requests that follow."""
        ...


def changes_usage(request: AdmissionRequest) -> bool:
    """A request whose admission adds to usage: a real (not dry-run) creation or pod resize."""
    if request.dry_run:
        return False
    if request.subresource == RESIZE:
        return request.operation == "UPDATE"
    return request.operation == "CREATE" and request.subresource == ""


def judge(request: AdmissionRequest, policies: PolicySet, view: UsageView, *, mutate: bool = True,
          validate: bool = True, timer: Timer | None = None, record: bool = True) -> Decision:
    """Evaluate ``request`` against ``view`` and, when it is admitted, record it there, atomically.

    ``mutate``/``validate`` select the phases (the mutating webhook runs only the first, the
    validating webhook only the second, the dry-run both). Only the validating phase records.
    """
    if not (record and validate and changes_usage(request)):
        return evaluate(request, policies, view, mutate=mutate, validate=validate, timer=timer)
    with view.locked():
        decision = evaluate(request, policies, view, mutate=mutate, validate=validate, timer=timer)
        if decision.allowed:
            try:
                view.record_admitted(request, decision)
            except RecordRefused as exc:
                decision.violations.append(Violation("tenantguard", "reservations", str(exc)))
                decision.allowed = False
    return decision
