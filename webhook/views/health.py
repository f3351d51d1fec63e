"""How current a cluster view is: one status object for ``/readyz``, the metrics and the docs.

:class:`ViewHealth` is what a view reports (``view.health()``): synced or not, which kinds
are stale and why, per kind the reflector's counters. ``/readyz`` is 200 only when
:attr:`ViewHealth.ready`, and says :meth:`ViewHealth.reason` otherwise; the metrics
(``tenantguard_cluster_view_*``) are read from the same object at scrape time.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KindHealth:
    """One watched kind (``kind`` is its plural: ``pods``)."""

    kind: str
    synced: bool = False  # listed completely at least once
    connected: bool = False  # a watch stream is open
    stale: str | None = None  # why its data may be old, e.g. "silent for 95s"; None when current
    lists: int = 0
    relists: int = 0  # lists forced by 410 Gone or a silent watch
    watch_errors: int = 0
    last_resync_seconds: float | None = None  # 410 received -> fresh list in the store
    last_heard_seconds: float | None = None  # since its list or watch last told us something


@dataclass(frozen=True, slots=True)
class ViewHealth:
    synced: bool
    kinds: tuple[KindHealth, ...] = ()
    reservations: int = 0  # admitted pods counted until their watch reports them
    unparseable_pods: int = 0  # pods whose resources do not parse (each counted as one pod, nothing else)

    @property
    def stale_kinds(self) -> tuple[str, ...]:
        return tuple(k.kind for k in self.kinds if k.stale)

    @property
    def ready(self) -> bool:
        return self.synced and not self.stale_kinds

    def reason(self) -> str:
        """Why the view is not ready ("" when it is): the ``/readyz`` body."""
        if not self.synced:
            waiting = [k.kind for k in self.kinds if not k.synced]
            return "cluster view not synced" + (f" ({', '.join(waiting)})" if waiting else "")
        stale = [f"{k.kind}: {k.stale}" for k in self.kinds if k.stale]
        return f"cluster view stale ({'; '.join(stale)})" if stale else ""
