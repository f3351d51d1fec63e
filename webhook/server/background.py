"""One background task of the server: started once, cancelled and awaited on stop.

A write to the API server runs in a thread (the client blocks), and cancelling the task
that awaits it does not stop the thread: :meth:`BackgroundLoop.in_thread` keeps each such
call in flight apart, and :meth:`BackgroundLoop.stop` waits for them, so nothing this
process wrote lands after it stopped (and released the Lease to another replica)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
IN_FLIGHT_GRACE = 10.0  # seconds stop() waits for calls in flight (they carry their own request timeouts)


async def cancel(task: asyncio.Task | None) -> None:
    """Cancel ``task`` (if any) and wait until it has finished."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class BackgroundLoop:
    """A loop the server runs beside the admissions (``_loop``); ``start`` is idempotent, ``stop`` cancels it."""

    task_name = "tenantguard-background"
    _task: asyncio.Task | None = None
    _in_flight: set[asyncio.Future] | None = None

    def _loop(self) -> Coroutine[Any, Any, None]:
        raise NotImplementedError

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=self.task_name)

    async def in_thread(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``call(*args, **kwargs)`` in a thread, awaited; :meth:`stop` waits for it even when the loop is
        cancelled."""
        if self._in_flight is None:
            self._in_flight = set()
        future = asyncio.ensure_future(asyncio.to_thread(call, *args, **kwargs))
        self._in_flight.add(future)
        future.add_done_callback(self._in_flight.discard)
        return await asyncio.shield(future)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel(task)
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=IN_FLIGHT_GRACE)
