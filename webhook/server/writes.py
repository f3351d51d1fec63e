"""A budget for what the elected replica writes to the API server (policy status, PolicyReports).

A token bucket: ``rate`` writes per second on average, at most ``burst`` at once. Every
write first takes a token, waiting for one when the bucket is empty, so however many
policies or namespaces change at once, the API server sees at most ``rate`` writes a
second from tenantguard. Writes are also made only when what would be written differs
from what is stored (the writers compare first): a quiet cluster costs no writes at all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class WriteBudget:
    rate: float = 5.0
    burst: int = 20
    clock: Callable[[], float] = time.monotonic
    tokens: float = field(init=False)
    _at: float = field(init=False)
    _lock: asyncio.Lock = field(init=False, default_factory=asyncio.Lock)
    writes: int = field(init=False, default=0)  # tokens taken so far

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("a write budget needs a positive rate and a burst of at least 1")
        self.tokens = float(self.burst)
        self._at = self.clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self._at) * self.rate)
        self._at = now

    async def take(self) -> None:
        """One write's token; waits (in order of arrival) while the bucket is empty."""
        async with self._lock:
            self._refill()
            if self.tokens < 1:
                await asyncio.sleep((1 - self.tokens) / self.rate)
                self._refill()
            self.tokens -= 1
            self.writes += 1
