"""Reservations of admitted pods, and the ledger that shares them between worker processes.

A pod admitted by ``/validate`` exists for the API server a moment later, and for the
cluster view only once its watch reports it. Meanwhile its usage is *reserved*: counted
in its namespace so that the next creation is judged with it (:class:`Reservation`,
kept by :class:`webhook.views.store.ClusterStore`).

With ``--workers N`` every worker has its own view, but they answer one Service: a burst
of creations is spread over them, and each must see the others' reservations, or N
workers admit N times the tenant's quota. :class:`FileLedger` is that shared memory: an
append-only file of reservations in a directory private to the workers of one pod
(the supervisor makes it and removes it at exit), guarded by an exclusive ``flock``.
Each worker, under the lock, reads what was appended since it last looked, evaluates,
and appends its own reservation before releasing it, so one creation at a time is judged
against every reservation of every worker: N workers admit exactly what one would.

A reservation never leaves the ledger early: each worker stops counting it on its own,
when its own watch reports the pod (or its resize), or when it expires (see the store).
The file is compacted when it grows past ``COMPACT_BYTES``: entries older than
``keep`` seconds are dropped (far past any expiry) and the file is replaced atomically;
readers notice the new inode and read it whole, skipping what they already hold.

Across replicas (pods) nothing is shared: each replica counts only its own reservations
and what its watch reports. docs/cluster-view.md states the resulting bound.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import orjson

log = logging.getLogger("tenantguard.cluster")

Usage = Mapping[str, Decimal]
LEDGER_FILE = "reservations.jsonl"
LOCK_FILE = "reservations.lock"
COMPACT_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Reservation:
    """Usage counted for an admitted pod until the watch reports it.

    ``name`` is empty for a pod created with ``generateName`` only (the API server names it
    after admission): such a reservation is matched to the next pod of that ``generate_name``
    the watch reports. ``resize``: the increase an admitted in-place resize adds to a live pod;
    ``before`` is what the view counted for that pod when it was admitted.
    """

    namespace: str
    name: str
    usage: Usage
    at: float  # clock time of the admission
    generate_name: str = ""
    resize: bool = False
    before: Usage | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def key(self) -> tuple[str, str]:
        """(namespace, name), or a name standing for the pod the API server will name."""
        if self.name:
            return self.namespace, self.name + ("/resize" if self.resize else "")
        return self.namespace, f"{self.generate_name}<{self.id[:8]}>"

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "ns": self.namespace, "name": self.name, "at": self.at,
                               "usage": {k: str(v) for k, v in self.usage.items()}}
        if self.generate_name:
            out["gen"] = self.generate_name
        if self.resize:
            out["resize"] = True
            out["before"] = {k: str(v) for k, v in (self.before or {}).items()}
        return out

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Reservation:
        before = doc.get("before")
        return cls(namespace=str(doc["ns"]), name=str(doc.get("name") or ""), at=float(doc["at"]),
                   usage={str(k): Decimal(v) for k, v in doc["usage"].items()},
                   generate_name=str(doc.get("gen") or ""), resize=bool(doc.get("resize")),
                   before=None if before is None else {str(k): Decimal(v) for k, v in before.items()},
                   id=str(doc["id"]))


class Ledger(Protocol):
    """Where reservations are shared beyond one process (nowhere, for a single worker)."""

    def lock(self) -> AbstractContextManager[object]:
        """Held around one evaluate-and-reserve step: no other worker judges meanwhile."""
        ...

    def fetch(self) -> list[Reservation]:
        """Reservations other workers added since the last call (call while locked)."""
        ...

    def publish(self, reservation: Reservation) -> None:
        """Share a reservation this worker made (call while locked)."""
        ...

    def close(self) -> None: ...


class LocalLedger:
    """One worker: its store holds every reservation; nothing to share or lock across processes."""

    def lock(self) -> AbstractContextManager[object]:
        return nullcontext()

    def fetch(self) -> list[Reservation]:
        return []

    def publish(self, reservation: Reservation) -> None:
        return None

    def close(self) -> None:
        return None


class FileLedger:
    """Reservations shared by the worker processes of one pod, in ``directory`` (see the module docstring)."""

    def __init__(self, directory: str | Path, *, keep: float = 600.0,
                 clock: Callable[[], float] = time.monotonic, compact_bytes: int = COMPACT_BYTES):
        self.directory = Path(directory)
        self.path = self.directory / LEDGER_FILE
        self.keep = keep
        self._clock = clock
        self._compact_bytes = compact_bytes
        self._thread_lock = threading.Lock()  # flock does not exclude threads sharing one descriptor
        self._lock_fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        self._inode: int | None = None
        self._offset = 0
        self._seen: dict[str, float] = {}  # id -> at, of every entry this worker holds or wrote

    @contextmanager
    def lock(self) -> Iterator[None]:
        with self._thread_lock:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def fetch(self) -> list[Reservation]:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return []
        try:
            st = os.fstat(fd)
            if st.st_ino != self._inode:  # new or compacted: read it whole
                self._inode, self._offset = st.st_ino, 0
            if st.st_size <= self._offset:
                return []
            data = os.pread(fd, st.st_size - self._offset, self._offset)
        finally:
            os.close(fd)
        end = data.rfind(b"\n") + 1  # a line is whole once its newline is written
        self._offset += end
        found: list[Reservation] = []
        for line in data[:end].splitlines():
            try:
                reservation = Reservation.from_json(orjson.loads(line))
            except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
                log.warning("reservation ledger: unreadable entry skipped: %s", exc)
                continue
            if reservation.id not in self._seen:
                self._seen[reservation.id] = reservation.at
                found.append(reservation)
        return found

    def publish(self, reservation: Reservation) -> None:
        line = orjson.dumps(reservation.as_json()) + b"\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            st = os.fstat(fd)
        finally:
            os.close(fd)
        self._seen[reservation.id] = reservation.at
        if st.st_ino == self._inode or self._inode is None:
            self._inode, self._offset = st.st_ino, st.st_size  # nothing else was appended: we hold the lock
        if st.st_size > self._compact_bytes:
            self._compact()

    def _compact(self) -> None:
        """Rewrite the file without entries older than ``keep`` (while locked)."""
        horizon = self._clock() - self.keep
        kept: list[bytes] = []
        for line in self.path.read_bytes().splitlines():
            try:
                at = float(orjson.loads(line)["at"])
            except (ValueError, KeyError, TypeError):
                continue
            if at >= horizon:
                kept.append(line + b"\n")
        scratch = self.path.with_suffix(".tmp")
        scratch.write_bytes(b"".join(kept))
        os.replace(scratch, self.path)
        st = self.path.stat()
        self._inode, self._offset = st.st_ino, st.st_size
        self._seen = {k: at for k, at in self._seen.items() if at >= horizon}

    def close(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1
