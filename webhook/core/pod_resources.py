"""A pod's effective resources, QoS class and quota usage, computed as Kubernetes does.

Plain dicts in (a PodSpec or a Pod as decoded from JSON/YAML), exact
:class:`~decimal.Decimal` values out. Mirrors upstream:

* API defaulting (pkg/apis/core/v1/defaults.go): requests default to limits,
  pod-level requests default from containers/limits, every ResourceList is
  rounded up to milli units (SetDefaults_ResourceList).
* k8s.io/component-helpers/resource: PodRequests, PodLimits (sidecars,
  overhead, pod-level resources, in-place resize status).
* pkg/apis/core/v1/helper/qos: ComputePodQOS.
* pkg/quota/v1/evaluator/core/pods.go: PodUsageFunc, QuotaV1Pod, Constraints.

Malformed input never crashes: wrong types and missing keys count as absent;
only a quantity that does not parse raises :class:`QuantityError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from webhook.core.quantity import QuantityError, exact_add, parse_quantity, round_up

__all__ = [
    "QOSClass",
    "QuantityError",
    "ResourceList",
    "container_limits",
    "container_requests",
    "container_requests_and_limits",
    "is_pod_level_resources_set",
    "pod_is_charged",
    "pod_limits",
    "pod_requests",
    "pod_requests_and_limits",
    "qos_class",
    "quota_demand",
    "quota_missing",
    "quota_usage",
]

ResourceList = dict[str, Decimal]
QOSClass = Literal["Guaranteed", "Burstable", "BestEffort"]

_ZERO = Decimal(0)
_ONE = Decimal(1)
_MILLI = -3
_HUGEPAGES = "hugepages-"
_RESTART_ALWAYS = "Always"
_QOS_RESOURCES = ("cpu", "memory")
_DEVICE_CLASS_PREFIX = "deviceclass.resource.kubernetes.io/"
# pods.go validationSet: the only quota keys that make ResourceQuota demand explicit values.
_CONSTRAINED_QUOTA_KEYS = frozenset(
    {"cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"}
)

# --- tolerant readers ---------------------------------------------------------------------


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _sequence(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _parse_list(raw: Any, where: str) -> ResourceList:
    """A ResourceList as decoded by the API server; empty when the field is absent or not a map.

    A JSON null value decodes to a zero quantity (Quantity.UnmarshalJSON), so it
    is kept as 0; any other value must parse (QuantityError naming ``where.<name>``).
    """
    out: ResourceList = {}
    for name, value in _mapping(raw).items():
        if isinstance(name, str):
            try:
                out[name] = _ZERO if value is None else parse_quantity(value)
            except QuantityError as exc:
                raise QuantityError(f"{where}.{name}: {exc}") from None
    return out


def _round_list(resources: ResourceList) -> ResourceList:
    """SetDefaults_ResourceList: every value rounded up (away from zero) to milli units."""
    return {name: round_up(value, _MILLI) for name, value in resources.items()}


# --- resource-list arithmetic (helpers.go addResourceList / maxResourceList / max) --------


def _add_into(total: ResourceList, extra: Mapping[str, Decimal]) -> None:
    for name, value in extra.items():
        total[name] = exact_add(total[name], value) if name in total else value


def _max_into(total: ResourceList, other: Mapping[str, Decimal]) -> None:
    for name, value in other.items():
        if name not in total or value > total[name]:
            total[name] = value


def _max_of(first: Mapping[str, Decimal] | None, *others: Mapping[str, Decimal] | None) -> ResourceList:
    result = dict(first or {})
    for other in others:
        _max_into(result, other or {})
    return result


# --- resource names (pkg/apis/core/v1/helper) ---------------------------------------------

_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\Z")


def _is_qualified_name(value: str) -> bool:
    """apimachinery validation.IsQualifiedName."""
    parts = value.split("/")
    if len(parts) == 2:
        prefix, name = parts
        if not prefix or len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix):
            return False
    elif len(parts) == 1:
        name = parts[0]
    else:
        return False
    return 0 < len(name) <= 63 and bool(_QUALIFIED_NAME.match(name))


def _is_native(name: str) -> bool:
    """IsNativeResource: unprefixed, or in the *kubernetes.io/ namespace."""
    return "/" not in name or "kubernetes.io/" in name


def _is_extended(name: str) -> bool:
    """IsExtendedResourceName: not native, not quota-prefixed, valid once quota-prefixed."""
    if _is_native(name) or name.startswith("requests."):
        return False
    return _is_qualified_name("requests." + name)


def _is_dra_extended(name: str) -> bool:
    """scheduler util IsDRAExtendedResourceName: extended, or an implicit device-class resource."""
    return _is_extended(name) or name.startswith(_DEVICE_CLASS_PREFIX)


def _is_pod_level_supported(name: str) -> bool:
    """IsSupportedPodLevelResource: cpu, memory and hugepages-*."""
    return name in ("cpu", "memory") or name.startswith(_HUGEPAGES)


# --- a normalised view of a pod ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Container:
    name: str
    requests: ResourceList
    limits: ResourceList
    restartable: bool  # an init container with restartPolicy Always (a sidecar)


@dataclass(frozen=True, slots=True)
class _PodView:
    containers: tuple[_Container, ...]
    init_containers: tuple[_Container, ...]
    overhead: ResourceList
    has_pod_resources: bool  # spec.resources present (a map)
    pod_requests: ResourceList = field(default_factory=dict)
    pod_limits: ResourceList = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _StatusView:
    """What UseStatusResources reads from a pod's status."""

    by_name: Mapping[str, tuple[ResourceList | None, ResourceList | None, ResourceList]]
    resize_infeasible: bool


