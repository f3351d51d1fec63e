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

Writes, as the API server answers them (what tenantguard's Lease, status and PolicyReport
writers need; every ``kubectl`` verb but server-side apply):

- **create** (POST on a collection): ``generateName``, uid, creationTimestamp,
  ``metadata.generation`` 1 for generation-tracked kinds; ``409 AlreadyExists``;
- **get** (GET on an object): ``404 NotFound`` with the API server's Status;
- **replace** (PUT) and **patch** (PATCH: ``application/merge-patch+json``,
  ``application/json-patch+json``; ``strategic-merge-patch`` for built-in kinds
  only, ``415`` for custom resources, as the API server answers): a
  ``metadata.resourceVersion`` that is not the stored one is ``409 Conflict``; a custom
  resource replaced without one is ``422``; a write that changes nothing keeps the
  resourceVersion and sends no watch event; ``metadata.generation`` grows when
  anything but metadata and status changed;
- the **status subresource** (``.../status``): writes there change only ``status``,
  writes to the object keep the stored ``status`` (custom resources drop it on create);
- **delete**; **labelSelector** (``=``, ``==``, ``!=``, ``in``, ``notin``, exists,
  ``!``) and ``metadata.name``/``metadata.namespace`` **fieldSelector** on lists and
  watches; namespaced collection paths (``/namespaces/{ns}/{plural}``);
- **custom resources** from CustomResourceDefinition documents (:meth:`KubeAPI.install_crd`):
  the object is pruned to its structural schema (unknown fields dropped with a
  ``Warning`` header, or ``400 BadRequest`` under ``fieldValidation=Strict``, what
  ``kubectl apply`` sends), then validated against it (``422 Invalid``).

``requests`` records every request (resource, query) for assertions, and
:meth:`KubeAPI.wait_for_request` lets a test await one instead of sleeping.
Data changes are plain method calls made on the server's event loop.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import itertools
import random
import re
import string
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

import jsonpatch
import orjson
from aiohttp import web
from jsonschema import Draft202012Validator


@dataclass(frozen=True)
class Resource:
    """One kind the server knows: its REST names and the API server behaviours that differ by kind."""

    plural: str
    kind: str
    api_version: str
    namespaced: bool
    status_subresource: bool = False
    generation: bool = False  # metadata.generation grows when anything but metadata and status changes
    custom: bool = False  # a custom resource: no strategic merge patch, no unconditional update
    schema: dict[str, Any] | None = field(default=None, compare=False)  # openAPIV3Schema (custom resources)

    @property
    def prefix(self) -> str:
        return "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def qualified(self) -> str:
        """``pods``, ``leases.coordination.k8s.io``: how the API server names the resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


BUILTIN = (
    Resource("pods", "Pod", "v1", True, status_subresource=True),
    Resource("namespaces", "Namespace", "v1", False, status_subresource=True),
    Resource("resourcequotas", "ResourceQuota", "v1", True, status_subresource=True),
    Resource("networkpolicies", "NetworkPolicy", "networking.k8s.io/v1", True, generation=True),
    Resource("leases", "Lease", "coordination.k8s.io/v1", True),
)
VIEW_PLURALS = ("pods", "namespaces", "resourcequotas", "networkpolicies")  # what the cluster view watches
WRITE_VERBS = frozenset({"create", "update", "patch", "delete"})
OBJECT_META_FIELDS = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation", "creationTimestamp",
    "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences", "finalizers",
    "managedFields",
})
_END = object()
_ABORT = object()


def status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
           "reason": reason, "code": code}
    if details:
        out["details"] = details
    return out


class ApiError(Exception):
    """An error answer (a Status body) from a request handler."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.body = status(code, reason, message, details)
        self.code = code


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(eq=False)
class _Watcher:
    plural: str
    bookmarks: bool
    namespace: str | None = None
    selector: Callable[[dict[str, Any]], bool] | None = None
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    transport: Any = None

    def wants(self, event: dict[str, Any]) -> bool:
        obj = event.get("object") or {}
        if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
            if self.namespace is not None and (obj.get("metadata") or {}).get("namespace") != self.namespace:
                return False
            if self.selector is not None and not self.selector(obj):
                return False
        return True


