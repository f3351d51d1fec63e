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
- each attempt is bounded: the client calls carry a request timeout and the attempt is
  abandoned when the renew deadline passes, and :attr:`LeaderElector.leading` turns false
  by itself at ``renewed + renew_deadline`` whatever a call in flight is doing, so a
  holder whose renewals hang (a black-holed connection) stops writing before another
  replica can take over;
- on a clean stop the holder releases the Lease (empty ``holderIdentity``), so another
  replica takes over at its next try instead of after ``lease_duration``.

Times are written as the API server's MicroTime wants them (six fraction digits, ``Z``).
The client calls are the official client's, run in a thread (they block).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from webhook.server.background import cancel

log = logging.getLogger("tenantguard.leader")
MERGE_PATCH = "application/merge-patch+json"


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


def micro_time(when: datetime | str) -> Any:
    """A MicroTime as the API server parses it: ``2026-11-30T05:00:00.000000Z`` (six fraction digits always;
    the client's own ``isoformat()`` drops them when they are zero, which the API server refuses). Typed Any:
    the client's models declare datetime, and pass a string through as it is."""
    if isinstance(when, str):
        return when
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
        """Holding the Lease, renewed within the renew deadline (false at once when renewals stall)."""
        return self._leading.is_set() and self._clock() - self._renewed_at < self.settings.renew_deadline

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
        task, self._task = self._task, None
        await cancel(task)  # an attempt in flight is abandoned (its thread ends at the request timeout)
        self._set_leading(False)
        if release and self.transitions:
            try:
                await asyncio.wait_for(asyncio.to_thread(self._release), self._timeout())
            except Exception as exc:  # noqa: BLE001 - it expires after lease_duration anyway
                log.warning("could not release the Lease: %s", exc or type(exc).__name__,
                            extra={"event": "leader_release"})

    # --- the loop ------------------------------------------------------------------------------------
    async def _run(self) -> None:
        settings = self.settings
        failing = False
        while not self._stop.is_set():
            # an attempt never outlives the renew deadline: a call that hangs is abandoned (its thread ends
            # at the request timeout) and counts as a failed renewal
            budget = settings.renew_deadline
            if self._leading.is_set():
                budget = max(0.0, settings.renew_deadline - (self._clock() - self._renewed_at))
            started = self._clock()
            try:
                held = await asyncio.wait_for(asyncio.to_thread(self._try_acquire_or_renew), budget)
                failing = False
            except Exception as exc:  # noqa: BLE001 - the API server is down, slow or refuses: try again
                level = logging.DEBUG if failing else logging.WARNING
                log.log(level, "lease %s/%s: %s", settings.namespace, settings.name,
                        type(exc).__name__ if isinstance(exc, TimeoutError) else exc,
                        extra={"event": "leader_error"})
                failing = True
                held = False
            if held:
                self._renewed_at = started  # measured from when the attempt began, as client-go does
                self._set_leading(True)
            elif self._leading.is_set() and self._clock() - self._renewed_at >= settings.renew_deadline:
                self._set_leading(False)
            try:
                await asyncio.wait_for(self._stop.wait(), settings.retry_period)
            except TimeoutError:
                pass

    def _set_leading(self, leading: bool) -> None:
        if leading == self._leading.is_set():
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
            try:
                listener()
            except Exception:  # noqa: BLE001 - a listener's bug must not stop the election
                log.exception("leader listener failed", extra={"event": "leader"})

    @staticmethod
    def _record(lease: dict[str, Any]) -> tuple[Any, ...]:
        spec = lease.get("spec") or {}
        return tuple(spec.get(k) for k in ("holderIdentity", "renewTime", "acquireTime", "leaseTransitions",
                                           "leaseDurationSeconds"))

    def _read(self) -> dict[str, Any]:
        """The Lease as the API server sent it (JSON, times untouched); ApiException 404 when there is none."""
        s = self.settings
        resp: Any = self._leases.read_namespaced_lease(s.name, s.namespace, _request_timeout=self._timeout(),
                                                       _preload_content=False)
        try:
            lease: dict[str, Any] = orjson.loads(resp.data)
        finally:
            resp.release_conn()
        return lease

    def _patch(self, lease: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
        """A merge patch of ``spec`` fields, conditional on the resourceVersion read (409 when someone wrote
        since). Only what changes is sent: times are strings in MicroTime form, never re-encoded."""
        s = self.settings
        body = {"metadata": {"resourceVersion": (lease.get("metadata") or {}).get("resourceVersion")},
                "spec": spec}
        resp: Any = self._leases.patch_namespaced_lease(s.name, s.namespace, body, _request_timeout=self._timeout(),
                                                        _content_type=MERGE_PATCH, _preload_content=False)
        try:
            updated: dict[str, Any] = orjson.loads(resp.data)
        finally:
            resp.release_conn()
        return updated

    def _try_acquire_or_renew(self) -> bool:
        s = self.settings
        now = datetime.now(UTC)
        try:
            lease = self._read()
        except ApiException as exc:
            if exc.status != 404:
                raise
            # the client's model re-encodes times with isoformat(): keep the microseconds non-zero so the
            # fraction is always written (Go's MicroTime parser wants six digits)
            when = now.replace(microsecond=now.microsecond or 1)
            body = k8s_client.V1Lease(
                metadata=k8s_client.V1ObjectMeta(name=s.name, namespace=s.namespace),
                spec=k8s_client.V1LeaseSpec(holder_identity=s.identity, lease_duration_seconds=self._seconds(),
                                            acquire_time=when, renew_time=when, lease_transitions=0))
            try:
                self._leases.create_namespaced_lease(s.namespace, body, _request_timeout=self._timeout())
            except ApiException as exc2:
                if exc2.status == 409:  # another candidate created it first
                    return False
                raise
            return True
        record = self._record(lease)
        if record != self._observed:
            self._observed, self._observed_at = record, self._clock()
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        mine = holder == s.identity
        duration = spec.get("leaseDurationSeconds") or s.lease_duration
        if holder and not mine and self._clock() - self._observed_at < duration:
            return False  # held, and renewed within its duration as we have seen it
        change: dict[str, Any] = {"holderIdentity": s.identity, "leaseDurationSeconds": self._seconds(),
                                  "renewTime": micro_time(now)}
        if not mine or not spec.get("acquireTime"):
            change["acquireTime"] = micro_time(now)
        if not mine:
            change["leaseTransitions"] = (spec.get("leaseTransitions") or 0) + 1
        try:
            updated = self._patch(lease, change)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        self._observed, self._observed_at = self._record(updated), self._clock()
        return True

    def _timeout(self) -> float:
        """Each Lease call's request timeout: within the renew deadline."""
        return max(1.0, min(self.settings.renew_deadline, 5.0))

    def _seconds(self) -> int:
        """``leaseDurationSeconds``: whole seconds, never rounded down to 0 (the API server refuses that)."""
        return max(1, math.ceil(self.settings.lease_duration))

    def _release(self) -> None:
        s = self.settings
        lease = self._read()
        spec = lease.get("spec") or {}
        if spec.get("holderIdentity") != s.identity:
            return
        self._patch(lease, {"holderIdentity": "", "leaseDurationSeconds": 1,
                            "renewTime": micro_time(datetime.now(UTC))})
        log.info("released the Lease %s/%s", s.namespace, s.name, extra={"event": "leader_release"})