def _read_container(raw: Mapping[str, Any], init: bool) -> _Container:
    resources = _mapping(raw.get("resources"))
    name = raw.get("name")
    name = name if isinstance(name, str) else ""
    try:
        requests = _parse_list(resources.get("requests"), "resources.requests")
        limits = _parse_list(resources.get("limits"), "resources.limits")
    except QuantityError as exc:
        raise QuantityError(f'container "{name}" {exc}') from None
    return _Container(name, requests, limits, init and raw.get("restartPolicy") == _RESTART_ALWAYS)


def _read_containers(spec: Mapping[str, Any], key: str) -> tuple[_Container, ...]:
    init = key == "initContainers"
    return tuple(_read_container(c, init) for c in _sequence(spec.get(key)) if isinstance(c, dict))


def _read_view(spec: Any) -> _PodView:
    spec = _mapping(spec)
    pod_resources = spec.get("resources")
    has_pod_resources = isinstance(pod_resources, dict)
    pod_resources = _mapping(pod_resources)
    return _PodView(
        containers=_read_containers(spec, "containers"),
        init_containers=_read_containers(spec, "initContainers"),
        overhead=_parse_list(spec.get("overhead"), "spec.overhead"),
        has_pod_resources=has_pod_resources,
        pod_requests=_parse_list(pod_resources.get("requests"), "spec.resources.requests"),
        pod_limits=_parse_list(pod_resources.get("limits"), "spec.resources.limits"),
    )


def _default_container(container: _Container) -> _Container:
    """SetDefaults_Pod: a resource with a limit but no request gets request = limit."""
    requests = dict(container.requests)
    for name, value in container.limits.items():
        requests.setdefault(name, value)
    return _Container(container.name, requests, container.limits, container.restartable)


def _default_pod_limits(view: _PodView, aggregated_limits: ResourceList) -> ResourceList:
    """defaultHugePagePodLimits: pod-level hugepage limits from the containers' limits.

    Only when pod-level resources are partly set, and not for a hugepage that has
    a pod-level request.
    """
    limits = dict(view.pod_limits)
    if not (view.pod_limits or view.pod_requests):
        return limits
    for name, value in aggregated_limits.items():
        if name.startswith(_HUGEPAGES) and name not in limits and name not in view.pod_requests:
            limits[name] = value
    return limits


def _default_pod_requests(view: _PodView, pod_limits: ResourceList, aggregated: ResourceList) -> ResourceList:
    """defaultPodRequests: when pod-level limits are set, missing pod-level requests default to
    the containers' effective requests (cpu, memory), else to the pod-level limit."""
    requests = dict(view.pod_requests)
    if not pod_limits:
        return requests
    for name, value in aggregated.items():
        if name not in requests and _is_pod_level_supported(name) and not name.startswith(_HUGEPAGES):
            requests[name] = value
    for name, value in pod_limits.items():
        if name not in requests and _is_pod_level_supported(name):
            requests[name] = value
    return requests


