"""One server process: :class:`WebhookServer` (start, drain, stop) and :func:`run` (its main).

Lifecycle of a process::

    start     load policies (refuse to start on a bad set: exit 2), load the certificate,
              start the cluster view, listen (HTTPS only); /readyz turns 200 once the view
              is synced. A watcher polls the policy and certificate files every
              ``reload_interval`` seconds and keeps the synced gauge current.
    SIGTERM   drain: /readyz answers 503 at once and every answer carries
    (SIGINT)  ``Connection: close``. After ``shutdown_delay`` seconds (0 by default: the
              chart's preStop sleep already took the pod out of the Service) the port is
              closed. Then the drain waits, for up to ``grace_period`` seconds, until every
              connection has been answered with ``Connection: close`` or has closed: a
              request in flight finishes (a body still arriving included), and a client
              that has not sent its request yet (connected before the port closed, its TLS
              handshake done or not, or keeping its connection alive after an earlier
              answer) gets its answer whenever the request comes (see Connections).
              Then the connections are closed (what aiohttp still holds, e.g. an answer being
              written, gets CLEANUP_TIMEOUT more), the cluster view stops and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import ssl
import sys
import weakref
from collections.abc import Callable
from typing import Any, Self

from aiohttp import hdrs, web

from webhook.core.errors import TenantguardError
from webhook.server.app import WebhookContext, create_app
from webhook.server.errors import StartError, start_error
from webhook.server.metrics import Metrics
from webhook.server.policy_store import PolicyStore
from webhook.server.settings import ServerSettings
from webhook.server.tls import CertReloader
from webhook.views import ClusterView, open_view
from webhook.views.changes import Changes
from webhook.views.files import StaticClusterView

log = logging.getLogger("tenantguard.server")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Once every connection has been answered (or the grace period is over), what aiohttp still
# counts as busy (an answer being written, a request whose headers just arrived) gets this long.
CLEANUP_TIMEOUT = 2.0


class _NotOpened(StaticClusterView):
    """Stands for the view until start() opens it: not ready."""

    synced = False


class Connections:
    """The server's connections: TLS handshakes in progress, and open connections that may still bring a request.

    An open connection may bring one until it has been answered with ``Connection: close``
    (every answer is, while draining) or has closed: one just accepted, one whose request is
    still arriving, one kept alive after an earlier answer. A handshake in progress becomes
    such a connection, or fails. The drain waits for none of either to be left.
    """

    def __init__(self, *, header_timeout: float | None = None, max_connections: int | None = None) -> None:
        self.handshakes = 0
        self.header_timeout = header_timeout  # a connection's first request head must be complete by then
        self.max_connections = max_connections
        self.refused = 0  # connections closed because max_connections were open
        self.timed_out = 0  # connections closed because their first request head did not come in time
        self._open: set[web.RequestHandler] = set()
        self._closing: set[web.RequestHandler] = set()  # answered with Connection: close
        self._head_timers: dict[web.RequestHandler, asyncio.TimerHandle] = {}
        self._changes = Changes()

    @property
    def full(self) -> bool:
        """As many connections (and handshakes) as allowed are open: the next one is closed after its handshake."""
        return self.max_connections is not None and self.open + self.handshakes >= self.max_connections

    @property
    def open(self) -> int:
        return len(self._open)

    @property
    def awaited(self) -> int:
        """Open connections that may still bring a request."""
        return len(self._open) - len(self._closing)

    @property
    def settled(self) -> bool:
        """No request may come any more: no connection awaited, no handshake in progress."""
        return self.awaited == 0 and self.handshakes == 0

    def handshake_started(self) -> Callable[[], None]:
        """Count a handshake in progress; the function returned ends it (its first call only, from any thread)."""
        loop = asyncio.get_running_loop()
        self.handshakes += 1
        self._changed()
        over = False

        def end() -> None:
            nonlocal over
            if not over:
                over = True
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                    loop.call_soon_threadsafe(self._handshake_over)
        return end

    def _handshake_over(self) -> None:
        self.handshakes -= 1
        self._changed()

    def opened(self, handler: web.RequestHandler) -> None:
        self._open.add(handler)
        if self.header_timeout is not None:
            self._head_timers[handler] = asyncio.get_running_loop().call_later(
                self.header_timeout, self._head_overdue, handler)
        self._changed()

    def _head_overdue(self, handler: web.RequestHandler) -> None:
        self._head_timers.pop(handler, None)
        # aiohttp counts a request when its head is parsed: one has come, the deadline was met (no
        # per-request hook needed on the hot path)
        if getattr(handler, "_request_count", 0) > 0:
            return
        if handler in self._open:
            self.timed_out += 1
            log.warning("connection closed: no complete request within the header timeout",
                        extra={"event": "http_error", "error": "HeaderTimeout", "remote": _peer(handler)})
            handler.force_close()
            transport = handler.transport
            if transport is not None:
                transport.close()

    def closed(self, handler: web.RequestHandler) -> None:
        self._open.discard(handler)
        self._closing.discard(handler)
        timer = self._head_timers.pop(handler, None)
        if timer is not None:
            timer.cancel()
        self._changed()

    def closing(self, handler: web.RequestHandler) -> None:
        """``handler`` was answered with ``Connection: close``: it brings no further request."""
        if handler in self._open:
            self._closing.add(handler)
            self._changed()

    def _changed(self) -> None:
        self._changes.notify()

    async def wait(self, predicate: Callable[[Connections], bool]) -> None:
        """Until ``predicate(self)`` holds (the drain waits for ``settled``)."""
        await self._changes.wait(lambda: predicate(self))


def _peer(handler: web.RequestHandler) -> str | None:
    transport = handler.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    return str(peer[0]) if isinstance(peer, tuple) and peer else None


class _Refused(asyncio.Protocol):
    """A connection over ``max_connections``: closed as soon as it is made."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class _Handshake(asyncio.Protocol):
    """An accepted connection until its TLS handshake is done; then its transport goes to the handler.

    asyncio tells a protocol nothing of a handshake that fails, but drops it: this small object,
    in no reference cycle, is then freed (at once with uvloop; by the next garbage collection,
    in whatever thread, with asyncio's own loop), which ends the handshake in :class:`Connections`.
    """

    def __init__(self, handler: web.RequestHandler, connections: Connections) -> None:
        self._handler = handler
        self._end = connections.handshake_started()
        weakref.finalize(self, self._end).atexit = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.set_protocol(self._handler)
        self._handler.connection_made(transport)
        self._end()


