"""The cluster view the server's engine reads: what it is and how one is built.

A view is a :class:`webhook.core.cluster_state.ClusterState` (what the core reads) plus
what the server needs around it: ``start()``/``stop()``, ``synced`` (readiness waits for
it) and ``reserve(request, decision)``, called for every allowed, non-dry-run CREATE on
``/validate`` so quota counts a pod between its admission and the moment the watch sees
it (the view decides which kinds count and when a reservation is released).

- no cluster configured: :class:`StaticClusterView`, an ``InMemoryClusterState`` filled
  from ``--cluster-state`` files (a snapshot, for local trials: it never changes and
  reserves nothing, so quota is judged against the snapshot alone);
- ``--kubeconfig FILE`` / ``--in-cluster``: the watch-backed view of ``webhook.cluster``
  (list+watch through the kubernetes client), imported only then.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Iterable, Protocol

from webhook.core.cluster_state import ClusterState, InMemoryClusterState
from webhook.core.decision import Decision
from webhook.core.request import AdmissionRequest
from webhook.manifests import read_objects
from webhook.server.settings import ServerSettings
from webhook.yamlio import InputError


class ClusterViewError(Exception):
    """The cluster view cannot be built (bad --cluster-state file, watch-backed view unavailable)."""


class ClusterView(ClusterState, Protocol):
    @property
    def synced(self) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def reserve(self, request: AdmissionRequest, decision: Decision) -> None: ...


class StaticClusterView(InMemoryClusterState):
    """An in-memory snapshot as a view: synced from the start, never changes, reserves nothing."""

    synced = True

    @classmethod
    def from_files(cls, paths: Iterable[str]) -> "StaticClusterView":
        view = cls()
        paths = list(paths)
        if paths:
            try:
                objects = read_objects(paths)
            except InputError as exc:
                raise ClusterViewError(f"--cluster-state: {exc}") from None
            for item in objects:
                view.add_object(item.obj)
        return view

    @classmethod
    def of(cls, state: InMemoryClusterState) -> "StaticClusterView":
        """A view over an existing in-memory state (tests: the golden suites' cluster state)."""
        view = cls()
        view.__dict__.update(vars(state))
        return view

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def reserve(self, request: AdmissionRequest, decision: Decision) -> None:
        return None


# Names the watch-backed view may go by in webhook.cluster, a factory function first.
_WATCHED_FACTORIES = ("build_cluster_view", "create_cluster_view", "cluster_view")
_WATCHED_CLASSES = ("WatchedClusterState", "WatchClusterState", "WatchedClusterView", "ClusterWatcher",
                    "KubernetesClusterState", "LiveClusterState")


def _watched(settings: ServerSettings) -> ClusterView:
    try:
        module = importlib.import_module("webhook.cluster")
    except ModuleNotFoundError as exc:
        if exc.name not in ("webhook.cluster", "webhook"):
            raise
        raise ClusterViewError("--kubeconfig/--in-cluster need the watch-backed cluster view (webhook.cluster), "
                               "which this build lacks; use --cluster-state FILE for a static view") from None
    target = next((getattr(module, n) for n in (*_WATCHED_FACTORIES, *_WATCHED_CLASSES) if hasattr(module, n)), None)
    if target is None:
        raise ClusterViewError("webhook.cluster exposes no cluster view factory "
                               f"(looked for {', '.join(_WATCHED_FACTORIES + _WATCHED_CLASSES)})")
    offered = {"kubeconfig": settings.kubeconfig, "in_cluster": settings.in_cluster}
    params = inspect.signature(target).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return target(**{k: v for k, v in offered.items() if takes_all or k in params})


def build_cluster_view(settings: ServerSettings) -> ClusterView:
    """The view ``settings`` ask for: watch-backed with a cluster, else the static snapshot."""
    if settings.watches_cluster:
        return _watched(settings)
    return StaticClusterView.from_files(settings.cluster_state)