def _round_container(container: _Container) -> _Container:
    return _Container(
        container.name, _round_list(container.requests), _round_list(container.limits), container.restartable
    )


def _apply_defaults(view: _PodView) -> _PodView:
    """The API server's defaulting of a Pod's resources, in upstream order."""
    containers = tuple(_default_container(c) for c in view.containers)
    init_containers = tuple(_default_container(c) for c in view.init_containers)
    defaulted = _PodView(containers, init_containers, view.overhead, view.has_pod_resources,
                         view.pod_requests, view.pod_limits)
    pod_limits, pod_requests = view.pod_limits, view.pod_requests
    if view.has_pod_resources:
        pod_limits = _default_pod_limits(defaulted, _aggregate(defaulted, "limits", None))
        pod_requests = _default_pod_requests(defaulted, pod_limits, _aggregate(defaulted, "requests", None))
    return _PodView(
        containers=tuple(_round_container(c) for c in containers),
        init_containers=tuple(_round_container(c) for c in init_containers),
        overhead=_round_list(view.overhead),
        has_pod_resources=view.has_pod_resources,
        pod_requests=_round_list(pod_requests),
        pod_limits=_round_list(pod_limits),
    )


def _view(spec: Any, apply_defaults: bool) -> _PodView:
    view = _read_view(spec)
    return _apply_defaults(view) if apply_defaults else view


# --- status (in-place resize) ------------------------------------------------------------


def _resize_infeasible(status: Mapping[str, Any]) -> bool:
    """IsPodResizeInfeasible: the PodResizePending condition says Infeasible.

    Falls back to the pre-1.33 ``status.resize`` field when there is no such condition.
    """
    for condition in _sequence(status.get("conditions")):
        condition = _mapping(condition)
        if condition.get("type") == "PodResizePending":
            return condition.get("reason") == "Infeasible"
    return status.get("resize") == "Infeasible"


def _read_status(status: Any, apply_defaults: bool) -> _StatusView:
    status = _mapping(status)
    fix = _round_list if apply_defaults else dict
    by_name: dict[str, tuple[ResourceList | None, ResourceList | None, ResourceList]] = {}
    for key in ("containerStatuses", "initContainerStatuses"):
        for entry in _sequence(status.get(key)):
            entry = _mapping(entry)
            name = entry.get("name")
            name = name if isinstance(name, str) else ""
            resources = entry.get("resources")
            try:
                if isinstance(resources, dict):
                    requests: ResourceList | None = fix(_parse_list(resources.get("requests"), "resources.requests"))
                    limits: ResourceList | None = fix(_parse_list(resources.get("limits"), "resources.limits"))
                else:
                    requests = limits = None
                allocated = fix(_parse_list(entry.get("allocatedResources"), "allocatedResources"))
            except QuantityError as exc:
                raise QuantityError(f'status.{key} "{name}" {exc}') from None
            by_name[name] = (requests, limits, allocated)
    return _StatusView(by_name, _resize_infeasible(status))


def _status_adjusted(container: _Container, which: str, status: _StatusView | None) -> ResourceList:
    """determineContainerReqs / determineContainerLimits when the status reports resources."""
    own = container.requests if which == "requests" else container.limits
    if status is None or container.name not in status.by_name:
        return own
    requests, limits, allocated = status.by_name[container.name]
    if requests is None:  # ContainerStatus.Resources is nil
        return own
    if which == "requests":
        if status.resize_infeasible:
            return _max_of(requests, allocated)
        return _max_of(own, requests, allocated)
    if status.resize_infeasible:
        return dict(limits or {})
    return _max_of(own, limits)


# --- aggregation (helpers.go AggregateContainerRequests / AggregateContainerLimits) -------


