"""Baseline checks: each function is one revision of one upstream check.

Every function takes ``(metadata, spec)`` of a pod (or pod template) as plain
dicts and returns a :class:`Finding` when the pod is forbidden, else None.
Reasons and details are worded exactly as the upstream PodSecurity admission
library words them (container lists in visiting order unless upstream sorts them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.core.pod_security._helpers import (
    containers,
    containers_phrase,
    go_quote,
    in_user_namespace,
    is_true,
    items,
    join_quote,
    pluralize,
    setters_with_containers,
    string,
    sub,
)
from webhook.core.pod_security._model import Finding

Meta = Mapping[str, Any]
Spec = Mapping[str, Any]


def raw(parent: Mapping[str, Any] | None, key: str) -> Any:
    """A field's value as decoded (None when the parent object is absent)."""
    return None if parent is None else parent.get(key)


def _annotations(metadata: Meta) -> Mapping[str, Any]:
    value = metadata.get("annotations") if isinstance(metadata, dict) else None
    return value if isinstance(value, dict) else {}


# --- windowsHostProcess ---------------------------------------------------------------------------

def windows_host_process_1_0(metadata: Meta, spec: Spec) -> Finding | None:
    bad: list[str] = []
    fields: list[str] = []
    for ref in containers(spec):
        if is_true(raw(sub(ref.security_context, "windowsOptions"), "hostProcess")):
            bad.append(ref.name)
            fields.append(ref.path("securityContext", "windowsOptions", "hostProcess"))
    pod_bad = is_true(raw(sub(sub(spec, "securityContext"), "windowsOptions"), "hostProcess"))
    if pod_bad:
        fields.insert(0, "spec.securityContext.windowsOptions.hostProcess")
    setters = setters_with_containers(pod_bad, bad)
    if not setters:
        return None
    return Finding(
        "hostProcess",
        f"{' and '.join(setters)} must not set securityContext.windowsOptions.hostProcess=true",
        tuple(bad), tuple(fields), pod_bad,
    )


# --- hostNamespaces ---------------------------------------------------------------------------------

def host_namespaces_1_0(metadata: Meta, spec: Spec) -> Finding | None:
    # upstream order and wording: hostNetwork=true, hostPID=true, hostIPC=true
    used = [name for name in ("hostNetwork", "hostPID", "hostIPC") if is_true(spec.get(name))]
    if not used:
        return None
    return Finding("host namespaces", ", ".join(f"{name}=true" for name in used), (),
                   tuple(f"spec.{name}" for name in used), True)


# --- privileged ---------------------------------------------------------------------------------------

def privileged_1_0(metadata: Meta, spec: Spec) -> Finding | None:
    bad: list[str] = []
    fields: list[str] = []
    for ref in containers(spec):
        if is_true(raw(ref.security_context, "privileged")):
            bad.append(ref.name)
            fields.append(ref.path("securityContext", "privileged"))
    if not bad:
        return None
    return Finding(
        "privileged",
        f"{containers_phrase(bad)} must not set securityContext.privileged=true",
        tuple(bad), tuple(fields),
    )


# --- capabilities_baseline --------------------------------------------------------------------------

CAPABILITIES_ALLOWED_1_0 = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})


def capabilities_baseline_1_0(metadata: Meta, spec: Spec) -> Finding | None:
    bad: list[str] = []
    fields: list[str] = []
    forbidden: set[str] = set()
    for ref in containers(spec):
        caps = sub(ref.security_context, "capabilities")
        if caps is None:
            continue
        valid = True
        for cap in items(caps, "add"):
            cap = cap if isinstance(cap, str) else str(cap)
            if cap not in CAPABILITIES_ALLOWED_1_0:
                valid = False
                forbidden.add(cap)
        if not valid:
            bad.append(ref.name)
            fields.append(ref.path("securityContext", "capabilities", "add"))
    if not bad:
        return None
    return Finding(
        "non-default capabilities",
        f"{containers_phrase(bad)} must not include "
        f"{join_quote(sorted(forbidden))} in securityContext.capabilities.add",
        tuple(bad), tuple(fields),
    )


# --- hostPathVolumes ----------------------------------------------------------------------------------

