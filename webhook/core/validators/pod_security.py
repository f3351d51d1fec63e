"""podSecurity: the Pod Security Standards at a level and version, as Kubernetes' PodSecurity admission judges.

One Violation per failing check (``check`` = the upstream check id, ``message`` =
``reason (detail)`` worded as upstream prints it), with ``container`` and
``field`` set when the fault lies in exactly one container / one field.

Which requests are judged mirrors upstream's admission plugin:

* Pods: the subresources upstream ignores (``exec``, ``attach``, ``binding``,
  ``eviction``, ``log``, ``portforward``, ``proxy``, ``status``) are not judged;
  any other is (of those, the engine passes on only ``ephemeralcontainers``
  and ``resize``: it skips every other subresource before any rule runs; a
  resize changes only resources, so it is never significant). An UPDATE is judged
  only when it is *significant* as upstream's ``isSignificantPodUpdate`` defines
  it: a container or init container added/removed or its image changed, an
  ephemeral container added or its image changed, or a seccomp annotation (pod
  or container) changed. Other changes (labels, annotations, tolerations,
  activeDeadlineSeconds, ...) cannot make a running pod less secure and are not
  re-judged, so a pod admitted under an older policy is not locked out of them.
* Pod templates (Deployment, Job, ...): judged on CREATE and UPDATE, never on a
  subresource (upstream's ``ValidatePodController``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook.core.decision import Violation
from webhook.core.plan import WITH_EPHEMERAL, WITH_RESIZE, ValidationContext
from webhook.core.pod_security import CheckFailure, evaluate, parse_level_version
from webhook.core.pod_security.checks_baseline import (
    SECCOMP_CONTAINER_ANNOTATION_PREFIX,
    SECCOMP_POD_ANNOTATION,
)
from webhook.core.validators._base import request_only
from webhook.core.workloads import field_path

IGNORED_POD_SUBRESOURCES = frozenset({"exec", "attach", "binding", "eviction", "log", "portforward", "proxy", "status"})


def _list(spec: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = spec.get(key)
    if not isinstance(value, list):
        return []
    return [c if isinstance(c, dict) else {} for c in value]


def _annotations(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = pod.get("metadata")
    value = meta.get("annotations") if isinstance(meta, dict) else None
    return value if isinstance(value, dict) else {}


def _spec(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = pod.get("spec")
    return spec if isinstance(spec, dict) else {}


def _significant_container_update(new: Mapping[str, Any], old: Mapping[str, Any], annotations: Mapping[str, Any],
                                  old_annotations: Mapping[str, Any]) -> bool:
    if new.get("image") != old.get("image"):
        return True
    key = SECCOMP_CONTAINER_ANNOTATION_PREFIX + str(new.get("name") or "")
    return annotations.get(key) != old_annotations.get(key)


def is_significant_pod_update(pod: Mapping[str, Any], old_pod: Mapping[str, Any]) -> bool:
    """Whether a Pod UPDATE can change what the Pod Security checks see (upstream's isSignificantPodUpdate)."""
    annotations, old_annotations = _annotations(pod), _annotations(old_pod)
    if annotations.get(SECCOMP_POD_ANNOTATION) != old_annotations.get(SECCOMP_POD_ANNOTATION):
        return True
    spec, old_spec = _spec(pod), _spec(old_pod)
    for key in ("containers", "initContainers"):
        new_list, old_list = _list(spec, key), _list(old_spec, key)
        if len(new_list) != len(old_list):
            return True
        for new, old in zip(new_list, old_list):
            if _significant_container_update(new, old, annotations, old_annotations):
                return True
    old_ephemeral = {c.get("name"): c for c in _list(old_spec, "ephemeralContainers")}
    for container in _list(spec, "ephemeralContainers"):
        previous = old_ephemeral.get(container.get("name"))
        if previous is None:
            return True  # an ephemeral container was added
        if _significant_container_update(container, previous, annotations, old_annotations):
            return True
    return False


@dataclass(frozen=True)
class PodSecurityValidator:
    """Validator for ``rules.podSecurity``: ``PodSecurityValidator("restricted", "v1.25")``."""

    level: str
    version: str = "latest"
    rule: str = "podSecurity"
    kinds: frozenset[str] | None = None
    # the engine hands a validator only the subresources it lists; which of them
    # are judged is decided below, as upstream decides it
    subresources: frozenset[str] = field(default=WITH_EPHEMERAL | WITH_RESIZE)
    reads_cluster = request_only  # the request alone decides (its verdict may be reused for an identical one)

    def __post_init__(self) -> None:
        level, version = parse_level_version({"level": self.level, "version": self.version})
        object.__setattr__(self, "level", level)
        object.__setattr__(self, "version", version)

    @classmethod
    def from_spec(cls, value: Any) -> PodSecurityValidator:
        """From the policy's ``rules.podSecurity`` value: ``"restricted"`` or ``{level, version}``."""
        level, version = parse_level_version(value)
        return cls(level, version)

    @property
    def label(self) -> str:
        return f"{self.level}:{self.version}"

    def judges(self, ctx: ValidationContext) -> bool:
        request = ctx.request
        target = ctx.target
        if target is None or request.operation not in ("CREATE", "UPDATE"):
            return False
        if target.kind != "Pod":
            return request.subresource == ""
        if request.subresource in IGNORED_POD_SUBRESOURCES:
            return False
        if request.operation == "UPDATE" and ctx.old_target is not None:
            return is_significant_pod_update(target.root, ctx.old_target.root)
        return True

    def validate(self, ctx: ValidationContext) -> Iterator[Violation]:
        if self.level == "privileged" or not self.judges(ctx):
            return
        assert ctx.target is not None
        for failure in evaluate(self.level, self.version, ctx.target.metadata, ctx.target.spec, ctx.memo):
            yield self._violation(ctx, failure)

    def _violation(self, ctx: ValidationContext, failure: CheckFailure) -> Violation:
        prefix = ctx.target.prefix if ctx.target is not None else ()
        container = failure.containers[0] if len(failure.containers) == 1 and not failure.pod_level else None
        where = None
        if len(failure.fields) == 1:
            where = failure.fields[0]
            if prefix:
                where = field_path(prefix) + "." + where
        return Violation(
            policy=ctx.policy.name,
            rule=self.rule,
            message=failure.message,
            container=container,
            field=where,
            required=self.label,
            check=failure.check,
            enforcement=ctx.policy.enforcement.value,
        )
