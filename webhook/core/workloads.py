"""Where the pod lives inside each kind of object the engine judges.

A Pod is judged as itself; a pod controller (Deployment, StatefulSet, DaemonSet,
ReplicaSet, ReplicationController, Job, CronJob) is judged through its pod
template, and every patch path points inside that template.

Other kinds holding a pod template (an Argo Rollout, a Knative Service, any controller of
a custom resource) are judged when the policies say where the template is
(``spec.podTemplates``): the caller passes those locations as :data:`PodTemplatePath`
tuples (API group, kind, path parts), matched on the object's API group and kind, so a
Knative ``Service`` (group ``serving.knative.dev``) is told apart from the core one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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

# the API group of each kind above (what a spec.podTemplates entry may not name again)
_TEMPLATE_GROUPS: dict[str, str] = {
    "Pod": "", "Deployment": "apps", "StatefulSet": "apps", "DaemonSet": "apps", "ReplicaSet": "apps",
    "ReplicationController": "", "Job": "batch", "CronJob": "batch",
}

# where another kind keeps its pod template: (API group, kind, path parts from the object root)
PodTemplatePath = tuple[str, str, tuple[str, ...]]
# where a controller usually keeps its pod template: looked at only to say why an object was skipped
_USUAL_TEMPLATE_PATHS: tuple[tuple[str, ...], ...] = (("spec", "template"), ("spec", "jobTemplate", "spec", "template"))


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
    """Path parts from the object root to the pod template of a built-in kind, or None if the kind holds no pod."""
    return _TEMPLATE_PATHS.get(kind)


def builtin_group(kind: str) -> str | None:
    """The API group of a built-in kind judged through its pod (``apps`` for Deployment); None for other kinds."""
    return _TEMPLATE_GROUPS.get(kind)


def api_group(obj: Mapping[str, Any]) -> str:
    """The API group of ``obj``: ``apps`` for ``apps/v1``, ``""`` for the core group (``v1``)."""
    version = obj.get("apiVersion")
    if not isinstance(version, str) or "/" not in version:
        return ""
    return version.split("/", 1)[0]


def _extra_prefixes(obj: Mapping[str, Any], kind: str,
                    templates: Iterable[PodTemplatePath]) -> list[tuple[str, ...]]:
    group: str | None = None
    found: list[tuple[str, ...]] = []
    for t_group, t_kind, path in templates:
        if t_kind != kind:
            continue
        if group is None:
            group = api_group(obj)
        if t_group == group:
            found.append(path)
    return found


def _template_at(obj: Mapping[str, Any], prefix: tuple[str, ...]) -> dict[str, Any] | None:
    node: Any = obj
    for part in prefix:
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return None
    if not isinstance(node, dict) or not isinstance(node.get("spec"), dict):
        return None
    return node


def pod_prefix(obj: Mapping[str, Any], templates: Iterable[PodTemplatePath] = ()) -> tuple[str, ...] | None:
    """Path parts from the object root to its pod (template): a ``templates`` entry naming the object's group
    and kind (when several do, the first whose path holds a pod template), else the built-in kinds' own; None
    when the kind holds no pod as far as we know."""
    kind = obj.get("kind")
    if not isinstance(kind, str):
        return None
    if templates:
        extra = _extra_prefixes(obj, kind, templates)
        if extra:
            return next((p for p in extra if _template_at(obj, p) is not None), extra[0])
    return _TEMPLATE_PATHS.get(kind)


def locate_pod(obj: Mapping[str, Any], templates: Iterable[PodTemplatePath] = ()) -> PodTarget | None:
    """Find the pod (template) in ``obj``; None if the kind holds no pod or the template is missing.

    ``templates``: where other kinds keep their pod template (the policy set's ``pod_templates``)."""
    prefix = pod_prefix(obj, templates)
    if prefix is None:
        return None
    node = _template_at(obj, prefix)
    if node is None:
        return None
    return PodTarget(kind=obj["kind"], prefix=prefix, root=node)


def describe_kind(obj: Mapping[str, Any]) -> str:
    """``ConfigMap``, ``Rollout (argoproj.io)``: the kind, and its API group outside the core group."""
    kind = obj.get("kind")
    name = kind if isinstance(kind, str) and kind else "<no kind>"
    group = api_group(obj)
    return f"{name} ({group})" if group else name


def _holds_pod_template(obj: Mapping[str, Any], prefix: tuple[str, ...]) -> bool:
    node = _template_at(obj, prefix)
    return node is not None and isinstance(node["spec"].get("containers"), list)


def why_no_pod(obj: Mapping[str, Any], templates: Iterable[PodTemplatePath] = ()) -> str:
    """Why ``obj`` has no pod (template) to judge, in words: said of an object no rule judged."""
    what = describe_kind(obj)
    kind = obj.get("kind")
    kind = kind if isinstance(kind, str) else ""
    extra = _extra_prefixes(obj, kind, templates)
    if extra:
        where = " or ".join(".".join(p) for p in extra)
        return f"{what}: no pod template at {where} (where spec.podTemplates says it is)"
    builtin = _TEMPLATE_PATHS.get(kind)
    if builtin is not None:
        return f"{what}: no pod template at {'.'.join(builtin)}" if builtin else f"{what}: no pod spec"
    found = next((p for p in _USUAL_TEMPLATE_PATHS if _holds_pod_template(obj, p)), None)
    if found is not None:
        group = api_group(obj) or '""'
        entry = f"{{kind: {kind}, group: {group}, path: {'.'.join(found)}}}"
        return (f"{what}: no spec.podTemplates entry names where its pod template is (it looks like "
                f"{'.'.join(found)}; to judge it, add to a policy's spec: podTemplates: [{entry}])")
    return f"{what}: not a pod or pod template; no rule judges this kind"


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
