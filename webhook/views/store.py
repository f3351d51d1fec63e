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

Reservations (:class:`webhook.views.ledger.Reservation`): a pod just admitted (a
non-dry-run CREATE that was allowed) counts in its namespace's usage until the pod watch
reports it: by name, or, for a pod created with ``generateName`` only, as the next pod of
that ``generateName`` the watch adds in that namespace. An admitted in-place resize counts
its increase until the watch reports the pod with changed usage. A reservation the watch
never confirms (the creation failed further down the chain, e.g. another webhook denied
it) expires ``reservation_ttl`` seconds after the admission, but only once the pod watch
has been heard from (an event, a bookmark or a list) after that moment: a watch that went
silent cannot release reservations, so it cannot let a tenant's quota be spent twice.

Writers build what they replace outside the lock and swap it in, so a relist of every pod
never makes an admission wait for it.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson

from webhook.core.cluster_state import NAME_LABEL, NamespaceSums, add_usage
from webhook.core.pod_resources import quota_usage
from webhook.core.quantity import QuantityError
from webhook.views.ledger import Reservation

Usage = Mapping[str, Decimal]
KINDS = ("Pod", "Namespace", "NetworkPolicy", "ResourceQuota")
USAGE_CACHE = 1024  # distinct pod resource shapes remembered (cleared when full)
VALUE_CACHE = 65536  # distinct quantities shared between usages (cleared when full)
INTERNED_CACHE = 4096  # distinct usage mappings shared between pods (cleared when full; a relist prunes it)
ARRIVALS_KEPT = 256
SUMS_KEPT = 1024  # namespace sets whose usage sum is kept up to date (cleared when full)  # unmatched arrivals remembered per (namespace, generateName)


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


class Tables:
    """The tables of one kind being rebuilt from a fresh list (see :meth:`ClusterStore.builder`).

    Filled item by item straight into plain dicts of strings and usages, which Python's cycle
    collector does not track: a relist of every pod adds almost nothing for it to scan, so it
    triggers no full collection that would stall the admissions being answered meanwhile.
    """

    def __init__(self, store: ClusterStore, kind: str):
        self.store = store
        self.kind = kind
        self.pods: dict[str, dict[str, Usage]] = {}
        self.totals: dict[str, dict[str, Decimal]] = {}
        self.interned: dict[tuple[tuple[str, ...], tuple[Decimal, ...]], Usage] = {}
        self.labels: dict[str, dict[str, str]] = {}
        self.table: dict[str, dict[str, dict[str, Any]]] = {}
        self.count = 0

    def add(self, obj: Mapping[str, Any]) -> None:
        self.add_compacted(self.store.compact(self.kind, obj))

    def add_compacted(self, item: Any) -> None:
        self.count += 1
        if self.kind == "Pod":
            (ns, name), usage = item
            usage = self.interned.setdefault(_shape(usage), usage)
            pods = self.pods.get(ns)
            if pods is None:
                pods = self.pods[ns] = {}
                self.totals[ns] = {}
            total = self.totals[ns]
            previous = pods.get(name)
            pods[name] = usage
            if previous is not None:
                add_usage(total, previous, -1)
            add_usage(total, usage)
        elif self.kind == "Namespace":
            name, labels = item
            self.labels[name] = labels
        else:
            (ns, name), kept = item
            self.table.setdefault(ns, {})[name] = kept


