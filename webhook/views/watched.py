"""The watch-backed cluster view: the server's implementation of the core's ``ClusterState``.

Usage from the aiohttp server (see docs/cluster-view.md)::

    view = await open_cluster_view(kubeconfig=None, in_cluster=True)   # starts watching
    ...
    ready = view.ready                       # /readyz: every kind listed once, no watch down or silent
    decision = judge(request, policies, view)  # webhook.core.pipeline: evaluate + reserve, atomically
    ...
    await view.stop()

One reflector thread per kind (Pods, Namespaces, ResourceQuotas,
NetworkPolicies) drives the official, synchronous ``kubernetes`` client; the
store they write is read without blocking from the event loop. Threads rather
than ``kubernetes_asyncio``: the official client is already our dependency
(and the one the issue names), four long-lived threads cost nothing, and a
blocking read can be cut from the loop (``HTTPResponse.shutdown``), so
``stop()`` is prompt. Coroutines wait for the view through :meth:`wait_until`
(woken by every change, never by polling).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Self

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from webhook.core.decision import Decision
from webhook.core.pipeline import RecordRefused
from webhook.core.plan import RESIZE
from webhook.core.pod_resources import quota_usage
from webhook.core.quantity import QuantityError, exact_add
from webhook.core.request import AdmissionRequest
from webhook.views import ClusterViewError
from webhook.views.changes import Changes
from webhook.views.health import KindHealth, ViewHealth
from webhook.views.ledger import FileLedger, Ledger, LocalLedger, Reservation
from webhook.views.reflector import Reflector, ReflectorSettings, Resource
from webhook.views.store import ClusterStore, Usage

RESOURCES = ("pods", "namespaces", "resourcequotas", "networkpolicies")


@dataclass(frozen=True, slots=True)
class ViewSettings:
    """Tuning of the cluster view; the defaults suit a production API server."""

    reflector: ReflectorSettings = field(default_factory=ReflectorSettings)
    stale_after: float = 30.0  # a kind whose watch has been down this long makes the view stale
    reservation_ttl: float = 30.0  # seconds an admitted pod counts before the watch reports it
    max_reservations: int = 1000  # admitted pods per namespace counted while the watch has not reported them
    resources: tuple[str, ...] = RESOURCES
    clock: Callable[[], float] = time.monotonic


def _resources(api: k8s_client.ApiClient, names: Iterable[str]) -> list[Resource]:
    core = k8s_client.CoreV1Api(api)
    networking = k8s_client.NetworkingV1Api(api)
    table = {
        "pods": Resource("Pod", "pods", core.list_pod_for_all_namespaces),
        "namespaces": Resource("Namespace", "namespaces", core.list_namespace),
        "resourcequotas": Resource("ResourceQuota", "resourcequotas", core.list_resource_quota_for_all_namespaces),
        "networkpolicies": Resource("NetworkPolicy", "networkpolicies",
                                    networking.list_network_policy_for_all_namespaces),
    }
    unknown = set(names) - set(table)
    if unknown:
        raise ValueError(f"unknown resources {sorted(unknown)}; known: {', '.join(table)}")
    return [table[n] for n in names]


class WatchedClusterState:
    """``ClusterState`` kept current by list+watch; plus readiness, reservations and waiting."""

    def __init__(self, api: k8s_client.ApiClient, settings: ViewSettings | None = None, *,
                 owns_client: bool = False, ledger: Ledger | None = None):
        self.settings = settings or ViewSettings()
        self._api = api
        self._owns_client = owns_client
        self.ledger: Ledger = ledger or LocalLedger()
        self.store = ClusterStore(clock=self.settings.clock, reservation_ttl=self.settings.reservation_ttl,
                                  on_change=self._changed)
        self.reflectors = [
            Reflector(r, self.store, self.settings.reflector, self.settings.clock, self._changed)
            for r in _resources(api, self.settings.resources)
        ]
        self._changes = Changes()
        self._started = False

    @property
    def api(self) -> k8s_client.ApiClient:
        """The client the view reads with (the server's policy watch, Lease and writers share it)."""
        return self._api

    # --- ClusterState (read from the event loop, written by the reflector threads) ------------------
    def namespaces(self) -> Iterable[str]:
        return self.store.namespaces()

    def namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        return self.store.namespace_labels(namespace)

    def namespaces_revision(self) -> int:
        return self.store.namespaces_revision()

    def namespace_usage(self, namespace: str) -> Usage:
        return self.store.namespace_usage(namespace)

    def usage_of(self, namespaces: frozenset[str]) -> Usage:
        return self.store.usage_of(namespaces)

    def pod_usage(self, namespace: str, name: str) -> Usage | None:
        return self.store.pod_usage(namespace, name)

    def network_policies(self, namespace: str) -> Sequence[Mapping[str, Any]]:
        return self.store.network_policies(namespace)

    def network_policies_known(self, namespace: str) -> bool:
        return self.store.network_policies_known(namespace)

    def resource_quotas(self, namespace: str) -> Sequence[Mapping[str, Any]]:
        return self.store.resource_quotas(namespace)

    # --- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start watching (returns at once; see :meth:`wait_synced`)."""
        if self._started:
            return
        self._changes.bind()
        self._started = True
        for reflector in self.reflectors:
            reflector.start()

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop every watch and wait for the threads; closes the API client when the view made it."""
        for reflector in self.reflectors:
            reflector.stop()
        await asyncio.to_thread(lambda: [r.join(timeout) for r in self.reflectors])
        if self._owns_client:
            await asyncio.to_thread(self._api.close)
        self.ledger.close()
        self._started = False

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- readiness ----------------------------------------------------------------------------------
    @property
    def synced(self) -> bool:
        """Every watched kind has been listed completely at least once."""
        return all(r.status.synced for r in self.reflectors)

    @property
    def stale(self) -> bool:
        """Some kind's data may be old: its watch has been down longer than ``stale_after``, or has been
        open but silent (no event, no bookmark, no list) longer than the reflector's ``silence_timeout``."""
        return bool(self.stale_kinds())

    def stale_kinds(self) -> list[str]:
        return list(self.health().stale_kinds)

    @property
    def ready(self) -> bool:
        return self.synced and not self.stale

    def health(self) -> ViewHealth:
        """The view's status for ``/readyz`` and the metrics (see webhook.views.health)."""
        now = self.settings.clock()
        silence = self.settings.reflector.silence_timeout
        kinds = []
        for reflector in self.reflectors:
            status = reflector.status
            since = status.disconnected_since
            heard = self.store.heard(reflector.resource.kind)
            heard_age = None if heard is None else now - heard
            stale = None
            if status.synced:
                if since is not None and now - since > self.settings.stale_after:
                    stale = f"no watch for {now - since:.0f}s"
                elif heard_age is not None and heard_age > silence:
                    stale = f"silent for {heard_age:.0f}s"
            kinds.append(KindHealth(
                kind=reflector.resource.plural, synced=status.synced, connected=status.connected, stale=stale,
                lists=status.lists, relists=status.relists, watch_errors=status.errors,
                last_resync_seconds=status.last_resync_seconds, last_heard_seconds=heard_age))
        return ViewHealth(synced=all(k.synced for k in kinds), kinds=tuple(kinds),
                          reservations=len(self.store.reservations()),
                          unparseable_pods=self.store.unparseable_pods)

    # --- usage view (webhook.core.pipeline) --------------------------------------------------------
    @contextmanager
    def locked(self) -> Iterator[None]:
        """No other admission (in this process, or in another worker sharing the ledger) judges or reserves
        meanwhile; the reservations other workers made are counted first."""
        with self.ledger.lock(), self.store.lock:
            self.store.absorb(self.ledger.fetch())
            yield

    def record_admitted(self, request: AdmissionRequest, decision: Decision) -> None:
        """Reserve an admitted pod's usage (a creation), or its increase (an in-place resize), until the watch
        reports it; shared with the other workers through the ledger."""
        reservation = self.reservation_for(request, decision)
        if reservation is None:
            return
        pending = self.store.pending(reservation.namespace)
        if pending >= self.settings.max_reservations:
            raise RecordRefused(f"namespace {reservation.namespace} has {pending} admitted pods its watch has not "
                                "reported yet; retry once the cluster view catches up")
        if self.store.reserve(reservation):
            self.ledger.publish(reservation)

    def reservation_for(self, request: AdmissionRequest, decision: Decision) -> Reservation | None:
        obj = decision.mutated if decision.mutated is not None else request.obj
        if not isinstance(obj, dict) or obj.get("kind") != "Pod":
            return None
        meta = obj.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        raw_name, raw_generate = meta.get("name"), meta.get("generateName")
        name = raw_name if isinstance(raw_name, str) else ""
        generate_name = raw_generate if isinstance(raw_generate, str) else ""
        now = self.settings.clock()
        try:
            usage = quota_usage(obj)
            if request.subresource == RESIZE:
                old = request.old_obj
                if not name or not isinstance(old, dict):
                    return None
                increase = _increase(quota_usage(old), usage)
                if not increase:
                    return None
                return Reservation(request.namespace, name, increase, now, resize=True,
                                   before=self.store.live_pod_usage(request.namespace, name))
        except QuantityError:
            return None  # the rules refused what does not parse; nothing admitted can get here
        if request.operation != "CREATE" or request.subresource:
            return None
        return Reservation(request.namespace, name, usage, now, generate_name=generate_name)

    # --- waiting ----------------------------------------------------------------------------------
    def _changed(self) -> None:
        self._changes.notify_threadsafe()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        """Wait until ``predicate()`` holds, re-checking after every change of the view; False on timeout."""
        return await self._changes.wait(predicate, timeout)

    async def wait_synced(self, timeout: float | None = None) -> bool:
        return await self.wait_until(lambda: self.synced, timeout)


def _increase(before: Usage, after: Usage) -> dict[str, Decimal]:
    """What ``after`` adds to ``before``, per key (decreases count nothing until the watch shows them)."""
    out = {}
    for key, value in after.items():
        delta = exact_add(value, before.get(key, Decimal(0)).copy_negate())
        if delta > 0:
            out[key] = delta
    return out


async def open_watched(*, kubeconfig: str | None = None, in_cluster: bool = False,
                       ledger_dir: str | None = None) -> WatchedClusterState:
    """The server's watched view, not started; ``ledger_dir``: the reservation ledger the workers share.
    Raises ClusterViewError when the Kubernetes client cannot be configured."""
    ledger = FileLedger(ledger_dir) if ledger_dir else None
    try:
        return await open_cluster_view(kubeconfig=kubeconfig, in_cluster=in_cluster, start=False, ledger=ledger)
    except Exception as exc:  # ConfigException, OSError, ...: a startup refusal
        if ledger is not None:
            ledger.close()
        source = "--in-cluster" if in_cluster else f"--kubeconfig {kubeconfig or ''}".strip()
        raise ClusterViewError(f"{source}: cannot configure the Kubernetes client: {exc}") from exc


async def open_cluster_view(kubeconfig: str | None = None, in_cluster: bool = False, *,
                            context: str | None = None, settings: ViewSettings | None = None,
                            start: bool = True, ledger: Ledger | None = None) -> WatchedClusterState:
    """Build the view from a kubeconfig (``None``: $KUBECONFIG or ~/.kube/config) or the pod's service
    account (``in_cluster``), and start watching unless ``start=False``. Does not wait for the first
    sync: check ``view.ready`` or ``await view.wait_synced(timeout)``."""
    configuration = k8s_client.Configuration()

    def load() -> None:
        if in_cluster:
            k8s_config.load_incluster_config(client_configuration=configuration)
        else:
            k8s_config.load_kube_config(config_file=kubeconfig, context=context,
                                        client_configuration=configuration)

    await asyncio.to_thread(load)
    settings = settings or ViewSettings()
    # one connection per watch plus room for lists and the audit command
    configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize or 0,
                                                len(settings.resources) + 4)
    view = WatchedClusterState(k8s_client.ApiClient(configuration), settings, owns_client=True, ledger=ledger)
    if start:
        await view.start()
    return view


__all__ = ["ClusterStore", "ReflectorSettings", "ViewSettings", "WatchedClusterState", "open_cluster_view",
           "open_watched"]