def host_path_volumes_1_0(metadata: Meta, spec: Spec) -> Finding | None:
    names: list[str] = []
    fields: list[str] = []
    for index, volume in enumerate(items(spec, "volumes")):
        if isinstance(volume, dict) and volume.get("hostPath") is not None:
            names.append(string(volume, "name"))
            fields.append(f"spec.volumes[{index}].hostPath")
    if not names:
        return None
    return Finding("hostPath volumes", f"{pluralize('volume', 'volumes', len(names))} {join_quote(names)}",
                   (), tuple(fields), True)


# --- hostPorts --------------------------------------------------------------------------------------

def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def host_ports_1_0(metadata: Meta, spec: Spec) -> Finding | None:
    bad: list[str] = []
    fields: list[str] = []
    ports: set[str] = set()
    for ref in containers(spec):
        valid = True
        for index, port in enumerate(items(ref.container, "ports")):
            if not isinstance(port, dict):
                continue
            host_port = _int(port.get("hostPort"))
            if host_port:
                valid = False
                ports.add(str(host_port))
                fields.append(ref.path(f"ports[{index}]", "hostPort"))
        if not valid:
            bad.append(ref.name)
    if not bad:
        return None
    count = len(bad)
    return Finding(
        "hostPort",
        f"{pluralize('container', 'containers', count)} {join_quote(bad)} {pluralize('uses', 'use', count)} "
        f"{pluralize('hostPort', 'hostPorts', len(ports))} {', '.join(sorted(ports))}",
        tuple(bad), tuple(fields),
    )


# --- hostProbesAndHostLifecycle (1.34+) ---------------------------------------------------------------

_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_LIFECYCLE_HANDLERS = ("postStart", "preStop")
_HANDLER_ACTIONS = ("httpGet", "tcpSocket")


def host_probes_and_host_lifecycle_1_34(metadata: Meta, spec: Spec) -> Finding | None:
    bad: set[str] = set()
    hosts: set[str] = set()
    fields: list[str] = []
    in_order: list[str] = []
    for ref in containers(spec):
        handlers: list[tuple[tuple[str, ...], Mapping[str, Any] | None]] = [
            ((probe,), sub(ref.container, probe)) for probe in _PROBES
        ]
        lifecycle = sub(ref.container, "lifecycle")
        if lifecycle is not None:
            handlers += [(("lifecycle", hook), sub(lifecycle, hook)) for hook in _LIFECYCLE_HANDLERS]
        for where, handler in handlers:
            if handler is None:
                continue
            for action in _HANDLER_ACTIONS:
                host = string(sub(handler, action), "host")
                if host:
                    if ref.name not in bad:
                        in_order.append(ref.name)
                    bad.add(ref.name)
                    hosts.add(host)
                    fields.append(ref.path(*where, action, "host"))
    if not bad:
        return None
    names = sorted(bad)
    return Finding(
        "probe or lifecycle host",
        f"{pluralize('container', 'containers', len(names))} {join_quote(names)} "
        f"{pluralize('uses', 'use', len(names))} "
        f"{pluralize('probe or lifecycle host', 'probe or lifecycle hosts', len(hosts))} {join_quote(sorted(hosts))}",
        tuple(in_order), tuple(fields),
    )


# --- appArmorProfile ----------------------------------------------------------------------------------

APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"


def _apparmor_annotation_allowed(value: str) -> bool:
    return value == "" or value == "runtime/default" or value.startswith("localhost/")


def _apparmor_type_allowed(value: str) -> bool:
    return value in ("RuntimeDefault", "Localhost")


def app_armor_profile_1_0(metadata: Meta, spec: Spec) -> Finding | None:
    setters: list[str] = []
    bad_values: set[str] = set()
    fields: list[str] = []
    pod_profile = sub(sub(spec, "securityContext"), "appArmorProfile")
    if pod_profile is not None:
        profile_type = string(pod_profile, "type")
        if not _apparmor_type_allowed(profile_type):
            setters.append("pod")
            bad_values.add(profile_type)
            fields.append("spec.securityContext.appArmorProfile.type")
    bad_containers: list[str] = []
    for ref in containers(spec):
        profile = sub(ref.security_context, "appArmorProfile")
        if profile is not None:
            profile_type = string(profile, "type")
            if not _apparmor_type_allowed(profile_type):
                bad_containers.append(ref.name)
                bad_values.add(profile_type)
                fields.append(ref.path("securityContext", "appArmorProfile", "type"))
    if bad_containers:
        setters.append(f"{pluralize('container', 'containers', len(bad_containers))} {join_quote(bad_containers)}")
    annotations: list[str] = []
    for key, value in _annotations(metadata).items():
        if not isinstance(key, str) or not key.startswith(APPARMOR_ANNOTATION_PREFIX):
            continue
        text = value if isinstance(value, str) else ("" if value is None else str(value))
        if not _apparmor_annotation_allowed(text):
            annotations.append(f"{key}={go_quote(text)}")
            fields.append(f"metadata.annotations[{key}]")
    values = sorted(bad_values)
    if annotations:
        annotations.sort()
        values += annotations
        setters.append(pluralize("annotation", "annotations", len(annotations)))
    if not setters:
        return None
    return Finding(
        pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", len(values)),
        f"{' and '.join(setters)} must not set AppArmor profile type to {join_quote(values)}",
        tuple(bad_containers), tuple(fields), setters[0] == "pod" or bool(annotations),
    )


