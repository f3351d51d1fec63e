"""Restricted checks: each function is one revision of one upstream check (see checks_baseline)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.core.pod_security._helpers import (
    containers,
    containers_phrase,
    in_user_namespace,
    is_windows,
    is_zero,
    items,
    join_quote,
    pluralize,
    setters_with_containers,
    string,
    sub,
)
from webhook.core.pod_security._model import Finding
from webhook.core.pod_security.checks_baseline import seccomp_type_allowed

Meta = Mapping[str, Any]
Spec = Mapping[str, Any]


# --- restrictedVolumes --------------------------------------------------------------------------------

# Volume sources the restricted level allows (``image`` was allowed in place, at every version).
ALLOWED_VOLUME_SOURCES = (
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim", "projected",
    "secret",
)
# Known restricted sources, in upstream's order of recognition, with the name upstream reports.
RESTRICTED_VOLUME_SOURCES = (
    ("hostPath", "hostPath"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("gitRepo", "gitRepo"),
    ("nfs", "nfs"),
    ("iscsi", "iscsi"),
    ("glusterfs", "glusterfs"),
    ("rbd", "rbd"),
    ("flexVolume", "flexVolume"),
    ("cinder", "cinder"),
    ("cephfs", "cephfs"),
    ("flocker", "flocker"),
    ("fc", "fc"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("quobyte", "quobyte"),
    ("azureDisk", "azureDisk"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("scaleIO", "scaleIO"),
    ("storageos", "storageos"),
)


def _defaults_to_empty_dir(volume: Mapping[str, Any]) -> bool:
    """No volume source at all (only ``name``, or sources explicitly null): the API defaults it to emptyDir.

    The API server's defaulting (SetDefaults_Volume) runs before admission, so PodSecurity never
    sees such a volume as anything but an emptyDir; upstream's own restricted pass fixture
    ``restrictedvolumes0`` carries one (``- name: volume0``, "implicit empty dir").

    A volume carrying keys the API does not know is not defaulted here: the API server would reject
    or drop them, and we cannot tell what was meant, so it stays a restricted ("unknown") type.
    """
    return all(key == "name" or value is None for key, value in volume.items())


def restricted_volumes_1_0(metadata: Meta, spec: Spec) -> Finding | None:
    bad: list[str] = []
    types: set[str] = set()
    fields: list[str] = []
    for index, volume in enumerate(items(spec, "volumes")):
        if not isinstance(volume, dict):
            volume = {}
        if any(volume.get(source) is not None for source in ALLOWED_VOLUME_SOURCES):
            continue
        if _defaults_to_empty_dir(volume):
            continue
        bad.append(string(volume, "name"))
        for source, reported in RESTRICTED_VOLUME_SOURCES:
            if volume.get(source) is not None:
                types.add(reported)
                fields.append(f"spec.volumes[{index}].{source}")
                break
        else:
            types.add("unknown")
            fields.append(f"spec.volumes[{index}]")
    if not bad:
        return None
    count = len(bad)
    return Finding(
        "restricted volume types",
        f"{pluralize('volume', 'volumes', count)} {join_quote(bad)} {pluralize('uses', 'use', count)} "
        f"{pluralize('restricted volume type', 'restricted volume types', len(types))} {join_quote(sorted(types))}",
        (), tuple(fields), True,
    )


# --- allowPrivilegeEscalation -------------------------------------------------------------------------

def allow_privilege_escalation_1_8(metadata: Meta, spec: Spec) -> Finding | None:
    bad: list[str] = []
    fields: list[str] = []
    for ref in containers(spec):
        context = ref.security_context
        if context is None or context.get("allowPrivilegeEscalation") is not False:
            bad.append(ref.name)
            fields.append(ref.path("securityContext", "allowPrivilegeEscalation"))
    if not bad:
        return None
    return Finding(
        "allowPrivilegeEscalation != false",
        f"{containers_phrase(bad)} must set "
        f"securityContext.allowPrivilegeEscalation=false",
        tuple(bad), tuple(fields),
    )


def allow_privilege_escalation_1_25(metadata: Meta, spec: Spec) -> Finding | None:
    """From 1.25 Windows pods (``spec.os.name: windows``) are exempt: the field is Linux-only."""
    if is_windows(spec):
        return None
    return allow_privilege_escalation_1_8(metadata, spec)


# --- runAsNonRoot ---------------------------------------------------------------------------------------

def run_as_non_root_1_0(metadata: Meta, spec: Spec) -> Finding | None:
    fields: list[str] = []
    pod_value = sub(spec, "securityContext")
    pod_value = pod_value.get("runAsNonRoot") if pod_value is not None else None
    pod_bad = pod_value is not None and pod_value is not True
    pod_non_root = pod_value is True
    if pod_bad:
        fields.append("spec.securityContext.runAsNonRoot")
    explicit: list[str] = []
    implicit: list[str] = []
    implicit_fields: list[str] = []
    for ref in containers(spec):
        context = ref.security_context
        value = context.get("runAsNonRoot") if context is not None else None
        if value is not None:
            if value is not True:
                explicit.append(ref.name)
                fields.append(ref.path("securityContext", "runAsNonRoot"))
        elif not pod_non_root:
            implicit.append(ref.name)
            implicit_fields.append(ref.path("securityContext", "runAsNonRoot"))
    setters = setters_with_containers(pod_bad, explicit)
    if setters:
        return Finding(
            "runAsNonRoot != true",
            f"{' and '.join(setters)} must not set securityContext.runAsNonRoot=false",
            tuple(explicit), tuple(fields), pod_bad,
        )
    if implicit:
        return Finding(
            "runAsNonRoot != true",
            f"pod or {pluralize('container', 'containers', len(implicit))} {join_quote(implicit)} must set "
            f"securityContext.runAsNonRoot=true",
            tuple(implicit), ("spec.securityContext.runAsNonRoot", *implicit_fields),
        )
    return None


def run_as_non_root_1_35(metadata: Meta, spec: Spec) -> Finding | None:
    """From 1.35 pods in their own user namespace (``hostUsers: false``) are exempt (KEP-127)."""
    if in_user_namespace(spec):
        return None
    return run_as_non_root_1_0(metadata, spec)


# --- runAsUser ----------------------------------------------------------------------------------------

def run_as_user_1_23(metadata: Meta, spec: Spec) -> Finding | None:
    fields: list[str] = []
    pod_context = sub(spec, "securityContext")
    pod_bad = pod_context is not None and is_zero(pod_context.get("runAsUser"))
    if pod_bad:
        fields.append("spec.securityContext.runAsUser")
    bad: list[str] = []
    for ref in containers(spec):
        context = ref.security_context
        if context is not None and is_zero(context.get("runAsUser")):
            bad.append(ref.name)
            fields.append(ref.path("securityContext", "runAsUser"))
    setters = setters_with_containers(pod_bad, bad)
    if not setters:
        return None
    return Finding("runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0", tuple(bad), tuple(fields),
                   pod_bad)


def run_as_user_1_35(metadata: Meta, spec: Spec) -> Finding | None:
    """From 1.35 pods in their own user namespace (``hostUsers: false``) are exempt (KEP-127)."""
    if in_user_namespace(spec):
        return None
    return run_as_user_1_23(metadata, spec)


# --- seccompProfile_restricted ----------------------------------------------------------------------

def seccomp_profile_restricted_1_19(metadata: Meta, spec: Spec) -> Finding | None:
    setters: list[str] = []
    values: set[str] = set()
    fields: list[str] = []
    pod_set = False
    pod_profile = sub(sub(spec, "securityContext"), "seccompProfile")
    if pod_profile is not None:
        if not seccomp_type_allowed(string(pod_profile, "type")):
            setters.append("pod")
            values.add(string(pod_profile, "type"))
            fields.append("spec.securityContext.seccompProfile.type")
        else:
            pod_set = True
    explicit: list[str] = []
    implicit: list[str] = []
    implicit_fields: list[str] = []
    for ref in containers(spec):
        profile = sub(ref.security_context, "seccompProfile")
        if profile is not None:
            if not seccomp_type_allowed(string(profile, "type")):
                explicit.append(ref.name)
                values.add(string(profile, "type"))
                fields.append(ref.path("securityContext", "seccompProfile", "type"))
        elif not pod_set:
            implicit.append(ref.name)
            implicit_fields.append(ref.path("securityContext", "seccompProfile", "type"))
    if explicit:
        setters.append(f"{pluralize('container', 'containers', len(explicit))} {join_quote(explicit)}")
    if setters:
        return Finding(
            "seccompProfile",
            f"{' and '.join(setters)} must not set securityContext.seccompProfile.type to {join_quote(sorted(values))}",
            tuple(explicit), tuple(fields), setters[0] == "pod",
        )
    if implicit:
        return Finding(
            "seccompProfile",
            f"pod or {pluralize('container', 'containers', len(implicit))} {join_quote(implicit)} must set "
            f'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"',
            tuple(implicit), ("spec.securityContext.seccompProfile.type", *implicit_fields),
        )
    return None


def seccomp_profile_restricted_1_25(metadata: Meta, spec: Spec) -> Finding | None:
    """From 1.25 Windows pods are exempt: seccomp is Linux-only."""
    if is_windows(spec):
        return None
    return seccomp_profile_restricted_1_19(metadata, spec)


# --- capabilities_restricted ------------------------------------------------------------------------

def capabilities_restricted_1_22(metadata: Meta, spec: Spec) -> Finding | None:
    missing_drop: list[str] = []
    adding: list[str] = []
    forbidden: set[str] = set()
    fields: list[str] = []
    for ref in containers(spec):
        caps = sub(ref.security_context, "capabilities")
        if caps is None:
            missing_drop.append(ref.name)
            fields.append(ref.path("securityContext", "capabilities", "drop"))
            continue
        if "ALL" not in [c for c in items(caps, "drop") if isinstance(c, str)]:
            missing_drop.append(ref.name)
            fields.append(ref.path("securityContext", "capabilities", "drop"))
        added_forbidden = False
        for cap in items(caps, "add"):
            cap = cap if isinstance(cap, str) else str(cap)
            if cap != "NET_BIND_SERVICE":
                added_forbidden = True
                forbidden.add(cap)
        if added_forbidden:
            adding.append(ref.name)
            fields.append(ref.path("securityContext", "capabilities", "add"))
    details: list[str] = []
    if missing_drop:
        details.append(
            f"{pluralize('container', 'containers', len(missing_drop))} {join_quote(missing_drop)} must set "
            f'securityContext.capabilities.drop=["ALL"]'
        )
    if adding:
        details.append(
            f"{pluralize('container', 'containers', len(adding))} {join_quote(adding)} must not include "
            f"{join_quote(sorted(forbidden))} in securityContext.capabilities.add"
        )
    if not details:
        return None
    at_fault = tuple(dict.fromkeys(missing_drop + adding))
    return Finding("unrestricted capabilities", "; ".join(details), at_fault, tuple(fields))


def capabilities_restricted_1_25(metadata: Meta, spec: Spec) -> Finding | None:
    """From 1.25 Windows pods are exempt: capabilities are Linux-only."""
    if is_windows(spec):
        return None
    return capabilities_restricted_1_22(metadata, spec)
