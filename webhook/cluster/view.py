"""The watch-backed cluster view: the server's implementation of the core's ``ClusterState``.

Usage from the aiohttp server (see docs/cluster-view.md)::

    view = await open_cluster_view(kubeconfig=None, in_cluster=True)   # starts watching
    ...
    ready = view.ready                       # /readyz: every kind listed once, no watch down too long
    decision = view.judge(request, policies) # evaluate + reserve an admitted pod, atomically
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from webhook.cluster.reflector import Reflector, ReflectorSettings, Resource
from webhook.cluster.store import ClusterStore, Usage
from webhook.core.decision import Decision
from webhook.core.engine import evaluate
from webhook.core.plan import PolicySet
from webhook.core.pod_resources import quota_usage
from webhook.core.request import AdmissionRequest

RESOURCES = ("pods", "namespaces", "resourcequotas", "networkpolicies")


@dataclass(frozen=True, slots=True)
class ViewSettings:
    """Tuning of the cluster view; the defaults suit a production API server."""

    reflector: ReflectorSettings = field(default_factory=ReflectorSettings)
    stale_after: float = 30.0  # a kind whose watch has been down this long makes the view stale
    reservation_ttl: float = 30.0  # seconds an admitted pod counts before the watch reports it
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
                 owns_client: bool = False):
        self.settings = settings or ViewSettings()
        self._api = api
        self._owns_client = owns_client
        self.store = ClusterStore(clock=self.settings.clock, reservation_ttl=self.settings.reservation_ttl,
                                  on_change=self._changed)
        self.reflectors = [
            Reflector(r, self.store, self.settings.reflector, self.settings.clock, self._changed)
            for r in _resources(api, self.settings.resources)
        ]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: set[asyncio.Event] = set()
        self._started = False

    # --- ClusterState (read from the event loop, written by the reflector threads) ------------------
    def namespaces(self) -> Iterable[str]:
        return self.store.namespaces()

    def namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        return self.store.namespace_labels(namespace)

    def namespace_usage(self, namespace: str) -> Usage:
        return self.store.namespace_usage(namespace)

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
        self._loop = asyncio.get_running_loop()
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
        """Some kind has had no watch stream for longer than ``stale_after`` (its data may be old)."""
        now = self.settings.clock()
        for reflector in self.reflectors:
            since = reflector.status.disconnected_since
            if reflector.status.synced and since is not None and now - since > self.settings.stale_after:
                return True
        return False

    @property
    def ready(self) -> bool:
        return self.synced and not self.stale

    def status(self) -> dict[str, Any]:
        """For /readyz bodies and metrics: per kind, the reflector's counters."""
        return {
            "synced": self.synced,
            "stale": self.stale,
            "pods": self.store.pod_count(),
            "reservations": len(self.store.reservations()),
            "kinds": {r.resource.plural: r.status.as_json() for r in self.reflectors},
        }

    # --- admission --------------------------------------------------------------------------------
    def reserve(self, request: AdmissionRequest, decision: Decision) -> bool:
        """Count a just-admitted pod until the watch reports it (non-dry-run allowed Pod CREATEs only)."""
        if request.dry_run or request.operation != "CREATE" or request.subresource or not decision.allowed:
            return False
        obj = decision.mutated if decision.mutated is not None else request.obj
        if not isinstance(obj, dict) or obj.get("kind") != "Pod":
            return False
        meta = obj.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        return self.store.reserve(request.namespace, name if isinstance(name, str) and name else None,
                                  quota_usage(obj))

    def judge(self, request: AdmissionRequest, policies: PolicySet, *, mutate: bool = True,
              validate: bool = True) -> Decision:
        """Evaluate and, when validating, reserve what was admitted, with no other judgement in between.

        Two concurrent over-quota creations thus see each other: the second
        one is judged with the first one's reservation counted.
        """
        with self.store.lock:
            decision = evaluate(request, policies, self, mutate=mutate, validate=validate)
            if validate:
                self.reserve(request, decision)
            return decision

    # --- waiting ----------------------------------------------------------------------------------
    def _changed(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._wake)
        except RuntimeError:  # the loop closed meanwhile
            pass

    def _wake(self) -> None:
        for event in self._waiters:
            event.set()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        """Wait until ``predicate()`` holds, re-checking after every change of the view; False on timeout."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        event = asyncio.Event()
        self._waiters.add(event)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    event.clear()
                    if predicate():
                        return True
                    await event.wait()
        except TimeoutError:
            return predicate()
        finally:
            self._waiters.discard(event)

    async def wait_synced(self, timeout: float | None = None) -> bool:
        return await self.wait_until(lambda: self.synced, timeout)


async def open_cluster_view(kubeconfig: str | None = None, in_cluster: bool = False, *,
                            context: str | None = None, settings: ViewSettings | None = None,
                            start: bool = True) -> WatchedClusterState:
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
    view = WatchedClusterState(k8s_client.ApiClient(configuration), settings, owns_client=True)
    if start:
        await view.start()
    return view
