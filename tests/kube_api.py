"""A small Kubernetes API server for tests: the real list/watch wire protocol, over HTTP, on port 0.

Why not kmock (evaluated first): kmock's emulator answers every list with
``resourceVersion: "..."``, ignores ``limit``/``continue`` and the watch's
``resourceVersion`` (it replays every object as ADDED), and has neither
BOOKMARK events nor 410 Gone; the behaviours a reflector must survive are
exactly those. This emulator speaks them, for Pods, Namespaces,
ResourceQuotas and NetworkPolicies (cluster-wide collections):

- one resourceVersion counter for everything (like etcd's revision); each
  create/update/delete bumps it and is kept in the collection's history;
- **list**: ``limit``/``continue`` paging over a snapshot taken at the first
  page (a consistent list: later changes do not show in later pages), with
  ``metadata.resourceVersion`` of the snapshot and ``remainingItemCount``;
  :meth:`KubeAPI.expire_continue_tokens` makes the tokens answer
  ``410 Expired`` (a Status body), as the API server does after compaction;
- **watch** (``watch=true``): the events after ``resourceVersion`` from
  history, then live ones, one JSON object per line in a chunked response;
  ``timeoutSeconds`` ends the stream cleanly; ``allowWatchBookmarks=true``
  opts in to BOOKMARK events (:meth:`KubeAPI.bookmark`); a resourceVersion
  older than the last :meth:`KubeAPI.compact` gets an ERROR event carrying a
  410 Status (the watch cache's answer) or, with ``gone_as_http``, an HTTP 410;
- ``bookmark_interval``: like the API server's watch cache, which sends every
  watch that asked for bookmarks one about once a minute, a BOOKMARK at the
  current version every that many seconds (off by default: tests send them
  with :meth:`KubeAPI.bookmark`);
- faults: :meth:`KubeAPI.drop_watches` resets open watch connections
  mid-stream; :meth:`KubeAPI.expire_watches` sends the 410 ERROR event to
  open watches; :meth:`KubeAPI.hang_watches` keeps watch connections open but
  delivers nothing on them, not even bookmarks (a stuck server or proxy; lists
  still answer); ``unavailable = True`` answers 503 to everything.

``requests`` records every request (resource, query) for assertions, and
:meth:`KubeAPI.wait_for_request` lets a test await one instead of sleeping.
Data changes are plain method calls made on the server's event loop.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

import orjson
from aiohttp import web

KINDS: dict[str, tuple[str, str, str]] = {  # plural -> (kind, apiVersion, path prefix)
    "pods": ("Pod", "v1", "/api/v1"),
    "namespaces": ("Namespace", "v1", "/api/v1"),
    "resourcequotas": ("ResourceQuota", "v1", "/api/v1"),
    "networkpolicies": ("NetworkPolicy", "networking.k8s.io/v1", "/apis/networking.k8s.io/v1"),
}
PLURAL_OF = {kind: plural for plural, (kind, _, _) in KINDS.items()}
_END = object()
_ABORT = object()


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


@dataclass(eq=False)
class _Watcher:
    plural: str
    bookmarks: bool
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    transport: Any = None


@dataclass
class _Collection:
    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    history: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (resourceVersion, event)
    compacted: int = 0  # watches from a version below this get 410
    watchers: set = field(default_factory=set)


@dataclass
class Request:
    plural: str
    query: dict[str, str]

    @property
    def watch(self) -> bool:
        return self.query.get("watch") in ("true", "1")


class KubeAPI:
    def __init__(self, *, gone_as_http: bool = False, first_version: int = 1000,
                 bookmark_interval: float | None = None):
        self.gone_as_http = gone_as_http
        self.bookmark_interval = bookmark_interval
        self.unavailable = False
        self.hung = False
        self.version = first_version
        self.requests: list[Request] = []
        self._collections = {plural: _Collection() for plural in KINDS}
        self._snapshots: dict[str, tuple[int, list[dict[str, Any]]]] = {}
        self._snapshot_ids = itertools.count(1)
        self._request_waiters: list[tuple[Callable[[Request], bool], asyncio.Future]] = []
        self._runner: web.AppRunner | None = None
        self._watchers_changed = asyncio.Event()
        self.url = ""

    # --- server ----------------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for coll in self._collections.values():
            for watcher in list(coll.watchers):
                watcher.queue.put_nowait(_END)
        assert self._runner is not None
        await self._runner.cleanup()

    def kubeconfig(self) -> str:
        """A kubeconfig (YAML text) pointing at this server, without credentials."""
        return (
            "apiVersion: v1\nkind: Config\n"
            f"clusters: [{{name: test, cluster: {{server: '{self.url}'}}}}]\n"
            "users: [{name: test, user: {}}]\n"
            "contexts: [{name: test, context: {cluster: test, user: test}}]\n"
            "current-context: test\n"
        )

    # --- data --------------------------------------------------------------------------------------
    def _emit(self, plural: str, event_type: str, obj: dict[str, Any]) -> None:
        coll = self._collections[plural]
        event = {"type": event_type, "object": obj}
        coll.history.append((self.version, event))
        if self.hung:
            return
        for watcher in coll.watchers:
            watcher.queue.put_nowait(event)

    def _stamp(self, obj: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        obj = copy.deepcopy(obj)
        kind = obj.get("kind")
        plural = PLURAL_OF[kind]
        obj.setdefault("apiVersion", KINDS[plural][1])
        meta = obj.setdefault("metadata", {})
        self.version += 1
        meta["resourceVersion"] = str(self.version)
        if kind == "Namespace":
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        else:
            meta.setdefault("namespace", "default")
        return plural, obj

    @staticmethod
    def _key(obj: dict[str, Any]) -> tuple[str, str]:
        meta = obj["metadata"]
        return meta.get("namespace", ""), meta["name"]

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        plural, obj = self._stamp(obj)
        meta = obj["metadata"]
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        key = self._key(obj)
        if key in self._collections[plural].objects:
            raise KeyError(f"{plural} {key} already exists")
        self._collections[plural].objects[key] = obj
        self._emit(plural, "ADDED", obj)
        return obj

    def create_many(self, objects: list[dict[str, Any]]) -> None:
        for obj in objects:
            self.create(obj)

    def update(self, obj: dict[str, Any]) -> dict[str, Any]:
        plural, obj = self._stamp(obj)
        key = self._key(obj)
        previous = self._collections[plural].objects[key]
        obj["metadata"].setdefault("uid", previous["metadata"].get("uid"))
        self._collections[plural].objects[key] = obj
        self._emit(plural, "MODIFIED", obj)
        return obj

    def delete(self, kind: str, namespace: str, name: str) -> None:
        plural = PLURAL_OF[kind]
        obj = copy.deepcopy(self._collections[plural].objects.pop((namespace if kind != "Namespace" else "", name)))
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        self._emit(plural, "DELETED", obj)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        return self._collections[PLURAL_OF[kind]].objects[(namespace if kind != "Namespace" else "", name)]

    # --- faults -----------------------------------------------------------------------------------
    def bookmark(self, plural: str | None = None) -> str:
        """A BOOKMARK at the current version to every watch that asked for bookmarks."""
        if self.hung:
            return str(self.version)
        for name, coll in self._collections.items():
            if plural not in (None, name):
                continue
            kind, api_version, _ = KINDS[name]
            event = {"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version,
                                                    "metadata": {"resourceVersion": str(self.version)}}}
            for watcher in coll.watchers:
                if watcher.bookmarks:
                    watcher.queue.put_nowait(event)
        return str(self.version)

    def hang_watches(self, hung: bool = True) -> None:
        """Open watches (and new ones) stay connected but receive nothing until ``hang_watches(False)``;
        the changes made meanwhile are in the history, so lists and later watches see them."""
        self.hung = hung

    def compact(self) -> None:
        """Forget all history: a watch from any earlier version now gets 410 Gone."""
        for coll in self._collections.values():
            coll.history.clear()
            coll.compacted = self.version

    def drop_watches(self, plural: str | None = None) -> int:
        """Reset every open watch connection (the client sees a broken chunked stream)."""
        dropped = 0
        for name, coll in self._collections.items():
            if plural in (None, name):
                for watcher in list(coll.watchers):
                    watcher.queue.put_nowait(_ABORT)
                    dropped += 1
        return dropped

    def expire_watches(self, plural: str | None = None) -> None:
        """Compact, then tell every open watch its version is gone (ERROR event with a 410 Status)."""
        self.compact()
        for name, coll in self._collections.items():
            if plural in (None, name):
                for watcher in list(coll.watchers):
                    watcher.queue.put_nowait({"type": "ERROR", "object": status(
                        410, "Expired", "too old resource version")})
                    watcher.queue.put_nowait(_END)

    def expire_continue_tokens(self) -> None:
        self._snapshots.clear()

    def open_watches(self, plural: str) -> int:
        return len(self._collections[plural].watchers)

    async def wait_for_watchers(self, plural: str | None = None, count: int = 1, timeout: float = 10.0) -> None:
        """Until ``count`` watches are open on ``plural`` (every kind when None): events sent after this
        reach them."""
        plurals = [plural] if plural else list(KINDS)
        async with asyncio.timeout(timeout):
            while not all(self.open_watches(p) >= count for p in plurals):
                self._watchers_changed.clear()
                await self._watchers_changed.wait()

    async def wait_for_request(self, predicate: Callable[[Request], bool], timeout: float = 10.0) -> Request:
        """The first request (already made or future) satisfying ``predicate``."""
        for req in self.requests:
            if predicate(req):
                return req
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._request_waiters.append((predicate, future))
        return await asyncio.wait_for(future, timeout)

    # --- HTTP --------------------------------------------------------------------------------------
    def _record(self, req: Request) -> None:
        self.requests.append(req)
        for entry in list(self._request_waiters):
            predicate, future = entry
            if not future.done() and predicate(req):
                future.set_result(req)
                self._request_waiters.remove(entry)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/")
        plural = next((p for p, (_, _, prefix) in KINDS.items() if path == f"{prefix}/{p}"), None)
        if plural is None:
            return web.json_response(status(404, "NotFound", f"no route {path}"), status=404)
        req = Request(plural, dict(request.query))
        self._record(req)
        if self.unavailable:
            return web.json_response(status(503, "ServiceUnavailable", "the server is unavailable"), status=503)
        if req.watch:
            return await self._watch(request, plural, req.query)
        return self._list(plural, req.query)

    def _list(self, plural: str, query: dict[str, str]) -> web.Response:
        kind, api_version, _ = KINDS[plural]
        limit = int(query.get("limit") or 0)
        token = query.get("continue")
        if token:
            try:
                snapshot_id, offset_text = base64.urlsafe_b64decode(token.encode()).decode().split(":")
                version, items = self._snapshots[snapshot_id]
                offset = int(offset_text)
            except (KeyError, ValueError):
                return web.json_response(status(410, "Expired", "The provided continue parameter is too old "
                                                "to display a consistent list result."), status=410)
        else:
            snapshot_id = str(next(self._snapshot_ids))
            version = self.version
            items = [self._collections[plural].objects[k] for k in sorted(self._collections[plural].objects)]
            self._snapshots[snapshot_id] = (version, items)
            offset = 0
        page = items[offset:offset + limit] if limit else items[offset:]
        end = offset + len(page)
        meta: dict[str, Any] = {"resourceVersion": str(version)}
        if end < len(items):
            meta["continue"] = base64.urlsafe_b64encode(f"{snapshot_id}:{end}".encode()).decode()
            meta["remainingItemCount"] = len(items) - end
        else:
            self._snapshots.pop(snapshot_id, None)
        body = {"kind": f"{kind}List", "apiVersion": api_version, "metadata": meta, "items": page}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _watch(self, request: web.Request, plural: str, query: dict[str, str]) -> web.StreamResponse:
        coll = self._collections[plural]
        since = int(query.get("resourceVersion") or 0)
        if since and since < coll.compacted:
            message = f"too old resource version: {since} ({coll.compacted})"
            if self.gone_as_http:
                return web.json_response(status(410, "Expired", message), status=410)
            events: list[Any] = [{"type": "ERROR", "object": status(410, "Expired", message)}, _END]
        elif self.hung:
            events = []
        elif since:
            events = [event for version, event in coll.history if version > since]
        else:  # no version: the current state as ADDED events ("start at any")
            events = [{"type": "ADDED", "object": obj} for obj in coll.objects.values()]
        watcher = _Watcher(plural, query.get("allowWatchBookmarks") in ("true", "1"))
        for event in events:
            watcher.queue.put_nowait(event)
        coll.watchers.add(watcher)  # no await since the history was read: no event can fall in between
        self._watchers_changed.set()
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") else None
        ticker = None
        if self.bookmark_interval and watcher.bookmarks:
            ticker = asyncio.create_task(self._tick(plural, watcher, self.bookmark_interval))
        try:
            await response.prepare(request)
            async with asyncio.timeout(timeout):
                while True:
                    event = await watcher.queue.get()
                    if event is _END:
                        break
                    if event is _ABORT:
                        if request.transport is not None:
                            request.transport.abort()
                        return response
                    await response.write(orjson.dumps(event) + b"\n")
        except TimeoutError:
            pass  # timeoutSeconds elapsed: end the stream cleanly
        except ConnectionResetError:
            return response
        finally:
            if ticker is not None:
                ticker.cancel()
            coll.watchers.discard(watcher)
            self._watchers_changed.set()
        await response.write_eof()
        return response

    async def _tick(self, plural: str, watcher: _Watcher, interval: float) -> None:
        kind, api_version, _ = KINDS[plural]
        while True:
            await asyncio.sleep(interval)
            if not self.hung:
                watcher.queue.put_nowait({"type": "BOOKMARK", "object": {
                    "kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": str(self.version)}}})