def _aggregate(view: _PodView, which: Literal["requests", "limits"], status: _StatusView | None) -> ResourceList:
    """Sum of app containers and sidecars, then max with each init container's peak.

    A regular init container runs alongside the sidecars started before it, so
    its peak is its own value plus theirs.
    """
    total: ResourceList = {}
    for container in view.containers:
        _add_into(total, _status_adjusted(container, which, status))
    sidecars: ResourceList = {}
    init_peak: ResourceList = {}
    for container in view.init_containers:
        if container.restartable:
            own = _status_adjusted(container, which, status)
            _add_into(total, own)
            _add_into(sidecars, own)
            _max_into(init_peak, sidecars)
        else:
            running: ResourceList = {}
            _add_into(running, container.requests if which == "requests" else container.limits)
            _add_into(running, sidecars)
            _max_into(init_peak, running)
    _max_into(total, init_peak)
    return total


def _pod_level_requests_set(view: _PodView) -> bool:
    """IsPodLevelRequestsSet."""
    return view.has_pod_resources and any(_is_pod_level_supported(n) for n in view.pod_requests)


def _pod_level_resources_set(view: _PodView) -> bool:
    """IsPodLevelResourcesSet."""
    return view.has_pod_resources and any(
        _is_pod_level_supported(n) for n in (*view.pod_requests, *view.pod_limits)
    )


def _requests(view: _PodView, status: _StatusView | None, exclude_overhead: bool, skip_pod_level: bool) -> ResourceList:
    """PodRequests."""
    result = _aggregate(view, "requests", status)
    if not skip_pod_level and _pod_level_requests_set(view):
        for name, value in view.pod_requests.items():
            if _is_pod_level_supported(name):
                result[name] = value
    if not exclude_overhead:
        _add_into(result, view.overhead)
    return result


def _limits(view: _PodView, status: _StatusView | None, exclude_overhead: bool, skip_pod_level: bool) -> ResourceList:
    """PodLimits: overhead is added only to limits that are set and non-zero."""
    result = _aggregate(view, "limits", status)
    if not skip_pod_level and _pod_level_resources_set(view):
        for name, value in view.pod_limits.items():
            if _is_pod_level_supported(name):
                result[name] = value
    if not exclude_overhead:
        for name, value in view.overhead.items():
            if name in result and not result[name].is_zero():
                result[name] = exact_add(result[name], value)
    return result


# --- public API ------------------------------------------------------------------------------


def container_requests(container: Any, *, apply_defaults: bool = True) -> ResourceList:
    """A container's requests as the API server stores them.

    Mirrors SetDefaults_Pod (a limit without a request becomes the request) and
    SetDefaults_ResourceList (values rounded up to milli units).
    """
    if not isinstance(container, dict):
        return {}
    parsed = _read_container(container, init=False)
    if not apply_defaults:
        return dict(parsed.requests)
    return _round_list(_default_container(parsed).requests)


def container_limits(container: Any, *, apply_defaults: bool = True) -> ResourceList:
    """A container's limits as the API server stores them (rounded up to milli units)."""
    if not isinstance(container, dict):
        return {}
    limits = _read_container(container, init=False).limits
    return _round_list(limits) if apply_defaults else dict(limits)


def container_requests_and_limits(container: Any) -> tuple[ResourceList, ResourceList]:
    """``(container_requests(c), container_limits(c))`` from one reading of the container."""
    if not isinstance(container, dict):
        return {}, {}
    defaulted = _default_container(_read_container(container, init=False))
    return _round_list(defaulted.requests), _round_list(defaulted.limits)


def pod_requests(
    spec: Any,
    *,
    status: Any = None,
    apply_defaults: bool = True,
    exclude_overhead: bool = False,
    skip_pod_level: bool = False,
) -> ResourceList:
    """Mirror of component-helpers ``resource.PodRequests``.

    Sum of the app containers plus the restartable init containers (sidecars);
    each regular init container counts as its request plus the sidecars started
    before it; the result is the larger of the two per resource. Pod-level
    ``spec.resources.requests`` (cpu, memory, hugepages-*) replace the
    aggregate where set; ``spec.overhead`` is added.

    ``status`` (a PodStatus) turns on UseStatusResources (in-place resize).
    ``apply_defaults`` first applies the API server's defaulting, so a raw
    manifest gives what the created pod will have; pass False to evaluate the
    object exactly as given.
    """
    view = _view(spec, apply_defaults)
    status_view = _read_status(status, apply_defaults) if status is not None else None
    return _requests(view, status_view, exclude_overhead, skip_pod_level)


