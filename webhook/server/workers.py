"""`--workers N`: N server processes sharing one port, and the parent that looks after them.

Each worker is a fresh interpreter (multiprocessing *spawn*: no event loop, lock or
thread state inherited) running :func:`webhook.server.runner.main_for_worker`: its own
event loop (uvloop when installed), policy store, certificate reloader and cluster view,
listening on the same port with ``SO_REUSEPORT``; the kernel spreads new connections
over the workers. Policies and certificates are reloaded by every worker on its own
(within one ``--reload-interval`` of each other; ``tenantguard_policy_generation_info``
shows each worker's generation).

The parent:

- creates a fresh Prometheus multiprocess directory (``PROMETHEUS_MULTIPROC_DIR``, under
  ``$TMPDIR``) before the workers start, so any worker's ``/metrics`` reports all of them,
  and removes it at exit;
- with a watched cluster view, creates the directory of the reservation ledger the workers
  share (``webhook.views.ledger.FileLedger``: a burst of creations spread over N workers
  is judged as one worker would judge it, so a tenant's quota is not spent N times), and
  removes it at exit;
- forwards SIGTERM/SIGINT to every worker (each drains as a single process does) and waits
  for them; a worker still running ``shutdown_delay + grace_period + 5`` seconds later is killed;
- restarts a worker that dies on its own (backing off up to 30 s); if one exits with
  code 2 (policies or settings refused), stops the others and exits 2;
- is watched back: a worker whose parent disappears (SIGKILL) drains and exits.

The default is one worker (no parent process at all): right for a container with 1-2
CPUs; a second process pays off only with a CPU of its own. Add workers together with CPU
requests; one worker answers a small pod review in well under a millisecond.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import multiprocessing.queues
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from types import FrameType

from webhook.server.runner import MULTIPROC_ENV, main_for_worker
from webhook.server.settings import ServerSettings

log = logging.getLogger("tenantguard.workers")

MAX_BACKOFF = 30.0
KILL_MARGIN = 5.0  # seconds past shutdown_delay + grace_period before a stopping worker is killed


def supervise(settings: ServerSettings, on_started: Callable[[], None] | None = None) -> int:
    """Run ``settings.workers`` worker processes until SIGTERM/SIGINT; the exit code of `serve`."""
    return Supervisor(settings, on_started).run()


class _Worker:
    def __init__(self, index: int, process: multiprocessing.process.BaseProcess):
        self.index = index
        self.process = process
        self.started = time.monotonic()

    @property
    def running(self) -> bool:
        return self.process.exitcode is None


class Supervisor:
    """The parent of the workers: starts, restarts, stops and kills them (see the module docstring)."""

    def __init__(self, settings: ServerSettings, on_started: Callable[[], None] | None = None):
        self.settings = settings
        self.on_started = on_started
        self.code = 0
        self._ctx = multiprocessing.get_context("spawn")
        self._workers: dict[int, _Worker] = {}
        self._failures: dict[int, int] = {}  # deaths in a row, each within 60 s of its start
        self._restart_at: dict[int, float] = {}
        self._listening: set[int] = set()
        self._announced = False
        self._stopping = False
        self._kill_at = 0.0
        self._ledger_dir: str | None = None
        self._metrics_dir = ""

    def run(self) -> int:
        """Start the workers and look after them until they have all stopped; the exit code."""
        with self._shared_dirs(), self._queue() as ready, self._signals():
            try:
                for index in range(self.settings.workers):
                    self.start_worker(index, ready)
                while self._workers or (self._restart_at and not self._stopping):
                    self._step(ready)
            finally:
                self._kill_all()
        return self.code

    def _step(self, ready: multiprocessing.queues.Queue[int]) -> None:
        self._collect_ready(ready)
        self._wait()
        now = time.monotonic()
        self.reap(now)
        if not self._stopping:
            self.restart_due(now, ready)
        elif now > self._kill_at:
            self._kill_overdue()

    def start_worker(self, index: int, ready: multiprocessing.queues.Queue[int]) -> None:
        worker_settings = replace(self.settings, worker_index=index, parent_pid=os.getpid(),
                                  ledger_dir=self._ledger_dir)
        process = self._ctx.Process(target=main_for_worker, args=(worker_settings, ready),
                                    name=f"tenantguard-worker-{index}")
        process.start()
        self._workers[index] = _Worker(index, process)

    def stop_all(self, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` to every running worker; the first call starts the countdown to killing them."""
        if not self._stopping:
            self._stopping = True
            self._kill_at = time.monotonic() + self.settings.shutdown_delay + self.settings.grace_period + KILL_MARGIN
        for worker in self._workers.values():
            if worker.process.pid is not None and worker.running:
                try:
                    os.kill(worker.process.pid, sig)
                except ProcessLookupError:
                    pass

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("signal received; stopping the workers", extra={"event": "signal", "signal": signum})
        self.stop_all(signal.SIGTERM)

    def reap(self, now: float) -> None:
        """Forget the workers that exited; schedule their restart, or stop everything on exit code 2."""
        for index, worker in list(self._workers.items()):
            if not worker.running:
                del self._workers[index]
                _mark_dead(worker.process.pid, self._metrics_dir)
                if not self._stopping:
                    self._exited(worker, now)

    def _exited(self, worker: _Worker, now: float) -> None:
        code = worker.process.exitcode
        if code == 2:
            log.error("worker refused to start (bad policies or settings); stopping",
                      extra={"event": "worker_exit", "worker": worker.index, "exit_code": code})
            self.code = 2
            self.stop_all()
            return
        deaths = self._failures.get(worker.index, 0) + 1 if now - worker.started < 60 else 1
        self._failures[worker.index] = deaths
        delay = min(MAX_BACKOFF, 0.5 * 2 ** (deaths - 1))
        log.error("worker died; restarting", extra={"event": "worker_exit", "worker": worker.index,
                                                    "exit_code": code, "restart_in": delay})
        self._restart_at[worker.index] = now + delay

    def restart_due(self, now: float, ready: multiprocessing.queues.Queue[int]) -> None:
        for index, when in list(self._restart_at.items()):
            if now >= when:
                del self._restart_at[index]
                self.start_worker(index, ready)

    def _collect_ready(self, ready: multiprocessing.queues.Queue[int]) -> None:
        """Note the workers that listen; the first time all of them do, call ``on_started``."""
        while not ready.empty():
            self._listening.add(ready.get())
        if not self._announced and len(self._listening) >= self.settings.workers:
            self._announced = True
            log.info("all workers listening", extra={"event": "workers_ready", "workers": self.settings.workers})
            if self.on_started is not None:
                self.on_started()

    def _wait(self) -> None:
        """Until a worker exits, or briefly (more briefly while waiting for the workers to listen)."""
        timeout = 0.5 if self._announced else 0.05
        sentinels = [w.process.sentinel for w in self._workers.values()]
        if sentinels:
            multiprocessing.connection.wait(sentinels, timeout=timeout)
        else:
            time.sleep(timeout)

    def _kill_overdue(self) -> None:
        for worker in self._workers.values():
            if worker.running:
                log.error("worker did not stop in time; killing it", extra={"event": "worker_kill",
                                                                           "worker": worker.index})
                worker.process.kill()
        self._kill_at = float("inf")

    def _kill_all(self) -> None:
        for worker in self._workers.values():
            if worker.running:
                worker.process.kill()
                worker.process.join(5)

    @contextmanager
    def _shared_dirs(self) -> Iterator[None]:
        """The metrics directory (exported to the workers) and the ledger's; both removed at exit."""
        self._metrics_dir = tempfile.mkdtemp(prefix="tenantguard-metrics-")
        if self.settings.watches_cluster:
            self._ledger_dir = tempfile.mkdtemp(prefix="tenantguard-ledger-")
        previous = os.environ.get(MULTIPROC_ENV)
        os.environ[MULTIPROC_ENV] = self._metrics_dir  # read by prometheus_client when a worker imports it
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop(MULTIPROC_ENV, None)
            else:
                os.environ[MULTIPROC_ENV] = previous
            shutil.rmtree(self._metrics_dir, ignore_errors=True)
            if self._ledger_dir is not None:
                shutil.rmtree(self._ledger_dir, ignore_errors=True)

    @contextmanager
    def _queue(self) -> Iterator[multiprocessing.queues.Queue[int]]:
        """Where each worker puts its index once it listens."""
        ready: multiprocessing.queues.Queue[int] = self._ctx.Queue()
        try:
            yield ready
        finally:
            ready.close()

    @contextmanager
    def _signals(self) -> Iterator[None]:
        previous = {s: signal.signal(s, self.on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def _mark_dead(pid: int | None, metrics_dir: str) -> None:
    if pid is None:
        return
    from prometheus_client import multiprocess

    try:
        multiprocess.mark_process_dead(pid, metrics_dir)
    except OSError:
        pass
