"""What the engine may know about the live cluster, as plain data.

One small interface, :class:`ClusterState`. Its implementations are the cluster
views of ``webhook.views``: in memory (dry-run CLI, tests: filled from manifests),
a fixed snapshot from files, and the watch-backed one (server: list+watch). The
engine reads it; only the shells write to it.

Usage is kept per namespace as ResourceQuota-style keys (``requests.cpu``,
``limits.memory``, ``pods``, ...) mapped to exact Decimals, computed by
:func:`webhook.core.pod_resources.quota_usage`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

from webhook.core.errors import TenantguardError
from webhook.core.quantity import exact_add

Usage = Mapping[str, Decimal]
# The label the API server sets on every namespace to its own name (nobody can change it).
NAME_LABEL = "kubernetes.io/metadata.name"


class StateError(TenantguardError, ValueError):
    """An object the cluster view cannot hold: malformed metadata, or a quantity that does not parse."""


class ClusterState(Protocol):
    def namespaces(self) -> Iterable[str]:
        """Every namespace known to exist."""
        ...

    def namespaces_revision(self) -> int:
        """A number that changes whenever a namespace is added, removed or relabelled (what a namespace's
        tenant depends on): who belongs to a tenant is computed once per revision, not per request."""
        ...

    def namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        """Labels of a namespace; None when the namespace is unknown.

        A view replaces the mapping when the labels change and never changes it in place
        (``PolicySet.tenant_for`` remembers its answer per namespace and mapping).
        """
        ...

    def namespace_usage(self, namespace: str) -> Usage:
        """Summed quota usage of the live (non-terminal) pods of a namespace."""
        ...

    def usage_of(self, namespaces: frozenset[str]) -> Usage:
        """Summed usage of these namespaces (what a tenant quota weighs): a view that watches many may keep
        the sum of a set it is asked for again up to date, instead of adding every namespace per request."""
        ...

    def network_policies(self, namespace: str) -> Sequence[Mapping[str, Any]]:
        ...

    def network_policies_known(self, namespace: str) -> bool:
        """True when ``network_policies(namespace)`` is the complete list (rules judge absence only then)."""
        ...

    def pod_usage(self, namespace: str, name: str) -> Usage | None:
        """Usage already counted for the pod ``namespace/name`` (live or reserved); None when not counted.

        Lets the quota rule judge a re-sent CREATE of the same pod without counting it twice.
        """
        ...

    def resource_quotas(self, namespace: str) -> Sequence[Mapping[str, Any]]:
        ...


def add_usage(total: dict[str, Decimal], usage: Usage, sign: int = 1) -> None:
    """``total += sign * usage``, key by key, exactly (no rounding at 28 digits as the default context has)."""
    for key, value in usage.items():
        current = total.get(key)
        delta = value if sign > 0 else value.copy_negate()  # exact, unlike unary minus
        total[key] = delta if current is None else exact_add(current, delta)




class NamespaceSums:
    """The summed usage of namespace sets asked for (a tenant's namespaces), kept up to date change by change:
    a tenant's quota weighs one mapping per admission, not its every namespace. At most ``kept`` sets are
    held (all dropped when full; recomputed when asked again)."""

    __slots__ = ("_of", "_sums", "kept")

    def __init__(self, kept: int = 1024) -> None:
        self.kept = kept
        self._sums: dict[frozenset[str], dict[str, Decimal]] = {}
        self._of: dict[str, list[frozenset[str]]] = {}  # namespace -> the sets holding it

    def get(self, namespaces: frozenset[str], usage: Callable[[str], Usage | None]) -> dict[str, Decimal]:
        """The live sum for ``namespaces`` (computed with ``usage(namespace)`` the first time); not a copy."""
        live = self._sums.get(namespaces)
        if live is None:
            if len(self._sums) >= self.kept:
                self.clear()
            live = {}
            for namespace in namespaces:
                counted = usage(namespace)
                if counted:
                    add_usage(live, counted)
                self._of.setdefault(namespace, []).append(namespaces)
            self._sums[namespaces] = live
        return live

    def changed(self, namespace: str, usage: Usage, sign: int) -> None:
        """``namespace``'s usage changed by ``sign * usage``: the sets holding it follow."""
        for key in self._of.get(namespace, ()):
            add_usage(self._sums[key], usage, sign)

    def clear(self) -> None:
        self._sums.clear()
        self._of.clear()