def pod_limits(
    spec: Any,
    *,
    status: Any = None,
    apply_defaults: bool = True,
    exclude_overhead: bool = False,
    skip_pod_level: bool = False,
) -> ResourceList:
    """Mirror of component-helpers ``resource.PodLimits`` (see :func:`pod_requests`).

    Overhead is added only to limits that are present and non-zero; pod-level
    limits replace the aggregate when any pod-level resource is set.
    """
    view = _view(spec, apply_defaults)
    status_view = _read_status(status, apply_defaults) if status is not None else None
    return _limits(view, status_view, exclude_overhead, skip_pod_level)


def pod_requests_and_limits(spec: Any) -> tuple[ResourceList, ResourceList]:
    """``(pod_requests(spec), pod_limits(spec))`` (defaults applied, overhead and pod-level resources
    counted) from one reading of the spec."""
    view = _view(spec, apply_defaults=True)
    return (_requests(view, None, exclude_overhead=False, skip_pod_level=False),
            _limits(view, None, exclude_overhead=False, skip_pod_level=False))


def is_pod_level_resources_set(spec: Any) -> bool:
    """Mirror of ``resource.IsPodLevelResourcesSet``: spec.resources names cpu, memory or hugepages."""
    return _pod_level_resources_set(_read_view(spec))


def _resource_qos(requests: Mapping[str, Decimal], limits: Mapping[str, Decimal], name: str) -> QOSClass:
    """qos.go resourceQOS: Burstable if request != limit, BestEffort if both zero, else Guaranteed."""
    request, limit = requests.get(name, _ZERO), limits.get(name, _ZERO)
    if request != limit:
        return "Burstable"
    return "BestEffort" if request.is_zero() else "Guaranteed"


def _requirements_qos(requests: Mapping[str, Decimal], limits: Mapping[str, Decimal]) -> QOSClass:
    """qos.go requirementsQOS over cpu and memory; any mismatch is Burstable."""
    if not requests and not limits:
        return "BestEffort"
    classes = {_resource_qos(requests, limits, name) for name in _QOS_RESOURCES}
    return classes.pop() if len(classes) == 1 else "Burstable"


def qos_class(spec: Any, *, apply_defaults: bool = True) -> QOSClass:
    """Mirror of ``ComputePodQOS`` (pkg/apis/core/v1/helper/qos).

    Only cpu and memory count; zero counts as unset. With pod-level resources
    set (cpu, memory or hugepages in spec.resources) they alone decide.
    Otherwise every init and app container (not ephemeral ones) is classified:
    all BestEffort -> BestEffort, all Guaranteed -> Guaranteed, else Burstable.
    Defaulting is applied first (as the API server does before it sets
    status.qosClass), so limits-only containers are Guaranteed.
    """
    view = _view(spec, apply_defaults)
    if _pod_level_resources_set(view):
        return _requirements_qos(view.pod_requests, view.pod_limits)
    seen: set[QOSClass] = set()
    for container in (*view.init_containers, *view.containers):
        seen.add(_requirements_qos(container.requests, container.limits))
        if "Burstable" in seen or len(seen) > 1:
            return "Burstable"
    return seen.pop() if seen else "BestEffort"


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def pod_is_charged(pod: Any, *, now: datetime | None = None) -> bool:
    """Mirror of ``QuotaV1Pod``: False for terminal pods and for pods stuck terminating.

    A pod whose deletionTimestamp + deletionGracePeriodSeconds lies before
    ``now`` is no longer charged; without ``now`` (the core has no clock) such
    a pod is still charged.
    """
    if not isinstance(pod, dict):
        return False
    phase = _mapping(pod.get("status")).get("phase")
    if phase in ("Failed", "Succeeded"):
        return False
    meta = _mapping(pod.get("metadata"))
    deleted = _parse_time(meta.get("deletionTimestamp"))
    grace = meta.get("deletionGracePeriodSeconds")
    if now is None or deleted is None or isinstance(grace, bool) or not isinstance(grace, int):
        return True
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return not now > deleted + timedelta(seconds=grace)


