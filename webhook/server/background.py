"""One background task of the server: started once, cancelled and awaited on stop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any


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

    def _loop(self) -> Coroutine[Any, Any, None]:
        raise NotImplementedError

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=self.task_name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel(task)
