"""defaults.securityContext: pod and container securityContexts, merged field by field.

A field is set only where the pod/container leaves it unset; nested objects
(``capabilities``, ``seccompProfile``, ``seLinuxOptions``, ...) are merged the
same way, one level at a time; lists (``capabilities.drop``) are never changed
once present. Fields the API server forbids on Windows pods (``spec.os.name:
windows``) are not added to them, nor ``windowsOptions`` to Linux pods.
On the ``pods/ephemeralcontainers`` subresource only ephemeral containers change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.core.mutation import MutationContext
from webhook.core.mutators._containers import containers
from webhook.core.plan import WITH_EPHEMERAL
from webhook.core.workloads import ALL_CONTAINERS

# Fields the API server rejects when spec.os.name is windows (PodSpec validation, validateWindows).
LINUX_ONLY_POD = frozenset({
    "seLinuxOptions", "seccompProfile", "appArmorProfile", "runAsUser", "runAsGroup", "fsGroup",
    "fsGroupChangePolicy", "sysctls", "supplementalGroups", "supplementalGroupsPolicy", "seLinuxChangePolicy",
})
LINUX_ONLY_CONTAINER = frozenset({
    "seLinuxOptions", "seccompProfile", "appArmorProfile", "capabilities", "readOnlyRootFilesystem",
    "privileged", "allowPrivilegeEscalation", "procMount", "runAsUser", "runAsGroup",
})
WINDOWS_ONLY = frozenset({"windowsOptions"})


def pod_os(spec: Mapping[str, Any]) -> str | None:
    os_ = spec.get("os")
    name = os_.get("name") if isinstance(os_, dict) else None
    return name if isinstance(name, str) else None


def fill(ctx: MutationContext, target: dict[str, Any], path: tuple[str | int, ...],
         defaults: Mapping[str, Any]) -> None:
    """Recursively add the keys of ``defaults`` that ``target`` lacks."""
    for key, value in defaults.items():
        current = target.get(key)
        if current is None:
            ctx.put(target, path, key, value)
        elif isinstance(current, dict) and isinstance(value, dict):
            fill(ctx, current, path + (key,), value)


def _for_os(defaults: Mapping[str, Any], os_name: str | None, linux_only: frozenset[str]) -> dict[str, Any]:
    if os_name == "windows":
        return {k: v for k, v in defaults.items() if k not in linux_only}
    if os_name == "linux":
        return {k: v for k, v in defaults.items() if k not in WINDOWS_ONLY}
    return dict(defaults)


def fill_section(ctx: MutationContext, owner: dict[str, Any], path: tuple[str | int, ...],
                 defaults: Mapping[str, Any]) -> None:
    """Fill ``owner.securityContext`` from ``defaults`` (creating it when absent)."""
    if not defaults:
        return
    current = owner.get("securityContext")
    if not isinstance(current, dict):
        ctx.put(owner, path, "securityContext", dict(defaults))
    else:
        fill(ctx, current, path + ("securityContext",), defaults)


@dataclass(frozen=True, slots=True)
class SecurityContextMutator:
    pod: Mapping[str, Any]
    container: Mapping[str, Any]
    rule: str = "defaults.securityContext"
    subresources: frozenset[str] = WITH_EPHEMERAL

    def mutate(self, ctx: MutationContext) -> None:
        spec = ctx.target.spec
        os_name = pod_os(spec)
        ephemeral_only = ctx.request.subresource == "ephemeralcontainers"
        if not ephemeral_only:
            fill_section(ctx, spec, ctx.path("spec"), _for_os(self.pod, os_name, LINUX_ONLY_POD))
        container_defaults = _for_os(self.container, os_name, LINUX_ONLY_CONTAINER)
        lists = ("ephemeralContainers",) if ephemeral_only else ALL_CONTAINERS
        for container, path in containers(ctx, lists):
            fill_section(ctx, container, path, container_defaults)
