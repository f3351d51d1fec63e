"""Waiting for a condition that changes: the coroutines waiting are woken after each change.

One mechanism for every "until this holds" of the server and the views: the drain waiting
for requests and connections to finish, a view or the policy objects until synced, tests
until an event happened. Nothing waits on a clock: a waiter re-checks its predicate when
:meth:`Changes.notify` says something changed (from a thread: :meth:`Changes.notify_threadsafe`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Changes:
    __slots__ = ("_listeners", "_loop", "_waiters")

    def __init__(self) -> None:
        self._waiters: set[asyncio.Event] = set()  # non-empty only while someone waits: notify is cheap
        self._listeners: list[Callable[[], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def add_listener(self, listener: Callable[[], None]) -> None:
        """``listener()`` is called (on the event loop) after every change."""
        self._listeners.append(listener)

    def bind(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """The loop :meth:`notify_threadsafe` wakes (default: the running one)."""
        self._loop = loop or asyncio.get_running_loop()

    def notify(self) -> None:
        """Something changed (on the event loop): every waiter checks its predicate again."""
        for waiter in self._waiters:
            waiter.set()
        for listener in self._listeners:
            listener()

    def notify_threadsafe(self) -> None:
        """:meth:`notify` from another thread; nothing when no loop is bound or it has closed."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self.notify)
        except RuntimeError:  # the loop closed meanwhile
            pass

    async def wait(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        """Until ``predicate()`` holds, checked after every change; on timeout, whether it holds then."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        changed = asyncio.Event()
        self._waiters.add(changed)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    changed.clear()
                    if predicate():
                        return True
                    await changed.wait()
        except TimeoutError:
            return predicate()
        finally:
            self._waiters.discard(changed)