@dataclass
class _Collection:
    resource: Resource
    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    history: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (resourceVersion, event)
    compacted: int = 0  # watches from a version below this get 410
    watchers: set = field(default_factory=set)


@dataclass
class Request:
    plural: str
    query: dict[str, str]
    verb: str = "list"  # list, watch, get, create, update, patch, delete
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    content_type: str | None = None
    body: Any = None
    code: int = 200
    seq: int = 0  # its position in KubeAPI.requests
    agent: str = ""  # the client's User-Agent

    @property
    def watch(self) -> bool:
        return self.query.get("watch") in ("true", "1")

    @property
    def write(self) -> bool:
        return self.verb in WRITE_VERBS


# --- selectors -----------------------------------------------------------------------------------------------
_SET_REQ = re.compile(r"^\s*(!?)\s*([^\s=!(),]+)\s*(?:(in|notin)\s*\(([^)]*)\)|(==|=|!=)\s*([^\s,]*))?\s*$")


def _split_requirements(text: str) -> list[str]:
    out, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        out.append(current)
    return out


def label_selector(text: str) -> Callable[[dict[str, Any]], bool]:
    """A ``labelSelector`` query parameter as a predicate on objects (raises ApiError 400 when malformed)."""
    tests: list[Callable[[dict[str, str]], bool]] = []
    for requirement in _split_requirements(text):
        m = _SET_REQ.match(requirement)
        if not m:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {requirement!r}")
        negate, key, set_op, values, op, value = m.groups()
        if negate:
            tests.append(lambda labels, k=key: k not in labels)
        elif set_op:
            allowed = {v.strip() for v in values.split(",") if v.strip()}
            if set_op == "in":
                tests.append(lambda labels, k=key, a=allowed: labels.get(k) in a)
            else:
                tests.append(lambda labels, k=key, a=allowed: labels.get(k) not in a)
        elif op in ("=", "=="):
            tests.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif op == "!=":
            tests.append(lambda labels, k=key, v=value: labels.get(k) != v)
        else:
            tests.append(lambda labels, k=key: k in labels)

    def matches(obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(test(labels) for test in tests)

    return matches


def field_selector(text: str) -> Callable[[dict[str, Any]], bool]:
    tests = []
    for requirement in _split_requirements(text):
        key, op, value = re.match(r"^\s*([^=!]+?)\s*(==|=|!=)\s*(.*?)\s*$", requirement).groups()  # type: ignore[union-attr]
        if key not in ("metadata.name", "metadata.namespace"):
            raise ApiError(400, "BadRequest", f'"{key}" is not a known field selector: only "metadata.name", '
                                              '"metadata.namespace"')
        part = key.split(".")[1]
        tests.append((part, op != "!=", value))

    def matches(obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        return all((meta.get(part, "") == value) is equal for part, equal, value in tests)

    return matches


def _selector(query: dict[str, str]) -> Callable[[dict[str, Any]], bool] | None:
    preds = []
    if query.get("labelSelector"):
        preds.append(label_selector(query["labelSelector"]))
    if query.get("fieldSelector"):
        preds.append(field_selector(query["fieldSelector"]))
    if not preds:
        return None
    return lambda obj: all(p(obj) for p in preds)


# --- structural schemas: pruning and validation (custom resources) -------------------------------------------
def prune(obj: Any, schema: dict[str, Any], path: str, dropped: list[str]) -> Any:
    """Drop what the structural schema does not name, as the API server prunes custom resources."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return obj
    if isinstance(obj, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        out = {}
        for key, value in obj.items():
            where = f"{path}.{key}" if path else key
            if props is not None and key in props:
                out[key] = prune(value, props[key], where, dropped) if key != "metadata" or path else value
            elif isinstance(extra, dict):
                out[key] = prune(value, extra, where, dropped)
            elif props is None and extra is None and schema.get("type") != "object":
                out[key] = value
            else:
                dropped.append(where)
        return out
    if isinstance(obj, list) and isinstance(schema.get("items"), dict):
        return [prune(item, schema["items"], f"{path}[{i}]", dropped) for i, item in enumerate(obj)]
    return obj


def _json_schema(schema: Any) -> Any:
    """An openAPIV3Schema as JSON Schema (``nullable`` becomes a null type; int-or-string admits both)."""
    if isinstance(schema, list):
        return [_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _json_schema(v) for k, v in schema.items() if not k.startswith("x-kubernetes-") and k != "nullable"}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if out.get("format") in ("int32", "int64", "date-time", "byte", "int-or-string"):
        out.pop("format")
    return out


def _field(error: Any) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


# --- the server ------------------------------------------------------------------------------------------------
class KubeAPI:
    def __init__(self, *, gone_as_http: bool = False, first_version: int = 1000,
                 bookmark_interval: float | None = None, crds: Iterable[dict[str, Any]] = ()):
        self.gone_as_http = gone_as_http
        self.bookmark_interval = bookmark_interval
        self.unavailable = False
        self.hung = False
        self._stalled: Callable[[Request], bool] | None = None
        self._unstalled = asyncio.Event()
        self.version = first_version
        self.requests: list[Request] = []
        self._collections = {r.plural: _Collection(r) for r in BUILTIN}
        self._plural_of = {r.kind: r.plural for r in BUILTIN}
        self._validators: dict[str, Draft202012Validator] = {}
        self._snapshots: dict[str, tuple[int, list[dict[str, Any]]]] = {}
        self._snapshot_ids = itertools.count(1)
        self._request_waiters: list[tuple[Callable[[Request], bool], asyncio.Future]] = []
        self._runner: web.AppRunner | None = None
        self._watchers_changed = asyncio.Event()
        self._random = random.Random(0)
        self.url = ""
        for crd in crds:
            self.install_crd(crd)

    def install_crd(self, crd: dict[str, Any]) -> Resource:
        """Serve the custom resource a CustomResourceDefinition describes (its storage version)."""
        spec = crd["spec"]
        version = next(v for v in spec["versions"] if v.get("storage"))
        names = spec["names"]
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        resource = Resource(
            names["plural"], names["kind"], f"{spec['group']}/{version['name']}", spec["scope"] == "Namespaced",
            status_subresource="status" in (version.get("subresources") or {}), generation=True, custom=True,
            schema=schema)
        self._collections[resource.plural] = _Collection(resource)
        self._plural_of[resource.kind] = resource.plural
        if schema is not None:
            self._validators[resource.plural] = Draft202012Validator(_json_schema(schema))
        return resource

    # --- server ----------------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
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

    # --- data (plain calls on the server's loop: what the cluster's other clients do) ------------------------
    def _emit(self, plural: str, event_type: str, obj: dict[str, Any]) -> None:
        coll = self._collections[plural]
        event = {"type": event_type, "object": obj}
        coll.history.append((self.version, event))
        if self.hung:
            return
        for watcher in coll.watchers:
            if watcher.wants(event):
                watcher.queue.put_nowait(event)

    def _resource_of(self, obj: dict[str, Any]) -> Resource:
        return self._collections[self._plural_of[obj.get("kind")]].resource  # type: ignore[index]

    def _stamp(self, obj: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        obj = copy.deepcopy(obj)
        resource = self._resource_of(obj)
        obj.setdefault("apiVersion", resource.api_version)
        meta = obj.setdefault("metadata", {})
        self.version += 1
        meta["resourceVersion"] = str(self.version)
        if resource.kind == "Namespace":
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        if resource.namespaced:
            meta.setdefault("namespace", "default")
        return resource.plural, obj

    @staticmethod
    def _key(obj: dict[str, Any]) -> tuple[str, str]:
        meta = obj["metadata"]
        return meta.get("namespace", ""), meta["name"]

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        plural, obj = self._stamp(obj)
        meta = obj["metadata"]
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        if self._collections[plural].resource.generation:
            meta.setdefault("generation", 1)
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
        if self._collections[plural].resource.generation:
            generation = previous["metadata"].get("generation", 1)
            obj["metadata"]["generation"] = generation + (_spec(obj) != _spec(previous))
        self._collections[plural].objects[key] = obj
        self._emit(plural, "MODIFIED", obj)
        return obj

    def delete(self, kind: str, namespace: str, name: str) -> None:
        plural = self._plural_of[kind]
        key = (namespace if self._collections[plural].resource.namespaced else "", name)
        obj = copy.deepcopy(self._collections[plural].objects.pop(key))
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        self._emit(plural, "DELETED", obj)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        plural = self._plural_of[kind]
        key = (namespace if self._collections[plural].resource.namespaced else "", name)
        return self._collections[plural].objects[key]

    def find(self, kind: str, namespace: str = "", name: str = "") -> dict[str, Any] | None:
        try:
            return self.get(kind, namespace, name)
        except KeyError:
            return None

    def objects(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """The stored objects of ``kind`` (of ``namespace`` only, when given), in key order."""
        coll = self._collections[self._plural_of[kind]]
        return [coll.objects[k] for k in sorted(coll.objects) if namespace is None or k[0] == namespace]

    def writes(self, plural: str | None = None) -> list[Request]:
        """The write requests received (of ``plural`` only, when given), in order."""
        return [r for r in self.requests if r.write and plural in (None, r.plural)]

    # --- faults -----------------------------------------------------------------------------------
    def bookmark(self, plural: str | None = None) -> str:
        """A BOOKMARK at the current version to every watch that asked for bookmarks."""
        if self.hung:
            return str(self.version)
        for name, coll in self._collections.items():
            if plural not in (None, name):
                continue
            event = {"type": "BOOKMARK", "object": {
                "kind": coll.resource.kind, "apiVersion": coll.resource.api_version,
                "metadata": {"resourceVersion": str(self.version)}}}
            for watcher in coll.watchers:
                if watcher.bookmarks:
                    watcher.queue.put_nowait(event)
        return str(self.version)

    def stall(self, predicate: Callable[[Request], bool] | None) -> None:
        """Requests matching ``predicate`` get no answer (the connection stays open) until ``stall(None)``:
        a network black hole between one client and the server (tell clients apart by ``Request.agent``)."""
        self._stalled = predicate
        if predicate is None:
            self._unstalled.set()
        else:
            self._unstalled.clear()

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
        """Until ``count`` watches are open on ``plural`` (every kind the cluster view watches when None):
        events sent after this reach them."""
        plurals = [plural] if plural else list(VIEW_PLURALS)
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
        req.seq = len(self.requests)
        self.requests.append(req)
        for entry in list(self._request_waiters):
            predicate, future = entry
            if not future.done() and predicate(req):
                future.set_result(req)
                self._request_waiters.remove(entry)

    def _route(self, path: str) -> tuple[Resource, str | None, str | None, str | None] | None:
        """(resource, namespace, name, subresource) of a request path; None when nothing is served there."""
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["api", "v1"]:
            api_version, rest = "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            api_version, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        else:
            return None
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] != "status":
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            return None
        coll = self._collections.get(rest[0])
        if coll is None or coll.resource.api_version != api_version:
            return None
        if namespace is not None and not coll.resource.namespaced:
            return None
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and (sub != "status" or not coll.resource.status_subresource):
            return None
        return coll.resource, namespace, name, sub

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/")
        route = self._route(path)
        if route is None:
            return web.json_response(status(404, "NotFound", f"the server could not find the requested resource "
                                                            f"({request.method} {path})"), status=404)
        resource, namespace, name, sub = route
        verb = {"GET": "get" if name else "list", "POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete"}.get(request.method, request.method.lower())
        query = dict(request.query)
        body: Any = None
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            raw = await request.read()
            try:
                body = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                body = raw.decode(errors="replace")
        req = Request(resource.plural, query, "watch" if verb == "list" and query.get("watch") in ("true", "1")
                      else verb, namespace, name, sub, request.content_type, body,
                      agent=request.headers.get("User-Agent", ""))
        self._record(req)
        if self._stalled is not None and self._stalled(req):  # a black hole: connected, never answered
            await self._unstalled.wait()
        if self.unavailable:
            req.code = 503
            return web.json_response(status(503, "ServiceUnavailable", "the server is unavailable"), status=503)
        try:
            if verb == "list":
                if req.watch:
                    return await self._watch(request, resource.plural, query, namespace)
                if namespace is None:  # (tests wrap _list with two arguments)
                    return self._list(resource.plural, query)
                return self._list(resource.plural, query, namespace)
            warnings: list[str] = []
            if verb == "get" and name is not None:
                code, obj = 200, self._get_http(resource, namespace, name)
            elif verb == "create" and name is None:
                code, obj = 201, self._create_http(resource, namespace, body, query, warnings)
            elif verb == "update" and name is not None:
                code, obj = 200, self._replace_http(resource, namespace, name, sub, body, query, warnings)
            elif verb == "patch" and name is not None:
                code, obj = 200, self._patch_http(resource, namespace, name, sub, body, request.content_type,
                                                  query, warnings)
            elif verb == "delete" and name is not None:
                code, obj = 200, self._delete_http(resource, namespace, name, body)
            else:
                raise ApiError(405, "MethodNotAllowed", f"the server does not allow this method on the requested "
                                                        f"resource ({request.method} {path})")
        except ApiError as exc:
            req.code = exc.code
            return web.json_response(exc.body, status=exc.code)
        req.code = code
        headers = {"Warning": ", ".join(f'299 - "{w}"' for w in warnings)} if warnings else None
        return web.Response(body=orjson.dumps(obj), status=code, content_type="application/json", headers=headers)

    # --- writes over HTTP ----------------------------------------------------------------------------------
    def _not_found(self, resource: Resource, name: str) -> ApiError:
        return ApiError(404, "NotFound", f'{resource.qualified} "{name}" not found',
                        {"name": name, "group": resource.group, "kind": resource.plural})

    def _stored(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self._collections[resource.plural].objects.get((namespace or "", name))
        if obj is None:
            raise self._not_found(resource, name)
        return obj

    def _get_http(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        return self._stored(resource, namespace, name)

    def _admit(self, resource: Resource, obj: Any, query: dict[str, str], warnings: list[str]) -> dict[str, Any]:
        """What the API server does to a written object before storing it: type checks, pruning, schema."""
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the body of the request was in an unknown format")
        obj = {"apiVersion": resource.api_version, "kind": resource.kind, **obj}  # inferred from the path when absent
        if obj.get("kind") != resource.kind or obj.get("apiVersion") != resource.api_version:
            raise ApiError(400, "BadRequest", f"the API version in the data ({obj.get('apiVersion')}) does not match "
                                              f"the expected API version ({resource.api_version}), or its kind "
                                              f"({obj.get('kind')}) is not {resource.kind}")
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            raise ApiError(400, "BadRequest", "metadata: must be an object")
        dropped = [f"metadata.{k}" for k in meta if k not in OBJECT_META_FIELDS]
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k in OBJECT_META_FIELDS}}
        if resource.schema is not None:
            obj = prune(obj, resource.schema, "", dropped)
        if dropped:
            if query.get("fieldValidation") == "Strict":
                fields = ", ".join(f'unknown field "{d}"' for d in dropped)
                raise ApiError(400, "BadRequest", f'{resource.kind} in version "{resource.api_version.split("/")[-1]}"'
                                                  f" cannot be handled as a {resource.kind}: strict decoding error: "
                                                  f"{fields}")
            if query.get("fieldValidation") != "Ignore":
                warnings.extend(f'unknown field \\"{d}\\"' for d in dropped)
        validator = self._validators.get(resource.plural)
        if validator is not None:
            errors = sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
            if errors:
                name = obj["metadata"].get("name", "")
                causes = [{"field": _field(e), "message": e.message} for e in errors]
                listing = ", ".join(f"{c['field']}: Invalid value: {c['message']}" for c in causes)
                raise ApiError(422, "Invalid", f'{resource.kind}.{resource.group} "{name}" is invalid: [{listing}]',
                               {"name": name, "group": resource.group, "kind": resource.kind, "causes": causes})
        return obj

    def _create_http(self, resource: Resource, namespace: str | None, body: Any, query: dict[str, str],
                     warnings: list[str]) -> dict[str, Any]:
        obj = self._admit(resource, body, query, warnings)
        meta = obj["metadata"]
        if resource.namespaced:
            if namespace is None:
                raise ApiError(405, "MethodNotAllowed", f"create {resource.plural} needs a namespace in the path")
            if meta.get("namespace", namespace) != namespace:
                raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace "
                                                  "sent on the request")
            meta["namespace"] = namespace
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise ApiError(422, "Invalid", f'{resource.kind} "" is invalid: metadata.name: Required value: name or '
                                               "generateName is required")
            meta["name"] = meta["generateName"] + "".join(
                self._random.choices(string.ascii_lowercase + string.digits, k=5))
        for key in ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields"):
            meta.pop(key, None)
        meta["creationTimestamp"] = now()
        if resource.custom and resource.status_subresource:
            obj.pop("status", None)
        if (namespace or "", meta["name"]) in self._collections[resource.plural].objects:
            raise ApiError(409, "AlreadyExists", f'{resource.qualified} "{meta["name"]}" already exists',
                           {"name": meta["name"], "group": resource.group, "kind": resource.plural})
        return self.create(obj)

    def _write(self, resource: Resource, stored: dict[str, Any], obj: dict[str, Any], sub: str | None,
               precondition: str | None) -> dict[str, Any]:
        """Store ``obj`` over ``stored``: the status subresource rules, generation, no-op writes."""
        meta = stored["metadata"]
        if precondition and precondition != meta["resourceVersion"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {resource.qualified} "{meta["name"]}": '
                                            "the object has been modified; please apply your changes to the latest "
                                            "version and try again",
                           {"name": meta["name"], "group": resource.group, "kind": resource.plural})
        if sub == "status":
            new = copy.deepcopy(stored)
            if "status" in obj:
                new["status"] = obj["status"]
            else:
                new.pop("status", None)
        else:
            new = copy.deepcopy(obj)
            if resource.status_subresource:
                if "status" in stored:
                    new["status"] = copy.deepcopy(stored["status"])
                else:
                    new.pop("status", None)
            for key in ("uid", "creationTimestamp", "namespace", "name"):
                if key in meta:
                    new["metadata"][key] = meta[key]
                else:
                    new["metadata"].pop(key, None)
        new["metadata"]["resourceVersion"] = meta["resourceVersion"]
        if "generation" in meta:
            new["metadata"]["generation"] = meta["generation"]
        if new == stored:
            return stored  # nothing changed: no new resourceVersion, no watch event
        return self.update(new)

    def _replace_http(self, resource: Resource, namespace: str | None, name: str, sub: str | None, body: Any,
                      query: dict[str, str], warnings: list[str]) -> dict[str, Any]:
        stored = self._stored(resource, namespace, name)
        obj = self._admit(resource, body, query, warnings)
        if obj["metadata"].get("name") != name:
            raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        precondition = obj["metadata"].get("resourceVersion")
        if not precondition and resource.custom:
            raise ApiError(422, "Invalid", f'{resource.kind}.{resource.group} "{name}" is invalid: '
                                           "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update")
        return self._write(resource, stored, obj, sub, precondition)

    def _patch_http(self, resource: Resource, namespace: str | None, name: str, sub: str | None, body: Any,
                    content_type: str, query: dict[str, str], warnings: list[str]) -> dict[str, Any]:
        stored = self._stored(resource, namespace, name)
        current = copy.deepcopy(stored)
        if content_type == "application/json-patch+json":
            if not isinstance(body, list):
                raise ApiError(400, "BadRequest", "the JSON patch must be a list of operations")
            try:
                patched = jsonpatch.apply_patch(current, body)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                raise ApiError(422, "Invalid", f"the JSON patch could not be applied: {exc}") from None
        elif content_type == "application/merge-patch+json" or (
                content_type == "application/strategic-merge-patch+json" and not resource.custom):
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "the merge patch must be a JSON object")
            patched = merge_patch(current, body)
        else:
            raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted "
                                                        f"media types include: application/json-patch+json, "
                                                        f"application/merge-patch+json (got {content_type})")
        patched = self._admit(resource, patched, query, warnings)
        precondition = (body.get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None
        return self._write(resource, stored, patched, sub, precondition)

    def _delete_http(self, resource: Resource, namespace: str | None, name: str, body: Any = None) -> dict[str, Any]:
        stored = self._stored(resource, namespace, name)
        pre = (body or {}).get("preconditions") if isinstance(body, dict) else None
        if isinstance(pre, dict):  # DeleteOptions.preconditions: the object must still be the one the client saw
            meta = stored["metadata"]
            for key, have in (("resourceVersion", meta.get("resourceVersion")), ("uid", meta.get("uid"))):
                if pre.get(key) is not None and pre[key] != have:
                    raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {resource.qualified} "{name}": '
                                                    f"Precondition failed: {key}: {pre[key]}, {key} in object "
                                                    f"meta: {have}")
        self.delete(resource.kind, namespace or "", name)
        return stored

    # --- reads over HTTP -----------------------------------------------------------------------------------
    def _list(self, plural: str, query: dict[str, str], namespace: str | None = None) -> web.Response:
        resource = self._collections[plural].resource
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
            selector = _selector(query)
            objects = self._collections[plural].objects
            items = [objects[k] for k in sorted(objects)
                     if (namespace is None or k[0] == namespace) and (selector is None or selector(objects[k]))]
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
        body = {"kind": f"{resource.kind}List", "apiVersion": resource.api_version, "metadata": meta, "items": page}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _watch(self, request: web.Request, plural: str, query: dict[str, str],
                     namespace: str | None = None) -> web.StreamResponse:
        coll = self._collections[plural]
        since = int(query.get("resourceVersion") or 0)
        watcher = _Watcher(plural, query.get("allowWatchBookmarks") in ("true", "1"), namespace, _selector(query))
        if since and since < coll.compacted:
            message = f"too old resource version: {since} ({coll.compacted})"
            if self.gone_as_http:
                return web.json_response(status(410, "Expired", message), status=410)
            events: list[Any] = [{"type": "ERROR", "object": status(410, "Expired", message)}, _END]
        elif self.hung:
            events = []
        elif since:
            events = [event for version, event in coll.history if version > since and watcher.wants(event)]
        else:  # no version: the current state as ADDED events ("start at any")
            events = [e for e in ({"type": "ADDED", "object": obj} for obj in coll.objects.values()) if watcher.wants(e)]
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
        resource = self._collections[plural].resource
        while True:
            await asyncio.sleep(interval)
            if not self.hung:
                watcher.queue.put_nowait({"type": "BOOKMARK", "object": {
                    "kind": resource.kind, "apiVersion": resource.api_version,
                    "metadata": {"resourceVersion": str(self.version)}}})


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    """What generation tracks: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}
