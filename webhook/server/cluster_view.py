"""The cluster view the server's engine reads: what it is and how one is opened.

A view is a :class:`webhook.core.cluster_state.ClusterState` (what the core reads) plus
what the server needs around it:

- ``start()`` / ``stop()``;
- ``synced`` (every kind listed once: the ``tenantguard_cluster_view_synced`` gauge) and
  ``ready`` (synced and no watch down for too long: ``/readyz``);
- ``locked()`` and ``record_admitted()`` (``webhook.core.pipeline.UsageView``): the core's
  one admission path evaluates under the lock and records what it admitted, so two
  concurrent creations see each other (the watch-backed view reserves an admitted pod's
  usage until its watch reports it; with several workers the reservations are shared
  through a ledger) and reflector threads never change the data mid-evaluation.

Two implementations:

- no cluster configured: :class:`StaticClusterView`, an ``InMemoryClusterState`` filled
  from ``--cluster-state`` files (a snapshot for local trials: it never changes and
  records nothing, so quota is judged against the snapshot alone);
- ``--kubeconfig FILE`` / ``--in-cluster``: ``webhook.cluster.WatchedClusterState``
  (list+watch with the kubernetes client), imported only then.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from webhook.core.cluster_state import InMemoryClusterState, StateError
from webhook.core.decision import Decision
from webhook.core.pipeline import UsageView
from webhook.core.request import AdmissionRequest
from webhook.manifests import read_objects
from webhook.server.settings import ServerSettings
from webhook.yamlio import InputError


class ClusterViewError(Exception):
    """The cluster view cannot be opened (bad --cluster-state file, no usable kubeconfig)."""


class ClusterView(UsageView, Protocol):
    @property
    def synced(self) -> bool: ...

    @property
    def ready(self) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class StaticClusterView(InMemoryClusterState):
    """An in-memory snapshot as a view: synced from the start, never changes, records nothing."""

    synced = True

    @property
    def ready(self) -> bool:
        return self.synced

    @classmethod
    def from_files(cls, paths: Iterable[str]) -> StaticClusterView:
        view = cls()
        paths = list(paths)
        if paths:
            try:
                objects = read_objects(paths)
            except InputError as exc:
                raise ClusterViewError(f"--cluster-state: {exc}") from None
            for item in objects:
                try:
                    view.add_object(item.obj)
                except StateError as exc:
                    raise ClusterViewError(f"--cluster-state: {item.source}: document {item.document}: {exc}") \
                        from None
        return view

    @classmethod
    def of(cls, state: InMemoryClusterState) -> StaticClusterView:
        """A view over an existing in-memory state (tests: the golden suites' cluster state)."""
        view = cls()
        view.__dict__.update(vars(state))
        return view

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def record_admitted(self, request: AdmissionRequest, decision: Decision) -> None:
        """A snapshot is what it was loaded with: admissions do not change it."""
        return


async def _watched(settings: ServerSettings) -> ClusterView:
    from webhook.cluster import open_cluster_view  # the kubernetes client, only when asked for
    from webhook.cluster.ledger import FileLedger

    ledger = FileLedger(settings.ledger_dir) if settings.ledger_dir else None
    try:
        return await open_cluster_view(kubeconfig=settings.kubeconfig, in_cluster=settings.in_cluster,
                                       start=False, ledger=ledger)
    except Exception as exc:  # ConfigException, OSError, ...: a startup refusal
        if ledger is not None:
            ledger.close()
        source = "--in-cluster" if settings.in_cluster else f"--kubeconfig {settings.kubeconfig or ''}".strip()
        raise ClusterViewError(f"{source}: cannot configure the Kubernetes client: {exc}") from exc


async def open_view(settings: ServerSettings) -> ClusterView:
    """The view ``settings`` ask for, not started: watch-backed with a cluster, else the static snapshot."""
    if settings.watches_cluster:
        return await _watched(settings)
    return StaticClusterView.from_files(settings.cluster_state)
