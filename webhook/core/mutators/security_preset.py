"""defaults.securityContext (restricted preset): fill what a typical pod needs to meet ``restricted``.

Never overwrites a value the pod sets; fills only where the field is unset
(absent or null), the way the restricted checks read the pod:

* pod ``securityContext.seccompProfile: {type: RuntimeDefault}`` when the pod
  sets no seccompProfile. Containers that set their own keep it (container
  level wins); containers that set none inherit the pod's, which is what the
  ``seccompProfile_restricted`` check accepts. Skipped when the pod carries a
  legacy seccomp annotation (``seccomp.security.alpha.kubernetes.io/pod``): the
  API server requires annotation and field to agree, so the user's choice stands.
* pod ``securityContext.runAsNonRoot: true`` when unset, unless something runs
  as root on purpose: the pod or a container that would inherit the field sets
  ``runAsUser: 0`` (the kubelet would refuse to start it; the policy reports
  ``runAsUser=0`` instead), or the pod runs in its own user namespace
  (``hostUsers: false``), which ``restricted`` exempts from runAsNonRoot since v1.35.
* per container, init container and ephemeral container:
  ``allowPrivilegeEscalation: false`` when unset (not for ``privileged: true``
  containers or ones adding ``CAP_SYS_ADMIN``: the API server rejects that
  combination; the policy reports them instead), and ``capabilities.drop: [ALL]``
  when the container has no drop list. A drop list without ``ALL`` gets ``ALL``
  appended: appending keeps every entry the user wrote (dropping ALL subsumes
  them), so nothing is overwritten.
* Windows pods (``spec.os.name: windows``): restricted exempts them from the
  seccomp, allowPrivilegeEscalation and capabilities checks (v1.25+) and the
  API server forbids those Linux fields on them, so only ``runAsNonRoot`` is filled.

A container whose image runs as root will still be refused by the kubelet
under ``runAsNonRoot: true``; that is the point of the restricted level.
Deterministic (pod first, then containers, initContainers, ephemeralContainers
in order) and idempotent: a second pass finds nothing unset.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.core.mutation import MutationContext
from webhook.core.mutators.security_context import pod_os
from webhook.core.plan import WITH_EPHEMERAL
from webhook.core.pod_security._helpers import is_zero
from webhook.core.pod_security.checks_baseline import SECCOMP_POD_ANNOTATION
from webhook.core.workloads import ALL_CONTAINERS, iter_containers


def _dict_or_none(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _settable(parent: Mapping[str, Any], key: str) -> bool:
    """``parent[key]`` is unset (absent or null) or an object we may descend into."""
    value = parent.get(key)
    return value is None or isinstance(value, dict)


def _is_root(context: Mapping[str, Any] | None) -> bool:
    return context is not None and is_zero(context.get("runAsUser"))


class RestrictedPreset:
    """Mutator making a typical pod ``restricted``-compliant without overwriting anything."""

    rule = "defaults.securityContext"
    subresources = WITH_EPHEMERAL

    def mutate(self, ctx: MutationContext) -> None:
        spec = ctx.target.spec
        windows = pod_os(spec) == "windows"
        ephemeral_only = ctx.request.subresource == "ephemeralcontainers"
        if not ephemeral_only:
            self._pod_level(ctx, spec, windows)
        if windows:
            return
        lists = ("ephemeralContainers",) if ephemeral_only else ALL_CONTAINERS
        for list_name, index, container in iter_containers(spec, lists):
            self._container(ctx, container, ctx.path("spec", list_name, index))

    # --- pod level -------------------------------------------------------------------------------
    def _pod_level(self, ctx: MutationContext, spec: dict[str, Any], windows: bool) -> None:
        if not _settable(spec, "securityContext"):
            return
        spec_path = ctx.path("spec")
        pod_context = _dict_or_none(spec.get("securityContext"))
        annotations = _dict_or_none((_dict_or_none(ctx.target.root.get("metadata")) or {}).get("annotations")) or {}
        if (not windows and (pod_context is None or pod_context.get("seccompProfile") is None)
                and SECCOMP_POD_ANNOTATION not in annotations):
            ctx.put_deep(spec, spec_path, ("securityContext", "seccompProfile"), {"type": "RuntimeDefault"})
            pod_context = _dict_or_none(spec.get("securityContext"))
        if (pod_context is None or pod_context.get("runAsNonRoot") is None) and self._may_require_non_root(spec):
            ctx.put_deep(spec, spec_path, ("securityContext", "runAsNonRoot"), True)

    @staticmethod
    def _may_require_non_root(spec: Mapping[str, Any]) -> bool:
        if spec.get("hostUsers") is False:
            return False
        pod_context = _dict_or_none(spec.get("securityContext"))
        if _is_root(pod_context):
            return False
        for _, _, container in iter_containers(spec, ALL_CONTAINERS):
            context = _dict_or_none(container.get("securityContext"))
            inherits = context is None or context.get("runAsNonRoot") is None
            if inherits and _is_root(context):
                return False
        return True

    # --- containers --------------------------------------------------------------------------------
    def _container(self, ctx: MutationContext, container: dict[str, Any], path: tuple[str | int, ...]) -> None:
        if not _settable(container, "securityContext"):
            return
        context = _dict_or_none(container.get("securityContext"))
        caps = _dict_or_none(context.get("capabilities")) if context is not None else None
        privileged = context is not None and context.get("privileged") is True
        adds_sys_admin = caps is not None and isinstance(caps.get("add"), list) and "CAP_SYS_ADMIN" in caps["add"]
        if (context is None or context.get("allowPrivilegeEscalation") is None) and not (privileged or adds_sys_admin):
            ctx.put_deep(container, path, ("securityContext", "allowPrivilegeEscalation"), False)
            context = _dict_or_none(container.get("securityContext"))
        if context is not None and not _settable(context, "capabilities"):
            return
        caps = _dict_or_none(context.get("capabilities")) if context is not None else None
        drop = caps.get("drop") if caps is not None else None
        if drop is None:
            ctx.put_deep(container, path, ("securityContext", "capabilities", "drop"), ["ALL"])
        elif isinstance(drop, list) and "ALL" not in drop:
            ctx.append(drop, path + ("securityContext", "capabilities", "drop"), "ALL")