# --- seLinuxOptions -----------------------------------------------------------------------------------

SELINUX_TYPES_1_0 = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
SELINUX_TYPES_1_31 = SELINUX_TYPES_1_0 | {"container_engine_t"}


def _se_linux_options(spec: Spec, allowed_types: frozenset[str]) -> Finding | None:
    bad_types: set[str] = set()
    flags = {"user": False, "role": False}
    fields: list[str] = []

    def valid(options: Mapping[str, Any], path: str) -> bool:
        ok = True
        selinux_type = string(options, "type")
        if selinux_type not in allowed_types:
            ok = False
            bad_types.add(selinux_type)
            fields.append(path + ".type")
        for key in ("user", "role"):
            if string(options, key):
                ok = False
                flags[key] = True
                fields.append(f"{path}.{key}")
        return ok

    pod_options = sub(sub(spec, "securityContext"), "seLinuxOptions")
    pod_bad = pod_options is not None and not valid(pod_options, "spec.securityContext.seLinuxOptions")
    bad: list[str] = []
    for ref in containers(spec):
        options = sub(ref.security_context, "seLinuxOptions")
        if options is not None and not valid(options, ref.path("securityContext", "seLinuxOptions")):
            bad.append(ref.name)
    setters = setters_with_containers(pod_bad, bad)
    if not setters:
        return None
    # Upstream (check_seLinuxOptions.go) only mentions user/role inside its "bad types" branch: a
    # pod whose only fault is a user or role gets an empty detail after the colon. Kept verbatim.
    data: list[str] = []
    if bad_types:
        data.append(f"{pluralize('type', 'types', len(bad_types))} {join_quote(sorted(bad_types))}")
        if flags["user"]:
            data.append("user may not be set")
        if flags["role"]:
            data.append("role may not be set")
    return Finding(
        "seLinuxOptions",
        f"{' and '.join(setters)} set forbidden securityContext.seLinuxOptions: {'; '.join(data)}",
        tuple(bad), tuple(fields), pod_bad,
    )


def se_linux_options_1_0(metadata: Meta, spec: Spec) -> Finding | None:
    return _se_linux_options(spec, SELINUX_TYPES_1_0)


def se_linux_options_1_31(metadata: Meta, spec: Spec) -> Finding | None:
    return _se_linux_options(spec, SELINUX_TYPES_1_31)


# --- procMount ----------------------------------------------------------------------------------------

def proc_mount_1_0(metadata: Meta, spec: Spec) -> Finding | None:
    """Only ``Default`` (or unset) is allowed; also upstream's procMount_restricted revision."""
    bad: list[str] = []
    fields: list[str] = []
    types: set[str] = set()
    for ref in containers(spec):
        context = ref.security_context
        if context is None or context.get("procMount") is None:
            continue
        proc_mount = string(context, "procMount")
        if proc_mount != "Default":
            bad.append(ref.name)
            types.add(proc_mount)
            fields.append(ref.path("securityContext", "procMount"))
    if not bad:
        return None
    return Finding(
        "procMount",
        f"{containers_phrase(bad)} must not set securityContext.procMount "
        f"to {join_quote(sorted(types))}",
        tuple(bad), tuple(fields),
    )


def proc_mount_1_35(metadata: Meta, spec: Spec) -> Finding | None:
    """From 1.35 a pod in its own user namespace (``hostUsers: false``) may set any procMount."""
    if in_user_namespace(spec):
        return None
    return proc_mount_1_0(metadata, spec)


# --- seccompProfile_baseline ----------------------------------------------------------------------

SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_ANNOTATION_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"


def seccomp_type_allowed(value: str) -> bool:
    return value in ("RuntimeDefault", "Localhost")