class ClusterStore:
    """The cluster view's data; implements the core's ``ClusterState`` protocol."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, reservation_ttl: float = 30.0,
                 on_change: Callable[[], None] | None = None):
        self.lock = threading.RLock()
        self._clock = clock
        self._ttl = reservation_ttl
        self.on_change = on_change
        self._labels: dict[str, dict[str, str]] = {}
        self._revision = 0  # bumped by every change of the namespaces or their labels
        # sums of the live usage of namespace sets asked for (a tenant's namespaces), kept up to date event by
        # event: a tenant's quota weighs one mapping, not its every namespace, per admission
        self._sums = NamespaceSums(SUMS_KEPT)
        self._pods: dict[str, dict[str, Usage]] = {}
        self._usage: dict[str, dict[str, Decimal]] = {}
        self._netpols: dict[str, dict[str, dict[str, Any]]] = {}
        self._quotas: dict[str, dict[str, dict[str, Any]]] = {}
        self._reserved: dict[str, dict[str, Reservation]] = {}  # namespace -> id -> reservation
        self._arrivals: dict[tuple[str, str], list[float]] = {}  # (ns, generateName) -> unmatched pod arrivals
        self._heard: dict[str, float] = {}  # kind -> when its list or watch last told us something
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

    def namespaces_revision(self) -> int:
        return self._revision

    def namespace_usage(self, namespace: str) -> Usage:
        with self.lock:
            usage = dict(self._usage.get(namespace, {}))
            reserved = self._reserved.get(namespace)
            if reserved:
                now = self._clock()
                for res in reserved.values():
                    if not self._expired(res, now):
                        add_usage(usage, res.usage)
            return usage

    def usage_of(self, namespaces: frozenset[str]) -> Usage:
        with self.lock:
            total = dict(self._sums.get(namespaces, self._usage.get))
            if self._reserved:
                now = self._clock()
                for namespace, reserved in self._reserved.items():
                    if namespace in namespaces:
                        for res in reserved.values():
                            if not self._expired(res, now):
                                add_usage(total, res.usage)
            return total

    def _count(self, namespace: str, usage: Usage, sign: int) -> None:
        """Live usage of ``namespace`` changed by ``sign * usage``: its sums follow."""
        add_usage(self._usage.setdefault(namespace, {}), usage, sign)
        self._sums.changed(namespace, usage, sign)

    def pod_usage(self, namespace: str, name: str) -> Usage | None:
        with self.lock:
            live = self._pods.get(namespace, {}).get(name)
            if live is not None:
                return live
            now = self._clock()
            for res in self._reserved.get(namespace, {}).values():
                if res.name == name and not res.resize and not self._expired(res, now):
                    return res.usage
            return None

    def live_pod_usage(self, namespace: str, name: str) -> Usage | None:
        """What the watch reports for pod ``namespace/name`` (reservations aside); None when unknown."""
        with self.lock:
            return self._pods.get(namespace, {}).get(name)

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
        """The reservations still counted, by (namespace, name) (see :attr:`Reservation.key`)."""
        with self.lock:
            now = self._clock()
            return {r.key: r.usage for by_id in self._reserved.values() for r in by_id.values()
                    if not self._expired(r, now)}

    def pending(self, namespace: str) -> int:
        """Reservations still counted in ``namespace``."""
        with self.lock:
            now = self._clock()
            return sum(1 for r in self._reserved.get(namespace, {}).values() if not self._expired(r, now))

    def heard(self, kind: str) -> float | None:
        """When the list or watch of ``kind`` last told us something (None: never)."""
        return self._heard.get(kind)

    def note_heard(self, kind: str) -> None:
        """The watch of ``kind`` delivered a bookmark: it is alive and current up to now."""
        with self.lock:
            self._heard[kind] = self._clock()

    # --- writing (reflector threads) ---------------------------------------------------------------
    def compact(self, kind: str, obj: Mapping[str, Any]) -> Any:
        """The part of an object this store keeps (what ``replace`` takes for each item)."""
        meta = _mapping(obj.get("metadata"))
        if kind == "Pod":  # only the pod reflector's thread computes usages: no lock (replace shares them)
            return _key(obj), self._usage_of(obj)
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

    def builder(self, kind: str) -> Tables:
        """Empty tables for a fresh list of ``kind``: fill them (:meth:`Tables.add`) page by page, without
        the lock (admissions keep reading the current tables meanwhile), then :meth:`install` them."""
        return Tables(self, kind)

    def install(self, tables: Tables, *, notify: bool = True) -> None:
        """The complete list in ``tables`` replaces what was known of its kind, in one step under the lock."""
        kind = tables.kind
        with self.lock:
            if kind == "Pod":
                pods = tables.pods
                self._pods, self._usage = pods, tables.totals
                self._sums.clear()  # recomputed from the new tables when asked
                interned = tables.interned
                for by_id in self._reserved.values():
                    for res in by_id.values():
                        interned.setdefault(_shape(res.usage), res.usage)
                self._interned = interned  # only the mappings still in use
                for ns, by_id in list(self._reserved.items()):
                    for rid, res in list(by_id.items()):
                        if res.name and not res.resize and res.name in pods.get(ns, {}):
                            del by_id[rid]  # confirmed: the live pod counts instead
                        elif res.resize and pods.get(ns, {}).get(res.name) != res.before:
                            del by_id[rid]  # the resize (or the pod's end) is in the list
                    if not by_id:
                        del self._reserved[ns]
            elif kind == "Namespace":
                self._labels = tables.labels
                self._revision += 1
            elif kind == "NetworkPolicy":
                self._netpols = tables.table
            else:
                self._quotas = tables.table
            self._listed.add(kind)
            self._heard[kind] = self._clock()
        if notify:
            self._changed()

    def replace(self, kind: str, compacted: Iterable[Any], *, notify: bool = True) -> None:
        """A fresh full list of ``kind`` (items from :meth:`compact`) replaces what was known."""
        tables = self.builder(kind)
        for item in compacted:
            tables.add_compacted(item)
        self.install(tables, notify=notify)

    def apply(self, kind: str, event_type: str, obj: Mapping[str, Any], *, notify: bool = True) -> None:
        """One watch event (ADDED, MODIFIED or DELETED)."""
        deleted = event_type == "DELETED"
        with self.lock:
            self._heard[kind] = self._clock()
            if kind == "Pod":
                ns, name = _key(obj)
                known = name in self._pods.get(ns, {})
                self._drop_pod(ns, name)
                usage: Usage | None = None
                if not deleted:
                    usage = self._intern(self._usage_of(obj))
                    self._pods.setdefault(ns, {})[name] = usage
                    self._count(ns, usage, 1)
                self._confirm(ns, name, usage, obj if event_type == "ADDED" and not known else None)
            elif kind == "Namespace":
                name, labels = self.compact(kind, obj)
                # only a change of the namespaces or their labels is a new revision (tenant members are
                # recomputed per revision); the mapping kept stays the same object while its labels do
                if deleted:
                    if self._labels.pop(name, None) is not None:
                        self._revision += 1
                elif self._labels.get(name) != labels:
                    self._labels[name] = labels
                    self._revision += 1
            else:
                table = self._netpols if kind == "NetworkPolicy" else self._quotas
                (ns, name), kept = self.compact(kind, obj)
                if deleted:
                    table.get(ns, {}).pop(name, None)
                else:
                    table.setdefault(ns, {})[name] = kept
        if notify:
            self._changed()

    def reserve(self, reservation: Reservation) -> bool:
        """Count ``reservation`` until the watch confirms it or it expires; False when there is nothing to
        count (the watch was faster and reports the pod already, or a matching arrival was seen)."""
        with self.lock:
            counted = self._absorb(reservation, self._clock())
        if counted:
            self._changed()
        return counted

    def absorb(self, reservations: Iterable[Reservation]) -> None:
        """Reservations other workers made (from the shared ledger), counted like this worker's own."""
        with self.lock:
            now = self._clock()
            for reservation in reservations:
                self._absorb(reservation, now)

    def _absorb(self, res: Reservation, now: float) -> bool:
        ns = res.namespace
        live = self._pods.get(ns, {})
        if res.resize:
            if live.get(res.name) != res.before:
                return False  # the watch already reports the resized (or deleted) pod
        elif res.name:
            if res.name in live:
                return False  # the watch was faster: the live pod counts already
            by_id = self._reserved.get(ns, {})
            for rid in [rid for rid, r in by_id.items() if r.name == res.name and not r.resize]:
                del by_id[rid]  # the API server sent the same creation again: it replaces the first
        else:
            arrivals = self._arrivals.get((ns, res.generate_name))
            if arrivals:
                for index, seen in enumerate(arrivals):
                    if seen >= res.at:  # a pod of this generateName arrived after the admission: this one
                        del arrivals[index]
                        return False
        self._prune(now)
        self._reserved.setdefault(ns, {})[res.id] = res
        return True

    def _confirm(self, ns: str, name: str, usage: Usage | None, added: Mapping[str, Any] | None) -> None:
        """The watch reported pod ``ns/name`` (``usage`` None: deleted): release what it confirms."""
        by_id = self._reserved.get(ns)
        if by_id:
            for rid, res in list(by_id.items()):
                if res.name == name and (not res.resize or usage != res.before):
                    del by_id[rid]
        if added is not None:  # a new pod: it may be the one a generateName reservation stands for
            generate_name = _mapping(added.get("metadata")).get("generateName")
            if isinstance(generate_name, str) and generate_name:
                matched = self._oldest_nameless(ns, generate_name)
                if matched is not None:
                    del self._reserved[ns][matched.id]
                else:
                    arrivals = self._arrivals.setdefault((ns, generate_name), [])
                    arrivals.append(self._clock())
                    del arrivals[:-ARRIVALS_KEPT]
        if by_id is not None and not by_id:
            self._reserved.pop(ns, None)

    def _oldest_nameless(self, ns: str, generate_name: str) -> Reservation | None:
        now = self._clock()
        candidates = [r for r in self._reserved.get(ns, {}).values()
                      if not r.name and r.generate_name == generate_name and r.at <= now]
        return min(candidates, key=lambda r: r.at) if candidates else None

    def _expired(self, res: Reservation, now: float) -> bool:
        """Past its TTL, and the pod watch was heard from after that: a silent watch keeps it counted."""
        deadline = res.at + self._ttl
        heard = self._heard.get("Pod")
        return now >= deadline and heard is not None and heard >= deadline

    def _prune(self, now: float) -> None:
        for ns, by_id in list(self._reserved.items()):
            for rid in [rid for rid, r in by_id.items() if self._expired(r, now)]:
                del by_id[rid]
            if not by_id:
                del self._reserved[ns]
        horizon = now - 2 * self._ttl
        for key, arrivals in list(self._arrivals.items()):
            arrivals[:] = [t for t in arrivals if t >= horizon]
            if not arrivals:
                del self._arrivals[key]

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
            self._count(ns, previous, -1)
            if not pods:
                del self._pods[ns]
                del self._usage[ns]

    def _changed(self) -> None:
        callback = self.on_change
        if callback is not None:
            callback()
