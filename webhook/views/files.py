"""Cluster state from files: ``--cluster-state`` YAML streams of Pods, Namespaces, ResourceQuotas and
NetworkPolicies, read in one place for every command that takes them.

- :func:`load_state`: an :class:`InMemoryClusterState` (``dry-run``, ``render``): objects admitted
  later are recorded into it;
- :class:`StaticClusterView`: the same snapshot as the server's view when it watches no cluster
  (a local trial): synced from the start, never changes, records nothing, so quota is judged
  against the snapshot alone, like ``dry-run`` with the same files.
"""

from __future__ import annotations

from collections.abc import Iterable

from webhook.core.cluster_state import StateError
from webhook.core.decision import Decision
from webhook.core.request import AdmissionRequest
from webhook.inputs.manifests import read_objects
from webhook.inputs.yamlio import InputError
from webhook.views import ClusterViewError
from webhook.views.health import ViewHealth
from webhook.views.memory import InMemoryClusterState


def fill_state(state: InMemoryClusterState, paths: Iterable[str]) -> None:
    """Add every object of the ``paths`` YAML streams to ``state``; raise ClusterViewError naming the file
    and document of one that cannot be read or held."""
    paths = list(paths)
    if not paths:
        return
    try:
        objects = read_objects(paths)
    except InputError as exc:
        raise ClusterViewError(f"--cluster-state: {exc}") from None
    for item in objects:
        try:
            state.add_object(item.obj)
        except StateError as exc:
            raise ClusterViewError(f"--cluster-state: {item.source}: document {item.document}: {exc}") from None


def load_state(paths: Iterable[str]) -> InMemoryClusterState:
    """An in-memory view of the objects in ``paths`` (empty without files)."""
    state = InMemoryClusterState()
    fill_state(state, paths)
    return state


class StaticClusterView(InMemoryClusterState):
    """An in-memory snapshot as the server's view: synced from the start, never changes, records nothing."""

    synced = True

    @property
    def ready(self) -> bool:
        return self.synced

    def health(self) -> ViewHealth:
        return ViewHealth(synced=self.synced)

    @classmethod
    def from_files(cls, paths: Iterable[str]) -> StaticClusterView:
        view = cls()
        fill_state(view, paths)
        return view

    @classmethod
    def copy_of(cls, state: InMemoryClusterState) -> StaticClusterView:
        """A snapshot holding what ``state`` holds (the golden suites' cluster state behind the HTTP tests)."""
        view = cls()
        view.absorb(state)
        return view

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def wait_synced(self, timeout: float | None = None) -> bool:
        return self.synced

    def record_admitted(self, request: AdmissionRequest, decision: Decision) -> None:
        """A snapshot is what it was loaded with: admissions do not change it."""
        return None
