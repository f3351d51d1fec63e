"""A one-shot, consistent read of the live cluster (paged lists), for `tenantguard audit` and `render`.

Unlike the watch-backed view it keeps whole pods (the audit judges them) and
answers as a complete snapshot: NetworkPolicies are known for every namespace
even when the cluster has none. :func:`connect` builds the client from a
kubeconfig or the pod's service account; any failure to connect or read is a
:class:`ClusterReadError` with one line saying why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from webhook.core.errors import TenantguardError
from webhook.views.memory import InMemoryClusterState
from webhook.views.reflector import GONE


class ClusterReadError(TenantguardError):
    """The live cluster cannot be reached or read (exit 2)."""


def why(exc: BaseException) -> str:
    """One line: the API server's status and message, or the first line of any other error."""
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        message = ""
        try:
            body = orjson.loads(getattr(exc, "body", None) or "{}")
            message = str(body.get("message") or "") if isinstance(body, dict) else ""
        except ValueError:
            pass
        reason = str(getattr(exc, "reason", "") or "")
        return " ".join(f"HTTP {status} {reason}".split()) + (f": {message}" if message else "")
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300] if lines else ''}".rstrip(": ")


def connect(*, kubeconfig: str | None = None, context: str | None = None,
            in_cluster: bool = False) -> k8s_client.ApiClient:
    """A client for the cluster a kubeconfig names (None: $KUBECONFIG or ~/.kube/config) or the one the pod
    runs in; raises ClusterReadError when it cannot be configured."""
    from kubernetes import config

    configuration = k8s_client.Configuration()
    try:
        if in_cluster:
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
    except Exception as exc:  # ConfigException, OSError, ...: no usable configuration
        raise ClusterReadError(f"cannot read the cluster: {why(exc)}") from exc
    return k8s_client.ApiClient(configuration)


class SnapshotState(InMemoryClusterState):
    """An in-memory view filled from complete lists of the live cluster."""

    def network_policies_known(self, namespace: str) -> bool:
        return True


def list_items(call: Callable[..., Any], *, page_size: int = 500, timeout: float = 60.0) -> Iterator[dict[str, Any]]:
    """Every item of a collection, page by page; an expired continue token restarts the list."""
    token: str | None = None
    restarts = 0
    while True:
        kwargs: dict[str, Any] = {"limit": page_size}
        if token:
            kwargs["_continue"] = token
        try:
            resp = call(**kwargs, _preload_content=False, _request_timeout=(10.0, timeout))
        except ApiException as exc:
            if exc.status == GONE and token and restarts < 3:
                restarts += 1
                token = None
                continue  # (items already yielded may repeat; callers key objects by name)
            raise
        try:
            body = orjson.loads(resp.data)
        finally:
            resp.release_conn()
        yield from (item for item in body.get("items") or () if isinstance(item, dict))
        token = (body.get("metadata") or {}).get("continue") or None
        if not token:
            return


@dataclass(slots=True)
class Snapshot:
    state: SnapshotState
    pods: list[dict[str, Any]] = field(default_factory=list)
    # with owners=True: each listed ReplicaSet and Job, (kind, namespace, name) -> its controller's (kind, name),
    # None when it has none (how the audit follows a pod to its Deployment or CronJob)
    owners: dict[tuple[str, str, str], tuple[str, str] | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what could not be read, and what that leaves out


def _terminating(item: Mapping[str, Any]) -> bool:
    meta = item.get("metadata")
    status = item.get("status")
    return (isinstance(meta, dict) and bool(meta.get("deletionTimestamp"))) or \
        (isinstance(status, dict) and status.get("phase") == "Terminating")


def read_namespaces(api: k8s_client.ApiClient) -> tuple[dict[str, Mapping[str, str]], list[str]]:
    """The live Namespaces and their labels (one paged list), and notes on the ones left out (terminating).
    Raises ClusterReadError when the cluster cannot be read."""
    state = InMemoryClusterState()
    notes: list[str] = []
    try:
        for item in list_items(k8s_client.CoreV1Api(api).list_namespace):
            if _terminating(item):
                name = (item.get("metadata") or {}).get("name")
                notes.append(f"namespace {name} is terminating; nothing rendered for it")
                continue
            state.add_object(dict(item, kind="Namespace"))
    except TenantguardError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to reach or read the cluster
        raise ClusterReadError(f"cannot read the cluster's namespaces: {why(exc)}") from exc
    return {name: state.namespace_labels(name) or {} for name in state.namespaces()}, notes


def take_snapshot(api: k8s_client.ApiClient, *, page_size: int = 500, owners: bool = False) -> Snapshot:
    """Every Namespace, NetworkPolicy, ResourceQuota and Pod (and with ``owners``, the controllers of every
    ReplicaSet and Job: a note, not an error, when they cannot be listed); raises ClusterReadError when it
    cannot."""
    try:
        snapshot = _read(api, page_size)
        if owners:
            _read_owners(api, page_size, snapshot)
        return snapshot
    except TenantguardError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to reach or read the cluster
        raise ClusterReadError(f"cannot read the cluster: {why(exc)}") from exc


def _read(api: k8s_client.ApiClient, page_size: int) -> Snapshot:
    core = k8s_client.CoreV1Api(api)
    networking = k8s_client.NetworkingV1Api(api)
    state = SnapshotState()
    for kind, call in (("Namespace", core.list_namespace),
                       ("NetworkPolicy", networking.list_network_policy_for_all_namespaces),
                       ("ResourceQuota", core.list_resource_quota_for_all_namespaces)):
        for item in list_items(call, page_size=page_size):
            state.add_object(dict(item, kind=kind))
    pods: dict[tuple[str, str], dict[str, Any]] = {}
    for item in list_items(core.list_pod_for_all_namespaces, page_size=page_size):
        meta = item.get("metadata") or {}
        pods[(meta.get("namespace", ""), meta.get("name", ""))] = dict(item, kind="Pod", apiVersion="v1")
    for pod in pods.values():
        state.add_object(pod)
    return Snapshot(state, list(pods.values()))


def controller_of(item: Mapping[str, Any]) -> tuple[str, str] | None:
    """The (kind, name) of the object's controller (its ownerReference with ``controller: true``, else its first
    one); None when it has no owner."""
    meta = item.get("metadata")
    refs = meta.get("ownerReferences") if isinstance(meta, dict) else None
    refs = [r for r in refs if isinstance(r, dict) and r.get("kind") and r.get("name")] \
        if isinstance(refs, list) else []
    ref = next((r for r in refs if r.get("controller")), refs[0] if refs else None)
    return (str(ref["kind"]), str(ref["name"])) if ref else None


def _read_owners(api: k8s_client.ApiClient, page_size: int, snapshot: Snapshot) -> None:
    for kind, call in (("ReplicaSet", k8s_client.AppsV1Api(api).list_replica_set_for_all_namespaces),
                       ("Job", k8s_client.BatchV1Api(api).list_job_for_all_namespaces)):
        found: dict[tuple[str, str, str], tuple[str, str] | None] = {}
        try:
            for item in list_items(call, page_size=page_size):
                meta = item.get("metadata") or {}
                found[(kind, meta.get("namespace", ""), meta.get("name", ""))] = controller_of(item)
        except ApiException as exc:
            if exc.status not in (403, 404):  # forbidden, or an API the cluster does not serve
                raise
            snapshot.notes.append(f"cannot list {kind}s ({why(exc)}): what owns them is not known")
            continue
        snapshot.owners.update(found)
