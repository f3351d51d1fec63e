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
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace

from webhook.server.runner import MULTIPROC_ENV, main_for_worker
from webhook.server.settings import ServerSettings

log = logging.getLogger("tenantguard.workers")

MAX_BACKOFF = 30.0


class _Worker:
    def __init__(self, index: int, process: multiprocessing.process.BaseProcess):
        self.index = index
        self.process = process
        self.started = time.monotonic()


def supervise(settings: ServerSettings, on_started: Callable[[], None] | None = None) -> int:
    """Run ``settings.workers`` worker processes until SIGTERM/SIGINT; the exit code of `serve`."""
    ctx = multiprocessing.get_context("spawn")
    metrics_dir = tempfile.mkdtemp(prefix="tenantguard-metrics-")
    ledger_dir = tempfile.mkdtemp(prefix="tenantguard-ledger-") if settings.watches_cluster else None
    previous_env = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = metrics_dir  # read by prometheus_client when a worker imports it
    workers: dict[int, _Worker] = {}
    failures: dict[int, int] = {}
    state = {"stopping": False, "deadline": 0.0, "code": 0}

    ready_queue = ctx.Queue()
    listening: set[int] = set()
    announced = False

    def start(index: int) -> None:
        worker_settings = replace(settings, worker_index=index, parent_pid=os.getpid(), ledger_dir=ledger_dir)
        process = ctx.Process(target=main_for_worker, args=(worker_settings, ready_queue),
                              name=f"tenantguard-worker-{index}")
        process.start()
        workers[index] = _Worker(index, process)

    def stop_all(sig: int = signal.SIGTERM) -> None:
        if not state["stopping"]:
            state["stopping"] = True
            state["deadline"] = time.monotonic() + settings.grace_period + settings.shutdown_delay + 5
        for w in workers.values():
            if w.process.pid is not None and w.process.exitcode is None:
                try:
                    os.kill(w.process.pid, sig)
                except ProcessLookupError:
                    pass

    def on_signal(signum: int, frame: object) -> None:
        log.info("signal received; stopping the workers", extra={"event": "signal", "signal": signum})
        stop_all(signal.SIGTERM)

    old_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    restart_at: dict[int, float] = {}
    try:
        for index in range(settings.workers):
            start(index)
        while workers or (restart_at and not state["stopping"]):
            while not ready_queue.empty():
                listening.add(ready_queue.get())
            if not announced and len(listening) >= settings.workers:
                announced = True
                log.info("all workers listening", extra={"event": "workers_ready", "workers": settings.workers})
                if on_started is not None:
                    on_started()
            sentinels = [w.process.sentinel for w in workers.values()]
            timeout = 0.5 if announced else 0.05
            if sentinels:
                multiprocessing.connection.wait(sentinels, timeout=timeout)
            else:
                time.sleep(timeout)
            now = time.monotonic()
            for index, w in list(workers.items()):
                if w.process.exitcode is None:
                    continue
                del workers[index]
                _mark_dead(w.process.pid, metrics_dir)
                code = w.process.exitcode
                if state["stopping"]:
                    continue
                if code == 2:
                    log.error("worker refused to start (bad policies or settings); stopping",
                              extra={"event": "worker_exit", "worker": index, "exit_code": code})
                    state["code"] = 2
                    stop_all()
                    continue
                failures[index] = failures.get(index, 0) + 1 if now - w.started < 60 else 1
                delay = min(MAX_BACKOFF, 0.5 * 2 ** (failures[index] - 1))
                log.error("worker died; restarting", extra={"event": "worker_exit", "worker": index,
                                                            "exit_code": code, "restart_in": delay})
                restart_at[index] = now + delay
            if not state["stopping"]:
                for index, when in list(restart_at.items()):
                    if now >= when:
                        del restart_at[index]
                        start(index)
            elif now > state["deadline"]:
                for w in workers.values():
                    if w.process.exitcode is None:
                        log.error("worker did not stop in time; killing it",
                                  extra={"event": "worker_kill", "worker": w.index})
                        w.process.kill()
                state["deadline"] = float("inf")
        return int(state["code"])
    finally:
        for s, h in old_handlers.items():
            signal.signal(s, h)
        for w in workers.values():
            if w.process.exitcode is None:
                w.process.kill()
                w.process.join(5)
        if previous_env is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous_env
        ready_queue.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)
        if ledger_dir is not None:
            shutil.rmtree(ledger_dir, ignore_errors=True)


def _mark_dead(pid: int | None, metrics_dir: str) -> None:
    if pid is None:
        return
    from prometheus_client import multiprocess

    try:
        multiprocess.mark_process_dead(pid, metrics_dir)
    except OSError:
        pass