class _TrackedServer(web.Server):
    """aiohttp's server, reporting each connection to :class:`Connections` from its handshake to its close."""

    def __init__(self, connections: Connections, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tracked = connections

    def __call__(self) -> asyncio.Protocol:  # type: ignore[override]  # the listening socket's protocol factory
        if self.tracked.full:
            self.tracked.refused += 1
            return _Refused()
        return _Handshake(super().__call__(), self.tracked)

    def connection_made(self, handler: web.RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        self.tracked.opened(handler)

    def connection_lost(self, handler: web.RequestHandler, exc: BaseException | None = None) -> None:
        super().connection_lost(handler, exc)
        self.tracked.closed(handler)


class _Runner(web.AppRunner):
    """aiohttp's runner, serving through a :class:`_TrackedServer`."""

    def __init__(self, app: web.Application, connections: Connections, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.connections = connections

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()  # the application started up and frozen, and its server
        return _TrackedServer(self.connections, made.request_handler, request_factory=made.request_factory,
                              handler_cancellation=made.handler_cancellation, **self._kwargs)


class _Site(web.TCPSite):
    """aiohttp's TCP site, with a bound on the TLS handshake (asyncio's default is 60 s)."""

    def __init__(self, *args: Any, handshake_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handshake_timeout = handshake_timeout

    async def start(self) -> None:
        self._runner._reg_site(self)  # what BaseSite.start does, then TCPSite's create_server with the bound
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            server, self._host, self._port, ssl=self._ssl_context, backlog=self._backlog,
            reuse_address=self._reuse_address, reuse_port=self._reuse_port,
            ssl_handshake_timeout=self._handshake_timeout if self._ssl_context is not None else None)
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port


class WebhookServer:
    """The webhook in this process, as an async context manager (``async with WebhookServer(s) as srv``)."""

    def __init__(self, settings: ServerSettings, *, policies: PolicyStore | None = None,
                 view: ClusterView | None = None, certs: CertReloader | None = None,
                 metrics: Metrics | None = None):
        self.settings = settings
        self.metrics = metrics or Metrics(multiprocess_dir=os.environ.get(MULTIPROC_ENV))
        self.policies = policies or PolicyStore(settings.policies, listener=self.metrics)
        self.certs = certs or CertReloader(settings.cert, settings.key, client_ca=settings.client_ca,
                                           listener=self.metrics)
        self.view = view  # opened in start() unless given
        self.context = WebhookContext(self.policies, view if view is not None else _NotOpened(), self.metrics,
                                      max_body=settings.max_body, callers=settings.callers, limits=settings.limits,
                                      body_timeout=settings.body_timeout)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self.connections = Connections(header_timeout=settings.header_timeout,
                                       max_connections=settings.max_connections)
        self.port_closed = asyncio.Event()  # set once the drain stopped listening
        self._watcher: asyncio.Task | None = None
        self._synced_log: asyncio.Task | None = None
        self._drained: asyncio.Event | None = None
        self._draining: asyncio.Task | None = None
        self.duties: Any = None  # ClusterDuties: policies from the cluster, Lease, status, reports

    @property
    def port(self) -> int:
        assert self._port is not None, "not started"
        return self._port

    @property
    def ready(self) -> bool:
        return self.context.readiness()[0]

    async def start(self) -> None:
        """Load, listen, watch. Raises PolicyError (bad policies) or StartError (port, certificate) when it cannot."""
        if not self.policies.loaded and not self.settings.policies_from_cluster:
            self.policies.load()
        try:
            ssl_context = self.certs.load()
        except (OSError, ssl.SSLError) as exc:
            raise start_error(exc) from None
        if self.view is None:
            self.view = self.context.view = await open_view(
                cluster_state=self.settings.cluster_state, kubeconfig=self.settings.kubeconfig,
                in_cluster=self.settings.in_cluster, ledger_dir=self.settings.ledger_dir)
        await self.view.start()
        self.metrics.observe_view(self.view.health())
        self._start_duties()
        app = create_app(self.context)
        app.on_response_prepare.append(self._on_response_prepare)
        runner = _Runner(app, self.connections, handle_signals=False, access_log=None,
                         shutdown_timeout=CLEANUP_TIMEOUT, keepalive_timeout=self.settings.idle_timeout)
        await runner.setup()
        site = self._site(runner, ssl_context, self.settings.port)
        try:
            await site.start()
        except BaseException as exc:
            await runner.cleanup()
            if self.duties is not None:
                await self.duties.stop()
            await self.view.stop()
            if isinstance(exc, OSError):
                raise start_error(exc) from None
            raise
        self._runner = runner
        self._site_now = site
        self._port = int(runner.addresses[0][1])
        self._drained = asyncio.Event()
        self._watcher = asyncio.create_task(self._watch(), name="tenantguard-watch")
        self._synced_log = asyncio.create_task(self._log_synced(self.view), name="tenantguard-synced")
        log.info("serving", extra={"event": "start", "host": self.settings.host, "port": self.port,
                                   "generation": self.policies.generation, "pid": os.getpid(),
                                   "worker": self.settings.worker_index, "client_ca": bool(self.settings.client_ca),
                                   "loop": _loop_name()})

    def _start_duties(self) -> None:
        """Policies from the cluster, and the Lease with what the elected process writes (webhook.server.cluster_duties)."""
        settings = self.settings
        if not (settings.policies_from_cluster or settings.elects_leader):
            return
        api = getattr(self.view, "api", None)
        if api is None:
            raise StartError("--policies-from cluster and --background-audit-interval need the cluster: "
                             "--kubeconfig or --in-cluster")
        from webhook.server.cluster_duties import ClusterDuties
        from webhook.views.policy_objects import WatchedPolicies

        watched = None
        if settings.policies_from_cluster:
            watched = WatchedPolicies(api)
            self.policies.source = watched.source
        self.duties = ClusterDuties(settings, api, watched, self.metrics)
        self.duties.start(self.policies)

    async def _policy_step(self) -> None:
        if self.settings.policies_from_cluster and not (self.duties is not None and self.duties.listed):
            return  # the first load waits for both kinds to be listed (ClusterDuties); a failed one is retried here
        result = await self.policies.reload_if_changed()
        if result is not None and self.duties is not None:
            self.duties.reloaded()

    async def _watch(self) -> None:
        interval = self.settings.reload_interval
        while True:
            await asyncio.sleep(interval)
            for step in (self._policy_step, self._cert_step, self._synced_step, self._parent_step):
                try:
                    result = step()
                    if asyncio.iscoroutine(result):
                        await result
                except asyncio.CancelledError:
                    raise
                except Exception:  # the watcher never dies
                    log.exception("watcher step failed", extra={"event": "watch"})

    async def _log_synced(self, view: ClusterView) -> None:
        """One log line when the cluster view has listed every kind (readiness turns on then).

        Then what start-up allocated (modules, the policy set, the view's first tables) is moved out
        of the cycle collector's sight (``gc.freeze``): it lives as long as the process, and a full
        collection (which a relist of many pods triggers) would otherwise scan it all again, pausing
        every admission for tens of milliseconds (bench/relist_stall.py).
        """
        wait = getattr(view, "wait_synced", None)
        if callable(wait):
            await wait()
        gc.collect()
        gc.freeze()
        log.info("cluster view synced", extra={"event": "view_synced", "pid": os.getpid(),
                                               "worker": self.settings.worker_index})

    def _site(self, runner: web.AppRunner, ssl_context: ssl.SSLContext, port: int) -> web.TCPSite:
        # SO_REUSEPORT always: the workers share the port, and a certificate rotation opens the new
        # listening socket on it before closing the old one
        return _Site(runner, self.settings.host, port, ssl_context=ssl_context, reuse_port=True, backlog=1024,
                     handshake_timeout=self.settings.header_timeout)

    async def _cert_step(self) -> None:
        await self.reload_certificates()

    async def reload_certificates(self) -> bool | None:
        """Reload the serving pair and client CA when their files changed, and listen with them: None when
        unchanged, False when refused (the last good pair keeps serving), True when now served."""
        changed = self.certs.reload_if_changed()
        if changed and self._runner is not None and self.certs.context is not None:
            await self._swap_site(self.certs.context)
        return changed

    async def _swap_site(self, ssl_context: ssl.SSLContext) -> None:
        """Listen with a new SSLContext: the new socket opens on the port, then the old one closes (its
        established connections go on). A context cannot be changed in place for every rotation: OpenSSL
        keeps one certificate per key type in it."""
        assert self._runner is not None
        if self.context.draining:
            return
        fresh = self._site(self._runner, ssl_context, self.port)
        await fresh.start()
        old, self._site_now = self._site_now, fresh
        await old.stop()
        log.info("listening with the reloaded certificate", extra={"event": "tls_swap",
                                                                  "generation": self.certs.generation})

    def _synced_step(self) -> None:
        if self.view is not None:
            self.metrics.observe_view(self.view.health())
        self.metrics.in_flight.set(self.context.in_flight)

    def _parent_step(self) -> None:
        parent = self.settings.parent_pid
        if parent is not None and os.getppid() != parent and self._draining is None:
            log.error("the worker supervisor is gone; draining", extra={"event": "orphaned"})
            self.drain()

    async def _on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """While draining, every answer closes its connection (the client reconnects to another replica)."""
        if self.context.draining:
            response.force_close()
            response.headers[hdrs.CONNECTION] = "close"  # the header is computed before this hook runs
            self.connections.closing(request.protocol)

    def drain(self) -> asyncio.Task:
        """Begin draining (idempotent); the returned task finishes when the server has stopped."""
        if self._draining is None:
            self.context.draining = True
            log.info("draining: not ready, every answer closes its connection",
                     extra={"event": "drain", "in_flight": self.context.in_flight,
                            "grace_period": self.settings.grace_period})
            self._draining = asyncio.create_task(self._stop(), name="tenantguard-drain")
        return self._draining

    async def _stop(self) -> None:
        if self.settings.shutdown_delay > 0:
            await asyncio.sleep(self.settings.shutdown_delay)
        for task in (self._watcher, self._synced_log):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        if self._runner is not None:
            await self._finish_in_flight(self._runner)
        if self.duties is not None:
            await self.duties.stop()
        if self.view is not None:
            await self.view.stop()
        log.info("stopped", extra={"event": "stop"})
        if self._drained is not None:
            self._drained.set()

    async def _finish_in_flight(self, runner: web.AppRunner) -> None:
        # aiohttp's own graceful shutdown closes every connection first and then drops what
        # arrives on them: a request whose body is still arriving, or one a client sends on
        # the connection it just opened or kept alive, would be lost. Hence: stop listening,
        # wait until every connection has been answered with Connection: close (or closed),
        # and only then let aiohttp close them.
        for site in list(runner.sites):
            await site.stop()
        self.port_closed.set()
        try:
            await asyncio.wait_for(self._settle(), self.settings.grace_period)
        except TimeoutError:
            in_flight = self.context.in_flight
            log.log(logging.ERROR if in_flight else logging.INFO,
                    "grace period over; closing the connections still open",
                    extra={"event": "drain_timeout", "in_flight": in_flight,
                           "connections": self.connections.awaited, "handshakes": self.connections.handshakes})
        await runner.cleanup()  # closes the connections; waits at most CLEANUP_TIMEOUT for stragglers

    async def _settle(self) -> None:
        """Until no connection may bring a request any more (see :class:`Connections`)."""
        connections = self.connections
        await connections.wait(lambda c: c.awaited == 0)
        if connections.handshakes:
            gc.collect()  # frees what failed handshakes left (asyncio's own loop): see _Handshake
        await connections.wait(lambda c: c.settled)

    async def wait_stopped(self) -> None:
        assert self._drained is not None, "not started"
        await self._drained.wait()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.drain()


def _loop_name() -> str:
    """``uvloop`` or ``asyncio``: the event loop serving (named in the start-up log line)."""
    module = type(asyncio.get_running_loop()).__module__
    return "uvloop" if module.startswith("uvloop") else "asyncio"


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


async def serve(settings: ServerSettings, on_started: Callable[[WebhookServer], None] | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then drain."""
    server = WebhookServer(settings)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        if on_started is not None:
            on_started(server)
        signalled = asyncio.create_task(stop.wait())
        stopped = asyncio.create_task(server.wait_stopped())
        await asyncio.wait({signalled, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if signalled.done():
            log.info("signal received", extra={"event": "signal"})
        for task in (signalled, stopped):
            task.cancel()


def run(settings: ServerSettings, on_started: Callable[[WebhookServer], None] | None = None) -> None:
    """Run one server process to completion (its own event loop; uvloop when installed)."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve(settings, on_started))


def preflight(settings: ServerSettings) -> None:
    """Refuse to start N workers on policies or a certificate none of them could load."""
    from webhook.policy.loader import load_policies

    if not settings.policies_from_cluster:
        load_policies(settings.policies)
    try:
        CertReloader(settings.cert, settings.key, client_ca=settings.client_ca).load()
    except (OSError, ssl.SSLError) as exc:
        raise start_error(exc) from None


def main_for_worker(settings: ServerSettings, ready: Any = None) -> None:
    """Entry point of a worker process started by webhook.server.workers (spawn).

    ``ready`` (a multiprocessing queue) receives the worker's index once it listens.
    """
    from webhook.server import logs

    logs.configure(settings.log_level)
    try:
        run(settings, on_started=None if ready is None else lambda server: ready.put(settings.worker_index))
    except TenantguardError as exc:  # report and exit like the single-process server
        for line in exc.lines():
            print(line, file=sys.stderr)
        sys.exit(exc.exit_code)
