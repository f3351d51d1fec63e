"""List+watch of one resource kind with the official kubernetes client, in a thread.

The loop is client-go's Reflector, as the API concepts page describes it
("Efficient detection of changes"):

1. **list** in pages (``limit`` / ``continue``) without ``resourceVersion``: a
   consistent snapshot; every page is reduced into new tables (what the store
   keeps) before the next is read, then the tables replace the kind's data in
   one step under the store's lock (admissions never wait for the build).
   A ``continue`` token that expired (410) restarts the list;
2. **watch** from the list's ``resourceVersion`` with
   ``allowWatchBookmarks=true`` and a server-side ``timeoutSeconds`` (jittered,
   so replicas do not reconnect together); every ADDED / MODIFIED / DELETED
   event updates the store and advances the resourceVersion, as does every
   BOOKMARK (so a reconnect resumes from a recent version even when the kind
   is quiet);
3. when the stream ends (server timeout) the watch resumes from the last
   resourceVersion at once; when the connection drops or the server fails it
   resumes after an exponential, jittered backoff (0.2 s doubling, at most
   5 s), reset by the first call that succeeds, so the view is current again
   within seconds of the API server's recovery;
4. **410 Gone** (an ERROR event carrying a Status with code 410, or the watch
   request answered with HTTP 410) means the version left the server's
   history: relist (step 1) and watch again. The store keeps serving the old
   data until the new list replaces it; the time this takes is reported;
5. **silence**: the API server sends a BOOKMARK to every watch that asked for
   them about once a minute, so a stream that delivers neither an event nor a
   bookmark for ``silence_timeout`` seconds (90 by default) is broken even if
   its connection stays open (a hung proxy, a stuck server). The read times
   out, and the kind is relisted: a list is a consistent read, so the view is
   current again once it completes. Meanwhile the view reports the kind as
   stale (``/readyz``, metrics), and reservations of admitted pods are not
   released (the store only expires them once the watch has been heard from).

The client calls are the generated ``list_*`` methods with
``_preload_content=False`` (the raw urllib3 response; the JSON is decoded
directly, never into model objects, which would cost more time and memory
than the decision needs). ``kubernetes.watch.Watch`` is not used: it retries a
410 once with the same, already expired resourceVersion, and with
``deserialize=False`` it fails on ERROR events.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines
from urllib3.exceptions import ReadTimeoutError

log = logging.getLogger("tenantguard.cluster")
GONE = 410


class Builder(Protocol):
    """What a fresh list fills, page by page, before it replaces the kind's data in one step."""

    def add(self, obj: Any) -> None: ...


class Sink(Protocol):
    """Where a reflector writes: the cluster view's store, the policy objects (webhook.views.policy_objects)."""

    def builder(self, kind: str) -> Builder: ...

    def install(self, tables: Any, *, notify: bool = True) -> None: ...

    def apply(self, kind: str, event_type: str, obj: Any, *, notify: bool = True) -> None: ...

    def note_heard(self, kind: str) -> None: ...


class Gone(Exception):
    """The resourceVersion is too old (410): relist."""


class WatchError(Exception):
    """The watch stream reported an error other than 410."""


class Silent(Exception):
    """The watch delivered neither an event nor a bookmark for ``silence_timeout`` seconds: relist."""


@dataclass(frozen=True, slots=True)
class ReflectorSettings:
    page_size: int = 500
    watch_timeout: int = 300  # timeoutSeconds asked of the server; jittered up to twice that
    connect_timeout: float = 10.0
    read_timeout: float = 60.0  # for list pages
    silence_timeout: float = 90.0  # a watch with no event and no bookmark this long is broken: relist
    backoff_initial: float = 0.2
    # short on purpose: once the API server answers again the view must be current within seconds (it
    # gates /readyz), and a failed list or watch every few seconds per kind costs the API server nothing
    backoff_max: float = 5.0


@dataclass(slots=True)
class ReflectorStatus:
    kind: str
    synced: bool = False  # a full list has completed at least once
    connected: bool = False  # a watch stream is open
    resource_version: str | None = None
    lists: int = 0  # completed full lists
    relists: int = 0  # lists forced by 410 Gone or by a silent watch
    silences: int = 0  # watches that went silent past silence_timeout
    list_restarts: int = 0  # lists restarted because a continue token expired
    watches: int = 0  # watch requests opened
    events: int = 0
    bookmarks: int = 0
    errors: int = 0
    last_error: str | None = None
    last_resync_seconds: float | None = None  # 410 received -> fresh list in the store
    disconnected_since: float | None = None  # clock time the view last had no stream (None while connected)

    def as_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(frozen=True, slots=True)
class Resource:
    kind: str  # "Pod"
    plural: str  # "pods"
    call: Callable[..., Any] = field(compare=False)  # the generated list_* method


