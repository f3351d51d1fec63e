"""The in-memory cluster view: what the dry-run CLI, `tenantguard test` and the tests judge against.

Filled from manifests (``--cluster-state`` files, objects earlier in a dry-run's input);
implements the core's ``ClusterState`` and, as a usage view, records what is admitted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from decimal import Decimal
from typing import Any

from webhook.core.cluster_state import NAME_LABEL, NamespaceSums, StateError, Usage, add_usage
from webhook.core.decision import Decision
from webhook.core.pod_resources import quota_usage
from webhook.core.quantity import QuantityError
from webhook.core.request import AdmissionRequest


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise StateError("metadata: must be a mapping")
    return meta


def _meta_string(meta: Mapping[str, Any], key: str) -> str:
    value = meta.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise StateError(f"metadata.{key}: must be a string")
    return value


def _labels(meta: Mapping[str, Any]) -> Mapping[str, str]:
    labels = meta.get("labels")
    if labels is None:
        return {}
    if not isinstance(labels, dict):
        raise StateError("metadata.labels: must be a mapping")
    return labels


def _pod_key(meta: Mapping[str, Any], namespace: str, fallback: int) -> tuple[str, str]:
    name = meta.get("name") or meta.get("uid") or f"<unnamed-{fallback}>"
    return namespace, str(name)


class InMemoryClusterState:
    """A cluster view held in memory, for the dry-run CLI and tests.

    As a usage view (``webhook.core.pipeline``) it records what is admitted: a created Pod,
    Namespace, NetworkPolicy or ResourceQuota joins the view, so objects later in a dry-run's
    input are judged with the earlier ones counted; a resized pod's usage is replaced.
    """

    def __init__(self) -> None:
        self._namespaces: dict[str, dict[str, str]] = {}
        self._pod_usage: dict[tuple[str, str], Usage] = {}
        self._ns_usage: dict[str, dict[str, Decimal]] = defaultdict(dict)
        self._sums = NamespaceSums()  # a tenant's namespaces summed once, then kept up to date
        self._netpols: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        self._quotas: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        self._netpols_known = False
        self._counter = 0
        self._revision = 0

    # --- ClusterState -----------------------------------------------------
    def namespaces(self) -> Iterable[str]:
        return self._namespaces.keys()

    def namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        return self._namespaces.get(namespace)

    def namespaces_revision(self) -> int:
        return self._revision

    def namespace_usage(self, namespace: str) -> Usage:
        return self._ns_usage.get(namespace, {})

    def usage_of(self, namespaces: frozenset[str]) -> Usage:
        return dict(self._sums.get(namespaces, self._ns_usage.get))

    def network_policies(self, namespace: str) -> Sequence[Mapping[str, Any]]:
        return self._netpols.get(namespace, [])

    def network_policies_known(self, namespace: str) -> bool:
        """A snapshot that holds any NetworkPolicy is taken as complete for NetworkPolicies."""
        return self._netpols_known

    def pod_usage(self, namespace: str, name: str) -> Usage | None:
        return self._pod_usage.get((namespace, name))

    def resource_quotas(self, namespace: str) -> Sequence[Mapping[str, Any]]:
        return self._quotas.get(namespace, [])

    # --- UsageView --------------------------------------------------------------
    def locked(self) -> AbstractContextManager[object]:
        """One caller at a time uses an in-memory view: nothing to lock."""
        return nullcontext()

    def record_admitted(self, request: AdmissionRequest, decision: Decision) -> None:
        """Add the admitted object (after the patch, when there was one); raises StateError when it cannot
        join the view (malformed metadata, a quantity that does not parse: the API server would refuse it)."""
        obj = decision.mutated if decision.mutated is not None else request.obj
        if not isinstance(obj, dict):
            return
        kind = obj.get("kind")
        if kind == "Namespace":
            self.add_object(obj)
        elif kind in ("Pod", "NetworkPolicy", "ResourceQuota"):
            self.add_object(obj, request.namespace)

    # --- filling ------------------------------------------------------------
    def absorb(self, other: InMemoryClusterState) -> None:
        """Hold everything ``other`` holds (copies: later changes to either do not reach the other)."""
        for name, labels in other._namespaces.items():
            self._namespaces[name] = dict(labels)
        self._pod_usage.update(other._pod_usage)
        for ns, usage in other._ns_usage.items():
            add_usage(self._ns_usage[ns], usage)
        self._sums.clear()
        for ns, policies in other._netpols.items():
            self._netpols[ns].extend(policies)
        for ns, quotas in other._quotas.items():
            self._quotas[ns].extend(quotas)
        self._netpols_known = self._netpols_known or other._netpols_known
        self._revision += 1
        self._counter = max(self._counter, other._counter)

    def add_namespace(self, name: str, labels: Mapping[str, str] | None = None) -> None:
        """Known namespace with its labels; ``kubernetes.io/metadata.name`` is its name, as the API server sets it
        (whatever the object says)."""
        merged = dict(labels or {})
        merged[NAME_LABEL] = name
        self._namespaces[name] = merged
        self._revision += 1

    def _ensure_namespace(self, name: str) -> None:
        if name not in self._namespaces:
            self.add_namespace(name)

    def add_pod(self, pod: Mapping[str, Any], namespace: str | None = None) -> None:
        """Count a pod's usage as ResourceQuota does (a terminal pod counts only toward count/pods); a pod of the
        same name is replaced. Raises StateError when its metadata is malformed or a quantity does not parse."""
        meta = _metadata(pod)
        ns = namespace or _meta_string(meta, "namespace") or "default"
        try:
            usage = quota_usage(pod)
        except QuantityError as exc:
            raise StateError(f"invalid quantity: {exc}") from None
        self._ensure_namespace(ns)
        self._counter += 1
        key = _pod_key(meta, ns, self._counter)
        previous = self._pod_usage.pop(key, None)
        if previous:
            add_usage(self._ns_usage[ns], previous, -1)
            self._sums.changed(ns, previous, -1)
        if usage:
            self._pod_usage[key] = usage
            add_usage(self._ns_usage[ns], usage)
            self._sums.changed(ns, usage, 1)

    def add_object(self, obj: Mapping[str, Any], default_namespace: str = "default") -> bool:
        """Add a Pod, Namespace, NetworkPolicy or ResourceQuota; False for other kinds.

        Raises StateError (naming the field) for an object the view cannot hold.
        """
        kind = obj.get("kind")
        if kind not in ("Namespace", "Pod", "NetworkPolicy", "ResourceQuota"):
            return False
        meta = _metadata(obj)
        if kind == "Namespace":
            self.add_namespace(_meta_string(meta, "name"), _labels(meta))
            return True
        ns = _meta_string(meta, "namespace") or default_namespace
        if kind == "Pod":
            self.add_pod(obj, ns)
        elif kind == "NetworkPolicy":
            self._ensure_namespace(ns)
            self._netpols[ns].append(obj)
            self._netpols_known = True
        elif kind == "ResourceQuota":
            self._ensure_namespace(ns)
            self._quotas[ns].append(obj)
        return True
