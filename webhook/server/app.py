"""The aiohttp application: routes and the HTTP-level checks around :func:`admission.answer`.

=======  ============  ==========================================================================
POST     /mutate       AdmissionReview in, AdmissionReview out (patch: JSONPatch, base64)
POST     /validate     AdmissionReview in, AdmissionReview out (denials: status.code 403)
GET      /healthz      200 while the process serves (also while draining: liveness must not kill it)
GET      /readyz       200 when policies are loaded, the cluster view is synced and we are not draining
GET      /metrics      Prometheus text
=======  ============  ==========================================================================

Client errors never reach the core: a Content-Type other than application/json, a body
over the limit (413; checked on Content-Length before reading, and while reading a chunked
body), a body that is not JSON, or JSON that is not an admission.k8s.io/v1 AdmissionReview
get a 4xx with a one-line plain-text reason. Unknown paths are 404, other methods 405.

While draining (after SIGTERM) answers carry ``Connection: close`` so keep-alive clients
reconnect to another replica.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import orjson
from aiohttp import ClientError, web
from aiohttp.http_exceptions import HttpProcessingError

from webhook.core.complexity import ReviewLimits
from webhook.core.decision import Status
from webhook.core.request import ReviewError
from webhook.server.admission import MUTATE, VALIDATE, Endpoint, Outcome, answer, findings, rule_ids
from webhook.server.answers import AnswerCache
from webhook.server.callers import CallerPolicy
from webhook.server.logs import FastLine
from webhook.server.metrics import Metrics
from webhook.server.policy_store import PolicyStore
from webhook.server.settings import MAX_BODY_BYTES
from webhook.views import ClusterView
from webhook.views.changes import Changes

log = logging.getLogger("tenantguard.admission")
admission_line = FastLine(log)
JSON = "application/json"
OFFLOAD_BYTES = 256 * 1024
LARGE_REVIEWS = 2  # large reviews judged at once (in threads); the rest wait, small ones never do


@dataclass(slots=True)
class WebhookContext:
    """What the handlers share: the live policies, the cluster view, metrics, and the drain flag."""

    policies: PolicyStore
    view: ClusterView
    metrics: Metrics = field(default_factory=Metrics)
    max_body: int = MAX_BODY_BYTES
    today: Callable[[], date] = date.today
    callers: CallerPolicy = field(default_factory=lambda: CallerPolicy(trusted_network=True))
    limits: ReviewLimits = field(default_factory=ReviewLimits)
    offload_bytes: int = OFFLOAD_BYTES  # bodies larger than this are decoded and judged in a thread
    body_timeout: float = 10.0  # seconds a body may take to arrive once the request head has
    answers: AnswerCache | None = field(default_factory=AnswerCache)  # None: every review evaluated
    large_reviews: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(LARGE_REVIEWS))
    draining: bool = False
    in_flight: int = 0
    _changes: Changes = field(default_factory=Changes, repr=False)

    def request_started(self) -> None:
        self.in_flight += 1  # the gauge is set from it at scrape time and once a second
        self._changes.notify()

    def request_finished(self) -> None:
        self.in_flight -= 1
        self._changes.notify()

    async def wait_in_flight(self, predicate: Callable[[int], bool]) -> None:
        """Until ``predicate(in_flight)`` holds (the drain waits for 0; tests for a request to arrive)."""
        await self._changes.wait(lambda: predicate(self.in_flight))

    def readiness(self) -> tuple[bool, str]:
        """(ready, the /readyz body). A failed policy reload is named but keeps readiness: the last good
        set serves, and a replica taken out of the Service over a typo would be a lockout."""
        if self.draining:
            return False, "draining"
        if not self.policies.loaded:
            return False, "policies not loaded"
        health = self.view.health()
        if not health.ready:
            return False, health.reason()
        body = f"ok (policies {self.policies.generation}"
        failure = self.policies.last_failure
        if failure is not None:
            body += "; " + failure.describe(time.time())
        return True, body + ")"


CONTEXT = web.AppKey("tenantguard", WebhookContext)


def _bad(ctx: WebhookContext, request: web.Request, endpoint: Endpoint, code: int, reason: str) -> web.Response:
    ctx.metrics.bad_requests.labels(endpoint.name, str(code)).inc()
    log.warning("bad request", extra={"event": "bad_request", "endpoint": endpoint.name, "code": code,
                                      "reason": reason, "remote": request.remote})
    return web.Response(status=code, text=reason + "\n")


def _record(ctx: WebhookContext, endpoint: Endpoint, outcome: Outcome, seconds: float) -> None:
    decision = outcome.decision
    tenant = (decision.tenant if decision is not None else None) or ""
    verdict = outcome.verdict
    metrics = ctx.metrics
    metrics.admission(endpoint.name, tenant, verdict, seconds)
    if decision is not None:
        if endpoint.validate:
            for v, mode in findings(decision):
                if v.status is not Status.ERROR:  # a rule that could not run is not a violation
                    metrics.violation(v.policy, v.rule, mode)
        metrics.observe_rules(decision.results)
    if outcome.exception is not None:
        exc = outcome.exception
        log.error("evaluation failed; answered with the endpoint's fail posture", exc_info=(type(exc), exc,
                  exc.__traceback__), extra=_fields(ctx, endpoint, outcome, seconds))
    elif log.isEnabledFor(logging.INFO):
        admission_line.info("admission", _fields(ctx, endpoint, outcome, seconds))


def _fields(ctx: WebhookContext, endpoint: Endpoint, outcome: Outcome, seconds: float) -> dict:
    req, decision = outcome.request, outcome.decision
    fields = {
        "event": "admission", "endpoint": endpoint.name, "uid": req.uid, "operation": req.operation,
        "namespace": req.namespace, "kind": req.kind, "object": req.name, "user": req.username,
        "tenant": decision.tenant if decision is not None else None, "decision": outcome.verdict,
        "rules": rule_ids(decision) if decision is not None else [],
        "warnings": len(outcome.review["response"].get("warnings", ())),
        "patch_ops": len(decision.patch) if decision is not None and endpoint.patches else 0,
        "dry_run": req.dry_run, "generation": ctx.policies.generation,
        "latency_ms": round(seconds * 1000, 3),
    }
    if req.subresource:
        fields["subresource"] = req.subresource
    if decision is not None and decision.skipped:
        fields["skipped"] = decision.skipped
    if outcome.exception is not None:
        fields["error"] = outcome.error
    if outcome.cached:
        fields["cached"] = True
    return fields


async def _answer(request: web.Request, endpoint: Endpoint) -> web.Response:
    ctx = request.app[CONTEXT]
    started = time.perf_counter()
    if request.content_type != JSON:
        shown = request.headers.get("Content-Type", "")
        return _bad(ctx, request, endpoint, 400, f"Content-Type must be {JSON} (got {shown!r})")
    length = request.content_length
    if length is not None and length > ctx.max_body:
        return _bad(ctx, request, endpoint, 413, f"body of {length} bytes exceeds the limit of {ctx.max_body}")
    peercert = request.transport.get_extra_info("peercert") if request.transport is not None else None
    refusal = ctx.callers.refusal(peercert)
    if refusal is not None:
        return _bad(ctx, request, endpoint, 403, refusal)
    if not ctx.policies.loaded:  # policies from the cluster, not read yet: the webhook's failurePolicy decides
        return _bad(ctx, request, endpoint, 503, "policies not loaded yet")
    try:
        if request.content.is_eof():  # the whole body came with the head (the usual case): no timer needed
            body = await request.read()
        else:
            async with asyncio.timeout(ctx.body_timeout):
                body = await request.read()
    except TimeoutError:
        response = _bad(ctx, request, endpoint, 408, f"body not received within {ctx.body_timeout:g} s")
        response.force_close()
        return response
    except web.HTTPRequestEntityTooLarge:
        return _bad(ctx, request, endpoint, 413, f"body exceeds the limit of {ctx.max_body} bytes")
    except (ConnectionError, ClientError, HttpProcessingError) as exc:  # gone mid-body: nobody to answer
        return _bad(ctx, request, endpoint, 400, f"body not received ({type(exc).__name__})")
    if len(body) > ctx.offload_bytes:
        # a large review is decoded and judged in a thread, at most two at a time: small reviews keep
        # being answered on the event loop meanwhile instead of queueing behind it
        async with ctx.large_reviews:
            result = await asyncio.to_thread(_decode_and_answer, ctx, endpoint, body)
    else:
        result = _decode_and_answer(ctx, endpoint, body)
    if isinstance(result, tuple):
        return _bad(ctx, request, endpoint, *result)
    outcome = result
    response = web.Response(body=orjson.dumps(outcome.review), content_type=JSON)
    try:
        _record(ctx, endpoint, outcome, time.perf_counter() - started)
    except Exception:  # observability must not cost the answer
        log.exception("recording the admission failed")
    return response


def _decode_and_answer(ctx: WebhookContext, endpoint: Endpoint, body: bytes) -> Outcome | tuple[int, str]:
    """The Outcome of one review body, or (HTTP status, reason) when it is not a valid one."""
    try:
        review = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return 400, f"body is not valid JSON: {exc}"
    try:
        return answer(endpoint, review, ctx.policies.current, ctx.view, today=ctx.today(), consume=True,
                      timer=time.perf_counter, record=ctx.callers.may_record, limits=ctx.limits, cache=ctx.answers)
    except ReviewError as exc:
        return 400, f"not a valid AdmissionReview: {exc}"


def _admission_handler(endpoint: Endpoint):
    async def handler(request: web.Request) -> web.Response:
        ctx = request.app[CONTEXT]
        ctx.request_started()
        try:
            response = await _answer(request, endpoint)
        finally:
            ctx.request_finished()
        if ctx.draining:
            response.force_close()
        return response

    handler.__name__ = f"{endpoint.name}_handler"
    return handler


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    ready, reason = ctx.readiness()
    response = web.Response(status=200 if ready else 503, text=reason + "\n")
    if ctx.draining:
        response.force_close()
    return response


async def metrics_page(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    ctx.metrics.observe_view(ctx.view.health())
    ctx.metrics.in_flight.set(ctx.in_flight)
    return web.Response(body=ctx.metrics.render(), headers={"Content-Type": ctx.metrics.content_type})


def create_app(ctx: WebhookContext) -> web.Application:
    """The application for ``ctx`` (the body limit is enforced by the handlers and by aiohttp)."""
    app = web.Application(client_max_size=ctx.max_body)
    app[CONTEXT] = ctx
    app.router.add_post("/mutate", _admission_handler(MUTATE))
    app.router.add_post("/validate", _admission_handler(VALIDATE))
    app.router.add_get("/healthz", healthz, allow_head=True)
    app.router.add_get("/readyz", readyz, allow_head=True)
    app.router.add_get("/metrics", metrics_page)
    return app