def _seccomp_annotation_allowed(value: str) -> bool:
    return value in ("runtime/default", "docker/default") or value.startswith("localhost/")


def seccomp_profile_baseline_1_0(metadata: Meta, spec: Spec) -> Finding | None:
    """Before 1.19 seccomp was configured through (alpha) annotations."""
    annotations = _annotations(metadata)
    forbidden: set[str] = set()
    fields: list[str] = []
    bad: list[str] = []
    if SECCOMP_POD_ANNOTATION in annotations:
        value = _text(annotations[SECCOMP_POD_ANNOTATION])
        if not _seccomp_annotation_allowed(value):
            forbidden.add(f"{SECCOMP_POD_ANNOTATION}={go_quote(value)}")
            fields.append(f"metadata.annotations[{SECCOMP_POD_ANNOTATION}]")
    for ref in containers(spec):
        key = SECCOMP_CONTAINER_ANNOTATION_PREFIX + ref.name
        if key in annotations:
            value = _text(annotations[key])
            if not _seccomp_annotation_allowed(value):
                forbidden.add(f"{key}={go_quote(value)}")
                fields.append(f"metadata.annotations[{key}]")
                bad.append(ref.name)
    if not forbidden:
        return None
    return Finding(
        "seccompProfile",
        f"forbidden {pluralize('annotation', 'annotations', len(forbidden))} {', '.join(sorted(forbidden))}",
        tuple(bad), tuple(fields), len(forbidden) > len(bad),
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def seccomp_profile_baseline_1_19(metadata: Meta, spec: Spec) -> Finding | None:
    setters: list[str] = []
    values: set[str] = set()
    fields: list[str] = []
    pod_profile = sub(sub(spec, "securityContext"), "seccompProfile")
    if pod_profile is not None and not seccomp_type_allowed(string(pod_profile, "type")):
        setters.append("pod")
        values.add(string(pod_profile, "type"))
        fields.append("spec.securityContext.seccompProfile.type")
    bad: list[str] = []
    for ref in containers(spec):
        profile = sub(ref.security_context, "seccompProfile")
        if profile is not None and not seccomp_type_allowed(string(profile, "type")):
            bad.append(ref.name)
            values.add(string(profile, "type"))
            fields.append(ref.path("securityContext", "seccompProfile", "type"))
    if bad:
        setters.append(f"{containers_phrase(bad)}")
    if not setters:
        return None
    return Finding(
        "seccompProfile",
        f"{' and '.join(setters)} must not set securityContext.seccompProfile.type to {join_quote(sorted(values))}",
        tuple(bad), tuple(fields), setters[0] == "pod",
    )


# --- sysctls ------------------------------------------------------------------------------------------

SYSCTLS_1_0 = frozenset({
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
})
SYSCTLS_1_27 = SYSCTLS_1_0 | {"net.ipv4.ip_local_reserved_ports"}
SYSCTLS_1_29 = SYSCTLS_1_27 | {
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SYSCTLS_1_32 = SYSCTLS_1_29 | {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}
SYSCTLS_1_37 = SYSCTLS_1_32 | {"net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"}


def _sysctls(spec: Spec, allowed: frozenset[str]) -> Finding | None:
    forbidden: list[str] = []
    fields: list[str] = []
    for index, sysctl in enumerate(items(sub(spec, "securityContext"), "sysctls")):
        name = string(sysctl, "name") if isinstance(sysctl, dict) else ""
        if name not in allowed:
            forbidden.append(name)
            fields.append(f"spec.securityContext.sysctls[{index}].name")
    if not forbidden:
        return None
    return Finding("forbidden sysctls", ", ".join(forbidden), (), tuple(fields), True)


def sysctls_1_0(metadata: Meta, spec: Spec) -> Finding | None:
    return _sysctls(spec, SYSCTLS_1_0)


def sysctls_1_27(metadata: Meta, spec: Spec) -> Finding | None:
    return _sysctls(spec, SYSCTLS_1_27)


def sysctls_1_29(metadata: Meta, spec: Spec) -> Finding | None:
    return _sysctls(spec, SYSCTLS_1_29)


def sysctls_1_32(metadata: Meta, spec: Spec) -> Finding | None:
    return _sysctls(spec, SYSCTLS_1_32)


def sysctls_1_37(metadata: Meta, spec: Spec) -> Finding | None:
    return _sysctls(spec, SYSCTLS_1_37)
