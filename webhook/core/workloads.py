"""Where the pod lives inside each kind of object the engine judges.

A Pod is judged as itself; a pod controller (Deployment, StatefulSet, DaemonSet,
ReplicaSet, ReplicationController, Job, CronJob) is judged through its pod
template, and every patch path points inside that template.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# kind -> path (as parts) from the object root to the pod template (the thing with metadata + spec)
_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}

@dataclass(frozen=True, slots=True)
class PodTarget:
    """The pod part of an object: ``root`` is the Pod itself or the pod template
    (the dict holding ``metadata`` and ``spec``), ``prefix`` the path to it."""

    kind: str
    prefix: tuple[str, ...]
    root: dict[str, Any]

    @property
    def spec(self) -> dict[str, Any]:
        return self.root["spec"]

    @property
    def metadata(self) -> Mapping[str, Any]:
        meta = self.root.get("metadata")
        return meta if isinstance(meta, dict) else _EMPTY


_EMPTY: Mapping[str, Any] = {}


def template_prefix(kind: str) -> tuple[str, ...] | None:
    """Path parts from the object root to its pod template, or None if the kind holds no pod."""
    return _TEMPLATE_PATHS.get(kind)


def locate_pod(obj: Mapping[str, Any]) -> PodTarget | None:
    """Find the pod (template) in ``obj``; None if the kind holds no pod or the template is missing."""
    kind = obj.get("kind")
    prefix = _TEMPLATE_PATHS.get(kind) if isinstance(kind, str) else None
    if prefix is None:
        return None
    node: Any = obj
    for part in prefix:
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return None
    if not isinstance(node, dict):
        return None
    spec = node.get("spec")
    if not isinstance(spec, dict):
        return None
    return PodTarget(kind=kind, prefix=prefix, root=node)  # type: ignore[arg-type]


APP_CONTAINERS = ("containers",)
APP_AND_INIT_CONTAINERS = ("containers", "initContainers")
ALL_CONTAINERS = ("containers", "initContainers", "ephemeralContainers")

# policy name of a probe -> the container field holding it
PROBE_FIELDS = {"liveness": "livenessProbe", "readiness": "readinessProbe", "startup": "startupProbe"}

# the two kinds of affinity terms (node affinity, pod affinity and anti-affinity)
REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"


def iter_containers(spec: Mapping[str, Any], lists: tuple[str, ...] = ALL_CONTAINERS):
    """Yield (list name, index, container dict) for each well-formed container, in order."""
    for list_name in lists:
        items = spec.get(list_name)
        if not isinstance(items, list):
            continue
        for index, container in enumerate(items):
            if isinstance(container, dict):
                yield list_name, index, container


def field_path(prefix: tuple[str, ...], *parts: str | int) -> str:
    """Human field path: ``spec.template.spec.containers[0].image``."""
    out = ""
    for part in prefix + parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out
