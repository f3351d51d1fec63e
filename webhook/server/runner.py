"""One server process: :class:`WebhookServer` (start, drain, stop) and :func:`run` (its main).

Lifecycle of a process::

    start     load policies (refuse to start on a bad set: exit 2), load the certificate,
              start the cluster view, listen (HTTPS only); /readyz turns 200 once the view
              is synced. A watcher polls the policy and certificate files every
              ``reload_interval`` seconds and keeps the synced gauge current.
    SIGTERM   drain: /readyz answers 503 at once and every answer carries
    (SIGINT)  ``Connection: close``. After ``shutdown_delay`` seconds (0 by default: the
              chart's preStop sleep already took the pod out of the Service) the port is
              closed; requests in flight get up to ``grace_period`` seconds to finish (a
              body still arriving included) and, once none has started for QUIET_PERIOD
              (requests racing the port's closing), idle keep-alive connections are closed
              (what aiohttp still holds, e.g. an answer being written, gets CLEANUP_TIMEOUT
              more), the cluster view stops and the process exits 0.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import ssl
import sys
from collections.abc import Callable
from typing import Any, Self

from aiohttp import web

from webhook.core.errors import TenantguardError
from webhook.server.app import WebhookContext, create_app
from webhook.server.errors import start_error
from webhook.views import ClusterView, open_view
from webhook.views.files import StaticClusterView
from webhook.server.metrics import Metrics
from webhook.server.policy_store import PolicyStore
from webhook.server.settings import ServerSettings
from webhook.server.tls import CertReloader

log = logging.getLogger("tenantguard.server")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# After the grace period (or once nothing is in flight), what aiohttp still counts as busy
# (an answer being written, a request whose headers just arrived) gets this long.
CLEANUP_TIMEOUT = 2.0
# Connections stay open this long after the last request in flight ended, for requests on
# connections accepted just before the port closed (see WebhookServer._quiesce).
QUIET_PERIOD = 0.25


class _NotOpened(StaticClusterView):
    """Stands for the view until start() opens it: not ready."""

    synced = False


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
                                      max_body=settings.max_body)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self.port_closed = asyncio.Event()  # set once the drain stopped listening
        self._watcher: asyncio.Task | None = None
        self._synced_log: asyncio.Task | None = None
        self._drained: asyncio.Event | None = None
        self._draining: asyncio.Task | None = None

    @property
    def port(self) -> int:
        assert self._port is not None, "not started"
        return self._port

    @property
    def ready(self) -> bool:
        return self.context.readiness()[0]

    async def start(self) -> None:
        """Load, listen, watch. Raises PolicyError (bad policies) or StartError (port, certificate) when it cannot."""
        if not self.policies.loaded:
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
        runner = web.AppRunner(create_app(self.context), handle_signals=False, access_log=None,
                               shutdown_timeout=CLEANUP_TIMEOUT)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.host, self.settings.port, ssl_context=ssl_context,
                           reuse_port=self.settings.workers > 1 or None, backlog=1024)
        try:
            await site.start()
        except BaseException as exc:
            await runner.cleanup()
            await self.view.stop()
            if isinstance(exc, OSError):
                raise start_error(exc) from None
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        self._drained = asyncio.Event()
        self._watcher = asyncio.create_task(self._watch(), name="tenantguard-watch")
        self._synced_log = asyncio.create_task(self._log_synced(self.view), name="tenantguard-synced")
        log.info("serving", extra={"event": "start", "host": self.settings.host, "port": self.port,
                                   "generation": self.policies.generation, "pid": os.getpid(),
                                   "worker": self.settings.worker_index, "client_ca": bool(self.settings.client_ca)})

    async def _watch(self) -> None:
        interval = self.settings.reload_interval
        while True:
            await asyncio.sleep(interval)
            for step in (self.policies.reload_if_changed, self._cert_step, self._synced_step, self._parent_step):
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

    def _cert_step(self) -> None:
        self.certs.reload_if_changed()

    def _synced_step(self) -> None:
        if self.view is not None:
            self.metrics.observe_view(self.view.health())

    def _parent_step(self) -> None:
        parent = self.settings.parent_pid
        if parent is not None and os.getppid() != parent and self._draining is None:
            log.error("the worker supervisor is gone; draining", extra={"event": "orphaned"})
            self.drain()

    def drain(self) -> asyncio.Task:
        """Begin draining (idempotent); the returned task finishes when the server has stopped."""
        if self._draining is None:
            self.context.draining = True
            log.info("draining: not ready, closing keep-alive connections, finishing in-flight requests",
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
        if self.view is not None:
            await self.view.stop()
        log.info("stopped", extra={"event": "stop"})
        if self._drained is not None:
            self._drained.set()

    async def _finish_in_flight(self, runner: web.AppRunner) -> None:
        # aiohttp's own graceful shutdown closes every connection first and then drops what
        # arrives on them, so a request whose body is still arriving could never finish.
        # Hence: stop listening, let the requests in flight complete (their answers carry
        # Connection: close), and only then let aiohttp close the now idle connections.
        for site in list(runner.sites):
            await site.stop()
        self.port_closed.set()
        try:
            await asyncio.wait_for(self._quiesce(), self.settings.grace_period)
        except TimeoutError:
            log.error("grace period over; cutting the requests still in flight",
                      extra={"event": "drain_timeout", "in_flight": self.context.in_flight})
        await runner.cleanup()  # closes idle connections; waits at most CLEANUP_TIMEOUT for stragglers

    async def _quiesce(self) -> None:
        """Until nothing is in flight and no request started for QUIET_PERIOD.

        A client that connected just before the port closed sends its request right after
        the handshake; closing its connection as idle in that instant would lose the request.
        """
        ctx = self.context
        while True:
            await ctx.wait_in_flight(lambda n: n == 0)
            try:
                await asyncio.wait_for(ctx.wait_in_flight(lambda n: n > 0), QUIET_PERIOD)
            except TimeoutError:
                return

    async def wait_stopped(self) -> None:
        assert self._drained is not None, "not started"
        await self._drained.wait()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.drain()


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
