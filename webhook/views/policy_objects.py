"""TenantPolicy and ClusterPolicy objects read from the cluster: watched (``serve --policies-from
cluster``) or listed once (``dry-run --policies-from-cluster``).

The watch is the cluster view's reflector (webhook.views.reflector: paged consistent list,
watch from its resourceVersion, bookmarks, 410 relist, backoff), one per kind, writing
into :class:`PolicyObjects` instead of the view's store. ``revision`` grows only when
what the loader reads changes (spec, name, labels, annotations): a status written by the
elected replica never triggers a reload.

The server loads them through :class:`ClusterPolicySource` with the same rules as files
(webhook.server.policy_store): a set with an error keeps the last good one. What the last
attempt made of each object (loaded at which generation, or the errors about it) is kept
in :attr:`ClusterPolicySource.outcome`, for the status the elected replica writes.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from kubernetes import client as k8s_client

from webhook.core.plan import PolicySet
from webhook.policy.resources import GROUP, PLURALS, VERSION, errors_by_object, load_objects, object_name
from webhook.views.changes import Changes
from webhook.views.reflector import Reflector, ReflectorSettings, Resource
from webhook.views.snapshot import list_items

KINDS = tuple(PLURALS)  # TenantPolicy, ClusterPolicy


def _content(obj: Mapping[str, Any]) -> bytes:
    """What a load reads of an object (its status and the server's bookkeeping left out)."""
    meta = obj.get("metadata") or {}
    kept = {k: meta.get(k) for k in ("name", "labels", "annotations")}
    body = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    return orjson.dumps([kept, body], option=orjson.OPT_SORT_KEYS)


class _Batch(list):
    """One fresh list of a kind (the reflector's ``builder``)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def add(self, obj: Any) -> None:
        obj.setdefault("kind", self.kind)  # list items of custom resources carry it; be sure
        self.append(obj)


class PolicyObjects:
    """The policy objects as last seen, by kind and name; written by reflector threads, read anywhere."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self._content: dict[tuple[str, str], bytes] = {}
        self._listed: set[str] = set()
        self.revision = 0  # grows when what a load reads changed

    # --- the reflector's sink ----------------------------------------------------------------------------
    def builder(self, kind: str) -> _Batch:
        return _Batch(kind)

    # ``notify``: the reflector notifies itself after each change (``WatchedPolicies._changed``)
    def install(self, tables: _Batch, *, notify: bool = True) -> None:
        kind = tables.kind
        with self._lock:
            fresh = {(o.get("metadata") or {}).get("name", ""): o for o in tables}
            changed = kind not in self._listed or set(fresh) != set(self._objects[kind]) or any(
                self._content.get((kind, name)) != _content(obj) for name, obj in fresh.items())
            for name in self._objects[kind]:
                self._content.pop((kind, name), None)
            self._objects[kind] = fresh
            for name, obj in fresh.items():
                self._content[(kind, name)] = _content(obj)
            self._listed.add(kind)
            self.revision += changed

    def apply(self, kind: str, event_type: str, obj: Any, *, notify: bool = True) -> None:
        name = (obj.get("metadata") or {}).get("name", "")
        obj.setdefault("kind", kind)
        with self._lock:
            if event_type == "DELETED":
                changed = self._objects[kind].pop(name, None) is not None
                self._content.pop((kind, name), None)
            else:
                content = _content(obj)
                changed = self._content.get((kind, name)) != content
                self._objects[kind][name] = obj
                self._content[(kind, name)] = content
            self.revision += changed

    def note_heard(self, kind: str) -> None:
        pass

    # --- reading -----------------------------------------------------------------------------------------
    @property
    def synced(self) -> bool:
        """Both kinds listed once."""
        return self._listed >= set(KINDS)

    def snapshot(self) -> tuple[int, list[dict[str, Any]]]:
        """(revision, every object) read together."""
        with self._lock:
            return self.revision, [o for kind in KINDS for o in self._objects[kind].values()]


# which object, in which generation: an object deleted and created again starts at generation 1 again,
# so the uid tells the two apart
Version = tuple[str | None, int | None]


def version_of(obj: Mapping[str, Any]) -> Version:
    meta = obj.get("metadata") or {}
    return meta.get("uid"), meta.get("generation")


@dataclass(frozen=True, slots=True)
class LoadOutcome:
    """What one load attempt made of the objects: for each, the generation it read and its errors."""

    ok: bool
    generation: str  # the policy set generation served after the attempt
    read: dict[str, Version] = field(default_factory=dict)  # "TenantPolicy/x" -> (uid, metadata.generation)
    errors: dict[str, list[str]] = field(default_factory=dict)  # "TenantPolicy/x" -> its error lines
    other_errors: tuple[str, ...] = ()  # errors about no object of the set (none expected)
    at: float = 0.0


class ClusterPolicySource:
    """The PolicySource (webhook.server.policy_store) of ``serve --policies-from cluster``."""

    name = "the cluster's TenantPolicy and ClusterPolicy objects"

    def __init__(self, objects: PolicyObjects) -> None:
        self.objects = objects
        self.outcome: LoadOutcome | None = None  # the last attempt
        self.served: dict[str, Version] = {}  # what the served set was loaded from: name -> (uid, generation)

    def fingerprint(self) -> int:
        return self.objects.revision

    def load(self) -> PolicySet:
        _, objects = self.objects.snapshot()
        read = {object_name(o): version_of(o) for o in objects}
        try:
            policies = load_objects(objects)
        except Exception as exc:
            lines = list(getattr(exc, "errors", None) or [f"{type(exc).__name__}: {exc}"])
            by_object = errors_by_object(lines, read)
            other = tuple(line for line in lines if not any(line.startswith(name + ":") for name in read))
            self.outcome = LoadOutcome(False, "", read, by_object, other, time.time())
            raise
        self.served = read
        self.outcome = LoadOutcome(True, policies.generation, read, {}, (), time.time())
        return policies

    def named(self, errors: Iterable[str]) -> tuple[str, ...]:
        names = {object_name(o) for o in self.objects.snapshot()[1]}
        return tuple(errors_by_object(errors, names))


class WatchedPolicies:
    """Two reflectors (TenantPolicy, ClusterPolicy) keeping :class:`PolicyObjects` current."""

    def __init__(self, api: k8s_client.ApiClient, settings: ReflectorSettings | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.objects = PolicyObjects()
        self.source = ClusterPolicySource(self.objects)
        custom = k8s_client.CustomObjectsApi(api)
        settings = settings or ReflectorSettings()
        self.reflectors = [
            Reflector(Resource(kind, plural, functools.partial(custom.list_cluster_custom_object, GROUP, VERSION,
                                                               plural)),
                      self.objects, settings, clock, self._changed)
            for kind, plural in PLURALS.items()
        ]
        self._changes = Changes()

    def add_listener(self, listener: Callable[[], None]) -> None:
        """``listener()`` is called on the event loop after every change of the objects."""
        self._changes.add_listener(listener)

    def start(self) -> None:
        self._changes.bind()
        for reflector in self.reflectors:
            reflector.start()

    async def stop(self, timeout: float = 10.0) -> None:
        for reflector in self.reflectors:
            reflector.stop()
        await asyncio.to_thread(lambda: [r.join(timeout) for r in self.reflectors])

    @property
    def synced(self) -> bool:
        return self.objects.synced

    def problems(self) -> list[str]:
        """Why the objects are not (or no longer) being read: the reflectors' last errors."""
        return [f"{r.resource.plural}: {r.status.last_error}" for r in self.reflectors
                if r.status.last_error and not r.status.connected]

    def _changed(self) -> None:
        self._changes.notify_threadsafe()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        """Until ``predicate()`` holds (checked at every change); on timeout, whether it holds then."""
        return await self._changes.wait(predicate, timeout)


def read_policy_objects(api: k8s_client.ApiClient, page_size: int = 500) -> list[dict[str, Any]]:
    """Every TenantPolicy and ClusterPolicy in the cluster, listed once (paged)."""
    custom = k8s_client.CustomObjectsApi(api)
    out: list[dict[str, Any]] = []
    for kind, plural in PLURALS.items():
        for item in list_items(functools.partial(custom.list_cluster_custom_object, GROUP, VERSION, plural),
                               page_size=page_size):
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", f"{GROUP}/{VERSION}")
            out.append(item)
    return out
