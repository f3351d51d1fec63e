"""Cluster views: what the engine knows of the cluster, and where admissions are recorded.

Every view is a :class:`webhook.core.pipeline.UsageView` (the core's ``ClusterState``
plus ``locked()`` and ``record_admitted()``); the modules differ only in where the data
comes from and what an admission records:

============  ==========================================================================
memory.py     ``InMemoryClusterState``: filled from manifests; records what is admitted
              (dry-run, ``tenantguard test``, the tests)
files.py      ``StaticClusterView``: a fixed snapshot of ``--cluster-state`` files for
              ``serve`` without a cluster (records nothing); ``load_state`` for the CLI
watched.py    ``WatchedClusterState``: list+watch with the official kubernetes client
              (``reflector.py`` per kind, ``store.py`` the tables, ``ledger.py`` the
              reservations the workers of a pod share)
snapshot.py   a one-shot consistent read of the live cluster (``tenantguard audit``,
              ``tenantguard render --kubeconfig``)
============  ==========================================================================

:class:`ClusterView` is what the server needs of a view on top; :func:`open_view` opens
the one a server's flags ask for. Only ``watched`` and ``snapshot`` import the
kubernetes client, and only when asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from webhook.core.errors import TenantguardError
from webhook.core.pipeline import UsageView


class ClusterViewError(TenantguardError):
    """The cluster view cannot be opened (a bad --cluster-state file, no usable kubeconfig)."""

    exit_code = 2


class ClusterView(UsageView, Protocol):
    """A usage view the server can start, stop and ask for readiness."""

    @property
    def synced(self) -> bool:
        """Every kind has been read completely at least once."""
        ...

    @property
    def ready(self) -> bool:
        """Synced, and nothing known to be out of date (``/readyz``)."""
        ...

    def health(self) -> ViewHealth: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def wait_synced(self, timeout: float | None = None) -> bool: ...


from webhook.views.health import ViewHealth  # noqa: E402  (the protocol above names it)


async def open_view(*, cluster_state: Iterable[str] = (), kubeconfig: str | None = None, in_cluster: bool = False,
                    ledger_dir: str | None = None) -> ClusterView:
    """The view a server's flags ask for, not started: watch-backed with a cluster (``kubeconfig`` or
    ``in_cluster``; ``ledger_dir`` shares reservations with the other workers), else the static snapshot."""
    if kubeconfig or in_cluster:
        from webhook.views.watched import open_watched  # the kubernetes client, only when asked for

        return await open_watched(kubeconfig=kubeconfig, in_cluster=in_cluster, ledger_dir=ledger_dir)
    from webhook.views.files import StaticClusterView

    return StaticClusterView.from_files(cluster_state)


__all__ = ["ClusterView", "ClusterViewError", "ViewHealth", "open_view"]
