"""What the watch-backed cluster view keeps: only what admission decisions read.

Thread-safe (one re-entrant lock): the reflector threads write, the server's
event loop reads. Per kind:

- Pods: per namespace, pod name -> its quota usage (the ResourceQuota keys of
  :func:`webhook.core.pod_resources.quota_usage`), plus the namespace's summed
  usage, kept up to date event by event. Whole pod objects are never kept, and
  equal usage mappings are shared (interned): most pods of a Deployment cost
  one dict between them. The usage itself is computed once per distinct
  resource shape (:func:`usage_key`: every field ``quota_usage`` reads).
  Terminal pods (Succeeded/Failed) count nothing but ``count/pods``;
- Namespaces: name -> labels;
- NetworkPolicies and ResourceQuotas: per namespace, name -> ``metadata``
  (name, namespace) and ``spec`` (and a quota's ``status``).

Reservations: a pod just admitted (a non-dry-run CREATE that was allowed)
counts in its namespace's usage until the pod watch reports it (then the live
pod counts instead) or until ``reservation_ttl`` seconds pass (the create
failed further down the chain, e.g. another webhook denied it).
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from webhook.core.cluster_state import NAME_LABEL, add_usage
from webhook.core.pod_resources import quota_usage
from webhook.core.quantity import QuantityError

Usage = Mapping[str, Decimal]
KINDS = ("Pod", "Namespace", "NetworkPolicy", "ResourceQuota")
USAGE_CACHE = 1024  # distinct pod resource shapes remembered (cleared when full)
VALUE_CACHE = 65536  # distinct quantities shared between usages (cleared when full)
INTERNED_CACHE = 4096  # distinct usage mappings shared between pods (cleared when full; a relist prunes it)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = _mapping(obj.get("metadata"))
    return sys.intern(str(meta.get("namespace") or "")), str(meta.get("name") or "")


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _containers(spec: Mapping[str, Any], key: str) -> list[Any]:
    return [(c.get("name"), c.get("resources"), c.get("restartPolicy"))
            for c in _list(spec.get(key)) if isinstance(c, dict)]


def _statuses(status: Mapping[str, Any], key: str) -> list[Any]:
    return [(c.get("name"), c.get("resources"), c.get("allocatedResources"))
            for c in _list(status.get(key)) if isinstance(c, dict)]


def usage_key(pod: Mapping[str, Any]) -> bytes:
    """Everything :func:`quota_usage` reads of a pod (without a clock), as bytes: pods of one
    template share it, so their usage is computed once. Raises TypeError on non-JSON values."""
    spec = _mapping(pod.get("spec"))
    status = _mapping(pod.get("status"))
    resize = [(c.get("reason"),) for c in _list(status.get("conditions"))
              if isinstance(c, dict) and c.get("type") == "PodResizePending"]
    return orjson.dumps(
        [status.get("phase"), status.get("resize"), resize,
         _containers(spec, "containers"), _containers(spec, "initContainers"),
         spec.get("overhead"), spec.get("resources"),
         _statuses(status, "containerStatuses"), _statuses(status, "initContainerStatuses")],
        option=orjson.OPT_SORT_KEYS,
    )


def _shape(usage: Usage) -> tuple[tuple[str, ...], tuple[Decimal, ...]]:
    keys = tuple(sorted(usage))
    return keys, tuple(usage[k] for k in keys)


@dataclass(slots=True)
class _Reservation:
    usage: Usage
    expires: float


class ClusterStore:
    """The cluster view's data; implements the core's ``ClusterState`` protocol."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, reservation_ttl: float = 30.0,
                 on_change: Callable[[], None] | None = None):
        self.lock = threading.RLock()
        self._clock = clock
        self._ttl = reservation_ttl
        self.on_change = on_change
        self._labels: dict[str, dict[str, str]] = {}
        self._pods: dict[str, dict[str, Usage]] = {}
        self._usage: dict[str, dict[str, Decimal]] = {}
        self._netpols: dict[str, dict[str, dict[str, Any]]] = {}
        self._quotas: dict[str, dict[str, dict[str, Any]]] = {}
        self._reserved: dict[tuple[str, str], _Reservation] = {}
        self._interned: dict[tuple[tuple[str, ...], tuple[Decimal, ...]], Usage] = {}
        self._by_key: dict[bytes, Usage] = {}  # usage_key -> usage, bounded by USAGE_CACHE
        self._values: dict[Decimal, Decimal] = {}  # one object per distinct quantity, bounded by VALUE_CACHE
        self._listed: set[str] = set()
        self.unparseable_pods = 0  # pods whose resources do not parse (counted as 1 pod, nothing else)

    # --- ClusterState ------------------------------------------------------------------------
    def namespaces(self) -> Iterable[str]:
        with self.lock:
            return list(self._labels)

    def namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        with self.lock:
            return self._labels.get(namespace)

    def namespace_usage(self, namespace: str) -> Usage:
        with self.lock:
            usage = dict(self._usage.get(namespace, {}))
            if self._reserved:
                now = self._clock()
                for (ns, _), res in self._reserved.items():
                    if ns == namespace and res.expires > now:
                        add_usage(usage, res.usage)
            return usage

    def pod_usage(self, namespace: str, name: str) -> Usage | None:
        with self.lock:
            live = self._pods.get(namespace, {}).get(name)
            if live is not None:
                return live
            res = self._reserved.get((namespace, name))
            return res.usage if res is not None and res.expires > self._clock() else None

    def network_policies(self, namespace: str) -> Sequence[Mapping[str, Any]]:
        with self.lock:
            return list(self._netpols.get(namespace, {}).values())

    def network_policies_known(self, namespace: str) -> bool:
        return "NetworkPolicy" in self._listed

    def resource_quotas(self, namespace: str) -> Sequence[Mapping[str, Any]]:
        with self.lock:
            return list(self._quotas.get(namespace, {}).values())

    # --- introspection ---------------------------------------------------------------------------
    def pod_count(self) -> int:
        with self.lock:
            return sum(len(p) for p in self._pods.values())

    def reservations(self) -> dict[tuple[str, str], Usage]:
        with self.lock:
            now = self._clock()
            return {k: r.usage for k, r in self._reserved.items() if r.expires > now}

    # --- writing (reflector threads) ---------------------------------------------------------------
    def compact(self, kind: str, obj: Mapping[str, Any]) -> Any:
        """The part of an object this store keeps (what ``replace`` takes for each item)."""
        meta = _mapping(obj.get("metadata"))
        if kind == "Pod":
            usage = self._usage_of(obj)
            with self.lock:
                return _key(obj), self._intern(usage)
        if kind == "Namespace":
            name = str(meta.get("name") or "")
            labels = {str(k): str(v) for k, v in _mapping(meta.get("labels")).items()}
            labels[NAME_LABEL] = name  # the API server sets it to the name, whatever the object says
            return name, labels
        kept: dict[str, Any] = {
            "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")},
            "spec": dict(_mapping(obj.get("spec"))),
        }
        if kind == "ResourceQuota" and isinstance(obj.get("status"), dict):
            kept["status"] = dict(obj["status"])
        return _key(obj), kept

    def replace(self, kind: str, compacted: Iterable[Any], *, notify: bool = True) -> None:
        """A fresh full list of ``kind`` (items from :meth:`compact`) replaces what was known."""
        with self.lock:
            if kind == "Pod":
                pods: dict[str, dict[str, Usage]] = {}
                totals: dict[str, dict[str, Decimal]] = {}
                interned: dict[tuple[tuple[str, ...], tuple[Decimal, ...]], Usage] = {}
                for (ns, name), usage in compacted:
                    usage = interned.setdefault(_shape(usage), usage)
                    previous = pods.setdefault(ns, {}).get(name)
                    pods[ns][name] = usage
                    total = totals.setdefault(ns, {})
                    if previous is not None:
                        add_usage(total, previous, -1)
                    add_usage(total, usage)
                self._pods, self._usage = pods, totals
                for res in self._reserved.values():
                    interned.setdefault(_shape(res.usage), res.usage)
                self._interned = interned  # only the mappings still in use
                for key in [k for k in self._reserved if k[1] in pods.get(k[0], {})]:
                    del self._reserved[key]
            elif kind == "Namespace":
                self._labels = {name: labels for name, labels in compacted}
            else:
                table: dict[str, dict[str, dict[str, Any]]] = {}
                for (ns, name), kept in compacted:
                    table.setdefault(ns, {})[name] = kept
                if kind == "NetworkPolicy":
                    self._netpols = table
                else:
                    self._quotas = table
            self._listed.add(kind)
        if notify:
            self._changed()

    def apply(self, kind: str, event_type: str, obj: Mapping[str, Any], *, notify: bool = True) -> None:
        """One watch event (ADDED, MODIFIED or DELETED)."""
        deleted = event_type == "DELETED"
        with self.lock:
            if kind == "Pod":
                ns, name = _key(obj)
                self._reserved.pop((ns, name), None)  # the watch confirms (or ends) it
                self._drop_pod(ns, name)
                if not deleted:
                    usage = self._intern(self._usage_of(obj))
                    self._pods.setdefault(ns, {})[name] = usage
                    add_usage(self._usage.setdefault(ns, {}), usage)
            elif kind == "Namespace":
                name, labels = self.compact(kind, obj)
                if deleted:
                    self._labels.pop(name, None)
                else:
                    self._labels[name] = labels
            else:
                table = self._netpols if kind == "NetworkPolicy" else self._quotas
                (ns, name), kept = self.compact(kind, obj)
                if deleted:
                    table.get(ns, {}).pop(name, None)
                else:
                    table.setdefault(ns, {})[name] = kept
        if notify:
            self._changed()

    def reserve(self, namespace: str, name: str | None, usage: Usage) -> bool:
        """Count ``usage`` in ``namespace`` until the pod is watched or the reservation expires."""
        with self.lock:
            if name and name in self._pods.get(namespace, {}):
                return False  # the watch was faster: the live pod counts already
            now = self._clock()
            for key in [k for k, r in self._reserved.items() if r.expires <= now]:
                del self._reserved[key]
            key = (namespace, name or f"~{uuid.uuid4()}")
            self._reserved[key] = _Reservation(self._intern(dict(usage)), now + self._ttl)
        self._changed()
        return True

    # --- helpers -----------------------------------------------------------------------------------
    def _usage_of(self, pod: Mapping[str, Any]) -> Usage:
        try:
            key: bytes | None = usage_key(pod)
        except TypeError:
            key = None
        if key is not None:
            cached = self._by_key.get(key)
            if cached is not None:
                return cached
        try:
            usage = quota_usage(pod)
        except QuantityError:
            self.unparseable_pods += 1  # the API server validated it; count the pod, not its resources
            usage = {"pods": Decimal(1), "count/pods": Decimal(1)}
        if key is not None:
            if len(self._by_key) >= USAGE_CACHE:
                self._by_key.clear()
            self._by_key[key] = usage
        return usage

    def _intern(self, usage: Usage) -> Usage:
        """One shared mapping per distinct usage, built of shared Decimal values (resource values repeat)."""
        key = _shape(usage)
        found = self._interned.get(key)
        if found is None:
            if len(self._interned) >= INTERNED_CACHE:
                self._interned.clear()  # pods keep their mappings; only sharing with new ones is lost
            values = self._values
            if len(values) >= VALUE_CACHE:
                values.clear()
            found = self._interned[key] = {k: values.setdefault(v, v) for k, v in usage.items()}
        return found

    def _drop_pod(self, ns: str, name: str) -> None:
        pods = self._pods.get(ns)
        previous = pods.pop(name, None) if pods is not None else None
        if previous is not None:
            add_usage(self._usage[ns], previous, -1)
            if not pods:
                del self._pods[ns]
                del self._usage[ns]

    def _changed(self) -> None:
        callback = self.on_change
        if callback is not None:
            callback()