class Reflector:
    def __init__(self, resource: Resource, store: Sink, settings: ReflectorSettings,
                 clock: Callable[[], float], notify: Callable[[], None] = lambda: None):
        self.resource = resource
        self.store = store
        self.settings = settings
        self.clock = clock
        self.notify = notify
        self.status = ReflectorStatus(resource.kind, disconnected_since=clock())
        self._stop = threading.Event()
        self._resp: Any = None
        self._thread: threading.Thread | None = None
        self._random = random.Random()

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"tenantguard-watch-{self.resource.plural}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the loop to end and unblock a pending read (safe from any thread)."""
        self._stop.set()
        resp = self._resp
        if resp is not None:
            try:
                resp.shutdown()  # urllib3 >= 2.3: unblocks a read in progress in another thread
            except Exception as exc:  # noqa: BLE001 - best effort; the read timeout ends it otherwise
                log.debug("%s: shutting the stream down: %s", self.resource.kind, exc)

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    # --- the loop --------------------------------------------------------------------------------
    def _run(self) -> None:
        attempt = 0
        gone_at: float | None = None
        while not self._stop.is_set():
            try:
                if self.status.resource_version is None:
                    self._list()
                    if gone_at is not None:
                        self.status.last_resync_seconds = self.clock() - gone_at
                        log.info("%s: resynced in %.3fs after 410 Gone", self.resource.kind,
                                 self.status.last_resync_seconds)
                        gone_at = None
                    attempt = 0
                    self.notify()
                if self._watch():
                    attempt = 0
                elif not self._stop.is_set():
                    attempt += 1  # a stream that closes at once, again and again: do not spin
                    self._stop.wait(self._backoff(attempt))
            except Gone:
                log.info("%s: resourceVersion %s expired (410 Gone); relisting", self.resource.kind,
                         self.status.resource_version)
                self.status.resource_version = None
                self.status.relists += 1
                if gone_at is None:
                    gone_at = self.clock()
                self.notify()
                continue
            except Silent:
                log.warning("%s: no event and no bookmark for %.0fs on an open watch; relisting",
                            self.resource.kind, self.settings.silence_timeout)
                self.status.resource_version = None
                self.status.relists += 1
                self.status.silences += 1
                self.notify()
                continue
            except Exception as exc:  # noqa: BLE001 - any failure: report, back off, resume
                if self._stop.is_set():
                    break
                attempt += 1
                self.status.errors += 1
                self.status.last_error = f"{type(exc).__name__}: {exc}"[:500]
                log.warning("%s: %s; retrying (attempt %d)", self.resource.kind, self.status.last_error, attempt)
                self.notify()
                self._stop.wait(self._backoff(attempt))
        self.notify()

    def _backoff(self, attempt: int) -> float:
        base = min(self.settings.backoff_max, self.settings.backoff_initial * (2 ** (attempt - 1)))
        return base * (0.5 + self._random.random() / 2)  # jitter: 50-100 %

    def _list(self) -> None:
        kind = self.resource.kind
        settings = self.settings
        tables = self.store.builder(kind)
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": settings.page_size}
            if token:
                kwargs["_continue"] = token
            try:
                resp = self.resource.call(**kwargs, _preload_content=False,
                                          _request_timeout=(settings.connect_timeout, settings.read_timeout))
            except ApiException as exc:
                if exc.status == GONE and token:  # the continue token expired: start the snapshot over
                    self.status.list_restarts += 1
                    tables, token = self.store.builder(kind), None
                    continue
                raise
            self._resp = resp  # set before checking the flag; stop() sets the flag before reading this
            if self._stop.is_set():
                self._resp = None
                resp.release_conn()
                return
            try:
                body = orjson.loads(resp.data)
            finally:
                self._resp = None
                resp.release_conn()
            for item in body.get("items") or ():
                if isinstance(item, dict):
                    tables.add(item)
            meta = body.get("metadata") or {}
            del body
            token = meta.get("continue") or None
            if not token:
                break
            if self._stop.is_set():
                return
        version = str(meta.get("resourceVersion") or "") or None
        if version is None:
            raise WatchError(f"the {self.resource.plural} list carried no resourceVersion")
        self.store.install(tables, notify=False)
        self.status.resource_version = version
        self.status.synced = True
        self.status.lists += 1

    def _watch(self) -> bool:
        """One watch request; False when it ended at once without an event (back off before the next)."""
        settings = self.settings
        timeout = settings.watch_timeout + int(self._random.random() * settings.watch_timeout)
        try:
            # the read timeout bounds the silence between two lines (events or bookmarks), not the stream
            resp = self.resource.call(
                watch=True, resource_version=self.status.resource_version, allow_watch_bookmarks=True,
                timeout_seconds=timeout, _preload_content=False,
                _request_timeout=(settings.connect_timeout, settings.silence_timeout),
            )
        except ApiException as exc:
            if exc.status == GONE:
                raise Gone() from None
            raise
        self._resp = resp  # set before checking the flag; stop() sets the flag before reading this
        if self._stop.is_set():
            self._resp = None
            resp.release_conn()
            return True
        self.status.watches += 1
        self.status.connected = True
        self.status.disconnected_since = None
        self.notify()
        opened = self.clock()
        delivered = False
        try:
            for line in iter_resp_lines(resp):
                if self._stop.is_set():
                    break
                if not line.strip():
                    continue
                self._event(orjson.loads(line))
                delivered = True
        except ReadTimeoutError:
            if self._stop.is_set():
                return True
            raise Silent() from None
        finally:
            self._resp = None
            self.status.connected = False
            self.status.disconnected_since = self.clock()
            try:
                resp.release_conn()
            except Exception as exc:  # noqa: BLE001 - a broken connection is dropped by the pool anyway
                log.debug("%s: releasing the connection: %s", self.resource.kind, exc)
        return delivered or self.clock() - opened >= 1.0

    def _event(self, event: Any) -> None:
        if not isinstance(event, dict):
            raise WatchError(f"unexpected watch event {str(event)[:100]}")
        kind = event.get("type")
        obj = event.get("object")
        obj = obj if isinstance(obj, dict) else {}
        if kind == "ERROR":
            if obj.get("code") == GONE:
                raise Gone()
            raise WatchError(f"watch error {obj.get('code')} {obj.get('reason')}: {obj.get('message')}")
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if kind == "BOOKMARK":
            self.status.bookmarks += 1
            self.store.note_heard(self.resource.kind)
        elif kind in ("ADDED", "MODIFIED", "DELETED"):
            self.store.apply(self.resource.kind, kind, obj, notify=False)
            self.status.events += 1
        else:
            raise WatchError(f"unknown watch event type {kind!r}")
        if version:
            self.status.resource_version = str(version)
        self.notify()