def _compute_usage(requests: ResourceList, limits: ResourceList) -> ResourceList:
    """pods.go podComputeUsageHelper."""
    usage: ResourceList = {"pods": _ONE}
    for name in ("cpu", "memory", "ephemeral-storage"):
        if name in requests:
            usage[name] = requests[name]
            usage["requests." + name] = requests[name]
        if name in limits:
            usage["limits." + name] = limits[name]
    for name, value in requests.items():
        if name.startswith(_HUGEPAGES):
            usage[name] = value
            usage["requests." + name] = value
        if _is_dra_extended(name):
            usage["requests." + name] = value
    return usage


def quota_usage(pod: Any, *, now: datetime | None = None) -> ResourceList:
    """Mirror of the ResourceQuota pod evaluator's ``PodUsageFunc`` for one pod.

    ``count/pods`` is always 1 (object count quota tracks every stored pod, even
    terminal ones). A pod that is charged (see :func:`pod_is_charged`) also
    counts ``pods``: 1 and, from its effective requests and limits (with the
    status of in-place resizes), ``cpu``/``memory``/``ephemeral-storage`` (=
    requests), ``requests.*``, ``limits.*``, ``hugepages-*`` and
    ``requests.hugepages-*``, and ``requests.<extended resource>``. Keys whose
    resource is present with a zero value are kept, as upstream keeps them.
    ``{}`` when ``pod`` is not an object at all.
    """
    if not isinstance(pod, dict):
        return {}
    if not pod_is_charged(pod, now=now):
        return {"count/pods": _ONE}
    return _usage(pod, _view(pod.get("spec"), apply_defaults=True))


def _usage(pod: dict[str, Any], view: _PodView) -> ResourceList:
    """quota_usage of a charged pod whose defaulted spec is ``view``."""
    usage: ResourceList = {"count/pods": _ONE}
    status = _read_status(pod.get("status"), apply_defaults=True)
    requests = _requests(view, status, exclude_overhead=False, skip_pod_level=False)
    limits = _limits(view, status, exclude_overhead=False, skip_pod_level=False)
    usage.update(_compute_usage(requests, limits))
    return usage


def _container_quota_keys(container: _Container) -> set[str]:
    """The quota keys a single container provides values for (podComputeUsageHelper)."""
    return set(_compute_usage(container.requests, container.limits))


def quota_missing(spec: Any, keys: Iterable[str]) -> list[tuple[str, str]]:
    """Mirror of the pod evaluator's ``Constraints``: what ResourceQuota admission demands.

    For the quota keys under a hard limit, only cpu and memory ones matter
    (``cpu``, ``memory``, ``requests.*``, ``limits.*`` of those): every app and
    init container (sidecars included, ephemeral ones not) must then set the
    matching request or limit, after defaulting (a limit also provides the
    request). Nothing is demanded when pod-level resources are set. Returns
    (container name, key) pairs sorted by key, then name, one per pair, as in
    upstream's "must specify <key> for: <names>" message.
    """
    return _missing(_view(spec, apply_defaults=True), keys)


def _missing(view: _PodView, keys: Iterable[str]) -> list[tuple[str, str]]:
    if _pod_level_resources_set(view):
        return []
    required = {k for k in keys if isinstance(k, str)} & _CONSTRAINED_QUOTA_KEYS
    if not required:
        return []
    missing: set[tuple[str, str]] = set()
    for container in (*view.containers, *view.init_containers):
        for key in required - _container_quota_keys(container):
            missing.add((container.name, key))
    return sorted(missing, key=lambda pair: (pair[1], pair[0]))


def quota_demand(pod: Any, keys: Iterable[str]) -> tuple[ResourceList, list[tuple[str, str]]]:
    """``(quota_usage(pod), quota_missing(pod["spec"], keys))`` from one reading of the pod: what the quota
    rule needs on every Pod CREATE."""
    if not isinstance(pod, dict):
        return {}, quota_missing(None, keys)
    view = _view(pod.get("spec"), apply_defaults=True)
    missing = _missing(view, keys)
    usage = _usage(pod, view) if pod_is_charged(pod) else {"count/pods": _ONE}
    return usage, missing
