"""One replica writes: leader election on a ``coordination.k8s.io/v1`` Lease.

Policy status and PolicyReports are written by one process of one replica, whichever
holds the Lease; the others serve admissions only (they all do that alike). The
algorithm is client-go's ``leaderelection`` (the one kube-controller-manager and
Kyverno use), with its defaults:

- every ``retry_period`` (2 s) a candidate reads the Lease. A Lease held by another
  identity is taken over only when it has not changed for ``lease_duration`` (15 s)
  **of our own clock**: the time the record was last seen to change, never the
  ``renewTime`` written in it, so clock skew between nodes cannot elect two leaders;
- the holder renews every ``retry_period``; when no renewal has succeeded for
  ``renew_deadline`` (10 s) it stops leading before the lease can run out for others;
- every write carries the Lease's ``resourceVersion``: of two candidates racing for an
  expired Lease, the API server lets one through and answers the other ``409 Conflict``;
- on a clean stop the holder releases the Lease (empty ``holderIdentity``), so another
  replica takes over at its next try instead of after ``lease_duration``.

The client calls are the official client's, run in a thread (they block).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("tenantguard.leader")


def default_identity() -> str:
    """``<pod name>_<pid>``: unique per process (several workers of one pod are candidates apiece)."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{os.getpid()}"


@dataclass(frozen=True, slots=True)
class LeaseSettings:
    namespace: str
    name: str = "tenantguard-leader"
    identity: str = field(default_factory=default_identity)
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


class LeaderElector:
    """Campaigns for the Lease until stopped; :attr:`leading` says whether this process holds it."""

    def __init__(self, api: k8s_client.ApiClient, settings: LeaseSettings, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._leases = k8s_client.CoordinationV1Api(api)
        self._clock = clock
        self._observed: tuple[Any, ...] | None = None  # the record last read
        self._observed_at = 0.0  # our clock when it last changed
        self._renewed_at = 0.0  # our clock at the last successful acquire or renew
        self._leading = asyncio.Event()
        self._following = asyncio.Event()
        self._following.set()
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._listeners: list[Callable[[], None]] = []
        self.transitions = 0  # times this process started leading

    def add_listener(self, listener: Callable[[], None]) -> None:
        """``listener()`` is called (on the event loop) whenever this process starts or stops leading."""
        self._listeners.append(listener)

    @property
    def leading(self) -> bool:
        return self._leading.is_set()

    @property
    def identity(self) -> str:
        return self.settings.identity

    async def wait_leading(self) -> None:
        await self._leading.wait()

    async def wait_following(self) -> None:
        await self._following.wait()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="tenantguard-leader-election")

    async def stop(self, release: bool = True) -> None:
        """Stop campaigning; release the Lease when held (another replica takes over at once)."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
        if release and self.leading:
            try:
                await asyncio.to_thread(self._release)
            except Exception as exc:  # noqa: BLE001 - it expires after lease_duration anyway
                log.warning("could not release the Lease: %s", exc, extra={"event": "leader_release"})
        self._set_leading(False)

    # --- the loop ------------------------------------------------------------------------------------
    async def _run(self) -> None:
        settings = self.settings
        while not self._stop.is_set():
            try:
                held = await asyncio.to_thread(self._try_acquire_or_renew)
            except Exception as exc:  # noqa: BLE001 - the API server is down or refuses: try again
                log.debug("lease %s: %s", settings.name, exc)
                held = False
            if held:
                self._renewed_at = self._clock()
                self._set_leading(True)
            elif self.leading and self._clock() - self._renewed_at >= settings.renew_deadline:
                self._set_leading(False)
            try:
                await asyncio.wait_for(self._stop.wait(), settings.retry_period)
            except TimeoutError:
                pass

    def _set_leading(self, leading: bool) -> None:
        if leading == self.leading:
            return
        if leading:
            self.transitions += 1
            self._leading.set()
            self._following.clear()
        else:
            self._leading.clear()
            self._following.set()
        log.info("%s the Lease %s/%s", "holding" if leading else "no longer holding", self.settings.namespace,
                 self.settings.name, extra={"event": "leader", "leading": leading, "identity": self.identity})
        for listener in self._listeners:
            listener()

    def _record(self, lease: Any) -> tuple[Any, ...]:
        spec = lease.spec or k8s_client.V1LeaseSpec()
        return (spec.holder_identity, spec.renew_time, spec.acquire_time, spec.lease_transitions,
                spec.lease_duration_seconds)

    def _try_acquire_or_renew(self) -> bool:
        s = self.settings
        now = datetime.now(UTC)
        try:
            lease = self._leases.read_namespaced_lease(s.name, s.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            body = k8s_client.V1Lease(
                metadata=k8s_client.V1ObjectMeta(name=s.name, namespace=s.namespace),
                spec=k8s_client.V1LeaseSpec(holder_identity=s.identity, lease_duration_seconds=int(s.lease_duration),
                                            acquire_time=now, renew_time=now, lease_transitions=0))
            try:
                self._leases.create_namespaced_lease(s.namespace, body)
            except ApiException as exc2:
                if exc2.status == 409:  # another candidate created it first
                    return False
                raise
            return True
        if lease.spec is None:
            lease.spec = k8s_client.V1LeaseSpec()
        record = self._record(lease)
        if record != self._observed:
            self._observed, self._observed_at = record, self._clock()
        spec = lease.spec
        holder = spec.holder_identity or ""
        mine = holder == s.identity
        duration = spec.lease_duration_seconds or s.lease_duration
        if holder and not mine and self._clock() - self._observed_at < duration:
            return False  # held, and renewed within its duration as we have seen it
        spec.holder_identity = s.identity
        spec.lease_duration_seconds = int(s.lease_duration)
        spec.renew_time = now
        if not mine:
            spec.acquire_time = now
            spec.lease_transitions = (spec.lease_transitions or 0) + 1
        try:
            updated = self._leases.replace_namespaced_lease(s.name, s.namespace, lease)
        except ApiException as exc:
            if exc.status == 409:  # someone else wrote it since we read it
                return False
            raise
        self._observed, self._observed_at = self._record(updated), self._clock()
        return True

    def _release(self) -> None:
        s = self.settings
        lease = self._leases.read_namespaced_lease(s.name, s.namespace)
        spec = lease.spec
        if spec is None or spec.holder_identity != s.identity:
            return
        spec.holder_identity = ""
        spec.lease_duration_seconds = 1
        spec.renew_time = datetime.now(UTC)
        self._leases.replace_namespaced_lease(s.name, s.namespace, lease)
        log.info("released the Lease %s/%s", s.namespace, s.name, extra={"event": "leader_release"})
