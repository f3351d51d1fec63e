"""Pod Security Standards engine: every check, its wording, and its version history.

Expectations are written from the standard as the upstream PodSecurity
admission library implements it (k8s.io/pod-security-admission ``policy/``):
forbidden reasons and details word for word, container lists in upstream's
visiting order (init containers, containers, ephemeral containers), sorted
value lists, singular/plural forms.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from webhook.core.pod_security import (
    NEWEST_VERSION,
    CheckFailure,
    checks_for,
    evaluate,
    format_failures,
    parse_level_version,
)
from webhook.core.pod_security.registry import CHECKS

# --------------------------------------------------------------------------------------------------
# builders


def c(name: str, sc: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "image": "registry.k8s.io/pause"}
    if sc is not None:
        out["securityContext"] = sc
    out.update(extra)
    return out


def spec(*containers: dict[str, Any], init: tuple[dict[str, Any], ...] = (),
         ephemeral: tuple[dict[str, Any], ...] = (), **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"containers": list(containers) or [c("app")]}
    if init:
        out["initContainers"] = list(init)
    if ephemeral:
        out["ephemeralContainers"] = list(ephemeral)
    out.update(fields)
    return out


RESTRICTED_SC = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def rc(name: str, **sc: Any) -> dict[str, Any]:
    """A container meeting the restricted container-level requirements, plus ``sc``."""
    merged = copy.deepcopy(RESTRICTED_SC)
    merged.update(sc)
    return c(name, merged)


def rspec(*containers: dict[str, Any], pod_sc: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A pod spec meeting restricted (pod level runAsNonRoot + RuntimeDefault seccomp)."""
    sc = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    sc.update(pod_sc or {})
    return spec(*(containers or (rc("app"),)), securityContext=sc, **fields)


def failures_of(check: str, level: str, version: str, pod_spec: dict[str, Any],
                metadata: dict[str, Any] | None = None) -> list[CheckFailure]:
    return [f for f in evaluate(level, version, metadata or {}, pod_spec) if f.check == check]


def only(check: str, level: str, version: str, pod_spec: dict[str, Any],
         metadata: dict[str, Any] | None = None) -> CheckFailure | None:
    found = failures_of(check, level, version, pod_spec, metadata)
    assert len(found) <= 1
    return found[0] if found else None


# --------------------------------------------------------------------------------------------------
# levels and versions


@pytest.mark.parametrize("value, expected", [
    ("restricted", ("restricted", "latest")),
    ("baseline", ("baseline", "latest")),
    ("privileged", ("privileged", "latest")),
    ("restricted:v1.25", ("restricted", "v1.25")),
    ({"level": "baseline"}, ("baseline", "latest")),
    ({"level": "baseline", "version": "v1.0"}, ("baseline", "v1.0")),
    ({"level": "restricted", "version": "latest"}, ("restricted", "latest")),
    ({"level": "restricted", "version": "v1.99"}, ("restricted", "v1.99")),
])
def test_parse_level_version(value: Any, expected: tuple[str, str]) -> None:
    assert parse_level_version(value) == expected


@pytest.mark.parametrize("value", [
    "Restricted", "strict", "", None, 3, {"level": "restricted", "version": "1.25"},
    {"level": "restricted", "version": "v1.025"}, {"level": "restricted", "version": "v2.0"},
    {"level": "restricted", "version": "v1."}, {"level": "restricted", "version": "v1.x"},
    {"level": "restricted", "version": "v1.-1"}, {"level": "restricted", "version": " v1.2"},
    {"level": "restricted", "version": "Latest"}, {"version": "latest"},
    {"level": "restricted", "version": "v1.25", "extra": 1},
])
def test_parse_level_version_rejects(value: Any) -> None:
    with pytest.raises(ValueError):
        parse_level_version(value)


@pytest.mark.parametrize("level, version", [("restricted", "1.25"), ("restricted", "v1.01"), ("secure", "latest")])
def test_evaluate_rejects_malformed(level: str, version: str) -> None:
    with pytest.raises(ValueError):
        evaluate(level, version, {}, {})


def test_newest_version_is_the_newest_revision() -> None:
    assert NEWEST_VERSION == "v1.37"
    assert NEWEST_VERSION == f"v1.{max(r.since for check in CHECKS for r in check.revisions)}"


@pytest.mark.parametrize("version", ["latest", "v1.37", "v1.38", "v1.100"])
def test_latest_and_future_versions_behave_as_newest(version: str) -> None:
    assert checks_for("restricted", version) == checks_for("restricted", NEWEST_VERSION)
    sysctl = spec(securityContext={"sysctls": [{"name": "net.ipv4.tcp_notsent_lowat", "value": "1"}]})
    assert evaluate("baseline", version, {}, sysctl) == []


def test_privileged_never_fails() -> None:
    assert checks_for("privileged", "latest") == ()
    assert evaluate("privileged", "v1.0", {}, spec(c("a", {"privileged": True}), hostNetwork=True)) == []


BASELINE_IDS_1_0 = ("appArmorProfile", "capabilities_baseline", "hostNamespaces", "hostPathVolumes", "hostPorts",
                    "privileged", "procMount", "seLinuxOptions", "seccompProfile_baseline", "sysctls",
                    "windowsHostProcess")


@pytest.mark.parametrize("level, version, expected", [
    ("baseline", "v1.0", BASELINE_IDS_1_0),
    ("baseline", "v1.33", BASELINE_IDS_1_0),
    ("baseline", "v1.34", BASELINE_IDS_1_0[:5] + ("hostProbesAndHostLifecycle",) + BASELINE_IDS_1_0[5:]),
    ("restricted", "v1.0", ("appArmorProfile", "capabilities_baseline", "hostNamespaces", "hostPorts", "privileged",
                            "procMount", "seLinuxOptions", "seccompProfile_baseline", "sysctls",
                            "windowsHostProcess", "restrictedVolumes", "runAsNonRoot")),
    ("restricted", "v1.7", checks_for("restricted", "v1.0")),
    ("restricted", "v1.8", ("appArmorProfile", "capabilities_baseline", "hostNamespaces", "hostPorts", "privileged",
                            "procMount", "seLinuxOptions", "seccompProfile_baseline", "sysctls",
                            "windowsHostProcess", "allowPrivilegeEscalation", "restrictedVolumes", "runAsNonRoot")),
    ("restricted", "v1.19", ("appArmorProfile", "capabilities_baseline", "hostNamespaces", "hostPorts", "privileged",
                             "procMount", "seLinuxOptions", "sysctls", "windowsHostProcess",
                             "allowPrivilegeEscalation", "restrictedVolumes", "runAsNonRoot",
                             "seccompProfile_restricted")),
    ("restricted", "v1.22", ("appArmorProfile", "hostNamespaces", "hostPorts", "privileged", "procMount",
                             "seLinuxOptions", "sysctls", "windowsHostProcess", "allowPrivilegeEscalation",
                             "capabilities_restricted", "restrictedVolumes", "runAsNonRoot",
                             "seccompProfile_restricted")),
    ("restricted", "v1.23", ("appArmorProfile", "hostNamespaces", "hostPorts", "privileged", "procMount",
                             "seLinuxOptions", "sysctls", "windowsHostProcess", "allowPrivilegeEscalation",
                             "capabilities_restricted", "restrictedVolumes", "runAsNonRoot", "runAsUser",
                             "seccompProfile_restricted")),
    ("restricted", "v1.35", ("appArmorProfile", "hostNamespaces", "hostPorts", "hostProbesAndHostLifecycle",
                             "privileged", "seLinuxOptions", "sysctls", "windowsHostProcess",
                             "allowPrivilegeEscalation", "capabilities_restricted", "procMount_restricted",
                             "restrictedVolumes", "runAsNonRoot", "runAsUser", "seccompProfile_restricted")),
])
def test_checks_per_level_and_version(level: str, version: str, expected: tuple[str, ...]) -> None:
    assert checks_for(level, version) == expected


def test_restricted_overrides_follow_upstream() -> None:
    for version in ("v1.0", "v1.25", "latest"):
        assert "hostPathVolumes" not in checks_for("restricted", version)
    assert "seccompProfile_baseline" in checks_for("restricted", "v1.18")
    assert "seccompProfile_baseline" not in checks_for("restricted", "v1.19")
    assert "capabilities_baseline" in checks_for("restricted", "v1.21")
    assert "capabilities_baseline" not in checks_for("restricted", "v1.22")
    assert "procMount" in checks_for("restricted", "v1.34")
    assert "procMount" not in checks_for("restricted", "v1.35")


# --------------------------------------------------------------------------------------------------
# per check: (level, version, metadata, spec, reason, detail); reason None means allowed.

Case = tuple[str, str, dict[str, Any], dict[str, Any], str | None, str | None]

CASES: dict[str, list[Case]] = {
    "windowsHostProcess": [
        ("baseline", "v1.0", {}, spec(c("a", {"windowsOptions": {"hostProcess": False}})), None, None),
        ("baseline", "v1.0", {}, spec(c("a", {"windowsOptions": {}})), None, None),
        ("baseline", "v1.0", {}, spec(c("a", {"windowsOptions": {"hostProcess": True}})),
         "hostProcess", 'container "a" must not set securityContext.windowsOptions.hostProcess=true'),
        ("baseline", "v1.0", {}, spec(c("a"), securityContext={"windowsOptions": {"hostProcess": True}}),
         "hostProcess", "pod must not set securityContext.windowsOptions.hostProcess=true"),
        ("baseline", "latest", {},
         spec(c("a", {"windowsOptions": {"hostProcess": True}}), c("b"),
              init=(c("i", {"windowsOptions": {"hostProcess": True}}),),
              securityContext={"windowsOptions": {"hostProcess": True}}),
         "hostProcess", 'pod and containers "i", "a" must not set securityContext.windowsOptions.hostProcess=true'),
        ("restricted", "v1.25", {}, rspec(rc("a", windowsOptions={"hostProcess": True}), os={"name": "windows"}),
         "hostProcess", 'container "a" must not set securityContext.windowsOptions.hostProcess=true'),
    ],
    "hostNamespaces": [
        ("baseline", "v1.0", {}, spec(hostNetwork=False, hostPID=False, hostIPC=False), None, None),
        ("baseline", "v1.0", {}, spec(hostNetwork=True), "host namespaces", "hostNetwork=true"),
        ("baseline", "v1.0", {}, spec(hostPID=True), "host namespaces", "hostPID=true"),
        ("baseline", "v1.0", {}, spec(hostIPC=True), "host namespaces", "hostIPC=true"),
        ("baseline", "latest", {}, spec(hostPID=True, hostNetwork=True, hostIPC=True),
         "host namespaces", "hostNetwork=true, hostPID=true, hostIPC=true"),
        ("restricted", "latest", {}, rspec(hostNetwork=True), "host namespaces", "hostNetwork=true"),
    ],
    "privileged": [
        ("baseline", "v1.0", {}, spec(c("a", {"privileged": False})), None, None),
        ("baseline", "v1.0", {}, spec(c("a", {"privileged": True})),
         "privileged", 'container "a" must not set securityContext.privileged=true'),
        ("baseline", "latest", {}, spec(c("a", {"privileged": True}), c("b", {"privileged": True}),
                                        init=(c("i", {"privileged": True}),)),
         "privileged", 'containers "i", "a", "b" must not set securityContext.privileged=true'),
        ("baseline", "latest", {}, spec(c("a"), ephemeral=(c("debug", {"privileged": True}),)),
         "privileged", 'container "debug" must not set securityContext.privileged=true'),
    ],
    "capabilities_baseline": [
        ("baseline", "v1.0", {}, spec(c("a", {"capabilities": {"add": [
            "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
            "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"]}})), None, None),
        ("baseline", "v1.0", {}, spec(c("a", {"capabilities": {"drop": ["ALL"]}})), None, None),
        ("baseline", "v1.0", {}, spec(c("a", {"capabilities": {"add": ["NET_RAW"]}})),
         "non-default capabilities", 'container "a" must not include "NET_RAW" in securityContext.capabilities.add'),
        ("baseline", "latest", {},
         spec(c("a", {"capabilities": {"add": ["SYS_ADMIN", "CHOWN", "NET_RAW"]}}),
              c("b", {"capabilities": {"add": ["NET_RAW"]}}), c("c", {"capabilities": {"add": ["KILL"]}})),
         "non-default capabilities",
         'containers "a", "b" must not include "NET_RAW", "SYS_ADMIN" in securityContext.capabilities.add'),
        ("baseline", "latest", {}, spec(c("a", {"capabilities": {"add": ["CAP_CHOWN"]}})),
         "non-default capabilities", 'container "a" must not include "CAP_CHOWN" in securityContext.capabilities.add'),
        ("restricted", "v1.21", {}, rspec(rc("a", capabilities={"add": ["NET_ADMIN"]})),
         "non-default capabilities", 'container "a" must not include "NET_ADMIN" in securityContext.capabilities.add'),
    ],
    "hostPathVolumes": [
        ("baseline", "v1.0", {}, spec(volumes=[{"name": "e", "emptyDir": {}}]), None, None),
        ("baseline", "v1.0", {}, spec(volumes=[{"name": "h", "hostPath": {"path": "/"}}]),
         "hostPath volumes", 'volume "h"'),
        ("baseline", "latest", {}, spec(volumes=[{"name": "h1", "hostPath": {"path": "/a"}}, {"name": "e", "emptyDir": {}},
                                                 {"name": "h2", "hostPath": {"path": "/b"}}]),
         "hostPath volumes", 'volumes "h1", "h2"'),
    ],
    "hostPorts": [
        ("baseline", "v1.0", {}, spec(c("a", ports=[{"containerPort": 80}, {"containerPort": 81, "hostPort": 0}])),
         None, None),
        ("baseline", "v1.0", {}, spec(c("a", ports=[{"containerPort": 80, "hostPort": 8080}])),
         "hostPort", 'container "a" uses hostPort 8080'),
        ("baseline", "latest", {}, spec(c("a", ports=[{"containerPort": 80, "hostPort": 9090},
                                                      {"containerPort": 81, "hostPort": 10000}]),
                                        c("b", ports=[{"containerPort": 80, "hostPort": 9090}])),
         "hostPort", 'containers "a", "b" use hostPorts 10000, 9090'),
    ],
    "hostProbesAndHostLifecycle": [
        ("baseline", "v1.33", {}, spec(c("a", livenessProbe={"httpGet": {"host": "evil", "port": 80}})), None, None),
        ("baseline", "v1.34", {}, spec(c("a", livenessProbe={"httpGet": {"port": 80}},
                                         readinessProbe={"tcpSocket": {"host": "", "port": 80}})), None, None),
        ("baseline", "v1.34", {}, spec(c("a", livenessProbe={"httpGet": {"host": "169.254.169.254", "port": 80}})),
         "probe or lifecycle host", 'container "a" uses probe or lifecycle host "169.254.169.254"'),
        ("baseline", "v1.34", {}, spec(c("a", readinessProbe={"tcpSocket": {"host": "::1", "port": 80}})),
         "probe or lifecycle host", 'container "a" uses probe or lifecycle host "::1"'),
        ("baseline", "latest", {},
         spec(c("z", startupProbe={"httpGet": {"host": "b.example", "port": 1}}),
              c("a", lifecycle={"preStop": {"tcpSocket": {"host": "a.example", "port": 1}},
                                "postStart": {"httpGet": {"host": "b.example", "port": 1}}}),
              c("ok", livenessProbe={"exec": {"command": ["true"]}})),
         "probe or lifecycle host", 'containers "a", "z" use probe or lifecycle hosts "a.example", "b.example"'),
    ],
    "appArmorProfile": [
        ("baseline", "v1.0", {"annotations": {
            "container.apparmor.security.beta.kubernetes.io/a": "runtime/default",
            "container.apparmor.security.beta.kubernetes.io/b": "localhost/custom",
            "container.apparmor.security.beta.kubernetes.io/c": ""}}, spec(), None, None),
        ("baseline", "v1.0", {}, spec(c("a", {"appArmorProfile": {"type": "RuntimeDefault"}}),
                                      securityContext={"appArmorProfile": {"type": "Localhost",
                                                                           "localhostProfile": "p"}}), None, None),
        ("baseline", "v1.0", {"annotations": {"container.apparmor.security.beta.kubernetes.io/a": "unconfined"}}, spec(),
         "forbidden AppArmor profile",
         ('annotation must not set AppArmor profile type to '
         '"container.apparmor.security.beta.kubernetes.io/a="unconfined""')),
        ("baseline", "latest", {}, spec(c("a", {"appArmorProfile": {"type": "Unconfined"}})),
         "forbidden AppArmor profile", 'container "a" must not set AppArmor profile type to "Unconfined"'),
        ("baseline", "latest", {"annotations": {"container.apparmor.security.beta.kubernetes.io/b": "unconfined",
                                                "container.apparmor.security.beta.kubernetes.io/a": "x/y"}},
         spec(c("a", {"appArmorProfile": {"type": "Unconfined"}}), c("b", {"appArmorProfile": {}}),
              securityContext={"appArmorProfile": {"type": "Unconfined"}}),
         "forbidden AppArmor profiles",
         ('pod and containers "a", "b" and annotations must not set AppArmor profile type to "", "Unconfined", '
         '"container.apparmor.security.beta.kubernetes.io/a="x/y"", '
         '"container.apparmor.security.beta.kubernetes.io/b="unconfined""')),
    ],
    "seLinuxOptions": [
        ("baseline", "v1.0", {}, spec(c("a", {"seLinuxOptions": {"type": "container_t", "level": "s0:c1,c2"}}),
                                      securityContext={"seLinuxOptions": {}}), None, None),
        ("baseline", "v1.0", {}, spec(c("a", {"seLinuxOptions": {"type": "spc_t"}})),
         "seLinuxOptions", 'container "a" set forbidden securityContext.seLinuxOptions: type "spc_t"'),
        ("baseline", "v1.30", {}, spec(c("a", {"seLinuxOptions": {"type": "container_engine_t"}})),
         "seLinuxOptions", 'container "a" set forbidden securityContext.seLinuxOptions: type "container_engine_t"'),
        ("baseline", "v1.31", {}, spec(c("a", {"seLinuxOptions": {"type": "container_engine_t"}})), None, None),
        # upstream words user/role only next to a bad type; alone they leave the detail empty
        ("baseline", "latest", {}, spec(securityContext={"seLinuxOptions": {"user": "root"}}),
         "seLinuxOptions", "pod set forbidden securityContext.seLinuxOptions: "),
        ("baseline", "latest", {}, spec(c("a", {"seLinuxOptions": {"role": "r", "user": "u"}})),
         "seLinuxOptions", 'container "a" set forbidden securityContext.seLinuxOptions: '),
        ("baseline", "latest", {},
         spec(c("a", {"seLinuxOptions": {"type": "foo_t", "role": "r"}}), c("b", {"seLinuxOptions": {"type": "bar_t"}}),
              securityContext={"seLinuxOptions": {"user": "u", "role": "r"}}),
         "seLinuxOptions",
         ('pod and containers "a", "b" set forbidden securityContext.seLinuxOptions: types "bar_t", "foo_t"; '
         "user may not be set; role may not be set")),
    ],
    "procMount": [
        ("baseline", "v1.0", {}, spec(c("a", {"procMount": "Default"})), None, None),
        ("baseline", "v1.0", {}, spec(c("a", {"procMount": "Unmasked"})),
         "procMount", 'container "a" must not set securityContext.procMount to "Unmasked"'),
        ("baseline", "v1.34", {}, spec(c("a", {"procMount": "Unmasked"}), hostUsers=False),
         "procMount", 'container "a" must not set securityContext.procMount to "Unmasked"'),
        ("baseline", "v1.35", {}, spec(c("a", {"procMount": "Unmasked"}), hostUsers=False), None, None),
        ("baseline", "v1.35", {}, spec(c("a", {"procMount": "Unmasked"}), hostUsers=True),
         "procMount", 'container "a" must not set securityContext.procMount to "Unmasked"'),
        ("baseline", "latest", {}, spec(c("a", {"procMount": "Unmasked"}), c("b", {"procMount": "Weird"})),
         "procMount", 'containers "a", "b" must not set securityContext.procMount to "Unmasked", "Weird"'),
        ("restricted", "v1.34", {}, rspec(rc("a", procMount="Unmasked")),
         "procMount", 'container "a" must not set securityContext.procMount to "Unmasked"'),
    ],
    "procMount_restricted": [
        ("restricted", "v1.35", {}, rspec(rc("a", procMount="Default"), hostUsers=False), None, None),
        ("restricted", "v1.35", {}, rspec(rc("a", procMount="Unmasked"), hostUsers=False),
         "procMount", 'container "a" must not set securityContext.procMount to "Unmasked"'),
        ("restricted", "latest", {}, rspec(rc("a", procMount="Unmasked")),
         "procMount", 'container "a" must not set securityContext.procMount to "Unmasked"'),
    ],
    "seccompProfile_baseline": [
        ("baseline", "v1.18", {"annotations": {"seccomp.security.alpha.kubernetes.io/pod": "runtime/default",
                                               "container.seccomp.security.alpha.kubernetes.io/a": "docker/default",
                                               "container.seccomp.security.alpha.kubernetes.io/b": "localhost/p"}},
         spec(c("a"), c("b")), None, None),
        ("baseline", "v1.18", {"annotations": {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}}, spec(),
         "seccompProfile", 'forbidden annotation seccomp.security.alpha.kubernetes.io/pod="unconfined"'),
        ("baseline", "v1.18", {"annotations": {"container.seccomp.security.alpha.kubernetes.io/a": "unconfined",
                                               "container.seccomp.security.alpha.kubernetes.io/gone": "unconfined",
                                               "seccomp.security.alpha.kubernetes.io/pod": ""}}, spec(c("a")),
         "seccompProfile",
         ('forbidden annotations container.seccomp.security.alpha.kubernetes.io/a="unconfined", '
         'seccomp.security.alpha.kubernetes.io/pod=""')),
        ("baseline", "v1.18", {}, spec(securityContext={"seccompProfile": {"type": "Unconfined"}}), None, None),
        ("baseline", "v1.19", {"annotations": {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}}, spec(),
         None, None),
        ("baseline", "v1.19", {}, spec(securityContext={"seccompProfile": {"type": "Unconfined"}}),
         "seccompProfile", 'pod must not set securityContext.seccompProfile.type to "Unconfined"'),
        ("baseline", "latest", {},
         spec(c("a", {"seccompProfile": {"type": "Unconfined"}}), c("b", {"seccompProfile": {}}),
              c("c", {"seccompProfile": {"type": "Localhost", "localhostProfile": "x"}}),
              securityContext={"seccompProfile": {"type": "RuntimeDefault"}}),
         "seccompProfile", 'containers "a", "b" must not set securityContext.seccompProfile.type to "", "Unconfined"'),
    ],
    "sysctls": [
        ("baseline", "v1.0", {}, spec(securityContext={"sysctls": [
            {"name": n, "value": "1"} for n in ("kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
                                                 "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range",
                                                 "net.ipv4.ip_unprivileged_port_start")]}), None, None),
        ("baseline", "v1.26", {}, spec(securityContext={"sysctls": [{"name": "net.ipv4.ip_local_reserved_ports"}]}),
         "forbidden sysctls", "net.ipv4.ip_local_reserved_ports"),
        ("baseline", "v1.27", {}, spec(securityContext={"sysctls": [{"name": "net.ipv4.ip_local_reserved_ports"}]}),
         None, None),
        ("baseline", "v1.28", {}, spec(securityContext={"sysctls": [{"name": "net.ipv4.tcp_keepalive_time"},
                                                                     {"name": "net.ipv4.tcp_fin_timeout"}]}),
         "forbidden sysctls", "net.ipv4.tcp_keepalive_time, net.ipv4.tcp_fin_timeout"),
        ("baseline", "v1.29", {}, spec(securityContext={"sysctls": [
            {"name": n} for n in ("net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
                                  "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes")]}), None, None),
        ("baseline", "v1.31", {}, spec(securityContext={"sysctls": [{"name": "net.ipv4.tcp_rmem"}]}),
         "forbidden sysctls", "net.ipv4.tcp_rmem"),
        ("baseline", "v1.32", {}, spec(securityContext={"sysctls": [{"name": "net.ipv4.tcp_rmem"},
                                                                     {"name": "net.ipv4.tcp_wmem"}]}), None, None),
        ("baseline", "v1.36", {}, spec(securityContext={"sysctls": [{"name": "net.ipv4.tcp_slow_start_after_idle"}]}),
         "forbidden sysctls", "net.ipv4.tcp_slow_start_after_idle"),
        ("baseline", "v1.37", {}, spec(securityContext={"sysctls": [{"name": "net.ipv4.tcp_slow_start_after_idle"},
                                                                     {"name": "net.ipv4.tcp_notsent_lowat"}]}),
         None, None),
        ("baseline", "latest", {}, spec(securityContext={"sysctls": [{"name": "kernel.msgmax"},
                                                                      {"name": "net.core.somaxconn"},
                                                                      {"name": "kernel.msgmax"}]}),
         "forbidden sysctls", "kernel.msgmax, net.core.somaxconn, kernel.msgmax"),
    ],
    "restrictedVolumes": [
        ("restricted", "v1.0", {}, rspec(volumes=[
            {"name": "a", "configMap": {"name": "x"}}, {"name": "b", "csi": {"driver": "d"}},
            {"name": "c", "downwardAPI": {}}, {"name": "d", "emptyDir": {}}, {"name": "e", "ephemeral": {}},
            {"name": "f", "image": {"reference": "r"}}, {"name": "g", "persistentVolumeClaim": {"claimName": "p"}},
            {"name": "h", "projected": {"sources": []}}, {"name": "i", "secret": {"secretName": "s"}}]), None, None),
        ("restricted", "v1.0", {}, rspec(volumes=[{"name": "h", "hostPath": {"path": "/"}}]),
         "restricted volume types", 'volume "h" uses restricted volume type "hostPath"'),
        ("restricted", "latest", {}, rspec(volumes=[
            {"name": "n", "nfs": {"server": "s", "path": "/"}}, {"name": "ok", "emptyDir": {}},
            {"name": "g", "gitRepo": {"repository": "r"}}, {"name": "u", "fancyVolume": {}},
            {"name": "c", "cephfs": {"monitors": []}},
            {"name": "n2", "nfs": {"server": "s", "path": "/"}}]),
         "restricted volume types",
         'volumes "n", "g", "u", "c", "n2" use restricted volume types "cephfs", "gitRepo", "nfs", "unknown"'),
        ("baseline", "latest", {}, spec(volumes=[{"name": "n", "nfs": {"server": "s", "path": "/"}}]), None, None),
        # no source at all: the API server defaults it to emptyDir (upstream fixture restrictedvolumes0)
        ("restricted", "v1.0", {}, rspec(volumes=[{"name": "volume0"}, {"name": "v1", "hostPath": None}]),
         None, None),
    ],
    "allowPrivilegeEscalation": [
        ("restricted", "v1.7", {}, rspec(c("a", {"capabilities": {"drop": ["ALL"]}})), None, None),
        ("restricted", "v1.8", {}, rspec(c("a", {"capabilities": {"drop": ["ALL"]}})),
         "allowPrivilegeEscalation != false", 'container "a" must set securityContext.allowPrivilegeEscalation=false'),
        ("restricted", "latest", {}, rspec(rc("a", allowPrivilegeEscalation=True), c("b"), rc("ok")),
         "allowPrivilegeEscalation != false",
         'containers "a", "b" must set securityContext.allowPrivilegeEscalation=false'),
        ("restricted", "v1.24", {}, rspec(c("a"), os={"name": "windows"}),
         "allowPrivilegeEscalation != false", 'container "a" must set securityContext.allowPrivilegeEscalation=false'),
        ("restricted", "v1.25", {}, rspec(c("a"), os={"name": "windows"}), None, None),
        ("restricted", "v1.25", {}, rspec(c("a", {"capabilities": {"drop": ["ALL"]}}), os={"name": "linux"}),
         "allowPrivilegeEscalation != false", 'container "a" must set securityContext.allowPrivilegeEscalation=false'),
    ],
    "capabilities_restricted": [
        ("restricted", "v1.21", {}, rspec(c("a", {"allowPrivilegeEscalation": False})), None, None),
        ("restricted", "v1.22", {}, rspec(rc("a", capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]})),
         None, None),
        ("restricted", "v1.22", {}, rspec(c("a", {"allowPrivilegeEscalation": False})),
         "unrestricted capabilities", 'container "a" must set securityContext.capabilities.drop=["ALL"]'),
        ("restricted", "latest", {}, rspec(
            c("a", {"allowPrivilegeEscalation": False, "capabilities": {"add": ["FOO", "BAR"]}}),
            c("b", {"allowPrivilegeEscalation": False, "capabilities": {"add": ["BAR", "BAZ"]}}),
            c("c", {"allowPrivilegeEscalation": False,
                    "capabilities": {"add": ["NET_BIND_SERVICE", "CHOWN"], "drop": ["ALL", "FOO"]}})),
         "unrestricted capabilities",
         ('containers "a", "b" must set securityContext.capabilities.drop=["ALL"]; containers "a", "b", "c" must not '
         'include "BAR", "BAZ", "CHOWN", "FOO" in securityContext.capabilities.add')),
        ("restricted", "latest", {}, rspec(rc("a", capabilities={"drop": ["all"]})),
         "unrestricted capabilities", 'container "a" must set securityContext.capabilities.drop=["ALL"]'),
        ("restricted", "v1.24", {}, rspec(c("a", {"allowPrivilegeEscalation": False}), os={"name": "windows"}),
         "unrestricted capabilities", 'container "a" must set securityContext.capabilities.drop=["ALL"]'),
        ("restricted", "v1.25", {}, rspec(c("a"), os={"name": "windows"}), None, None),
    ],
    "runAsNonRoot": [
        ("restricted", "v1.0", {}, spec(rc("a"), rc("b", runAsNonRoot=True), securityContext={"runAsNonRoot": True}),
         None, None),
        ("restricted", "v1.0", {}, spec(rc("a", runAsNonRoot=True), securityContext={}), None, None),
        ("restricted", "v1.0", {}, spec(rc("a"), rc("b", runAsNonRoot=True)),
         "runAsNonRoot != true", 'pod or container "a" must set securityContext.runAsNonRoot=true'),
        ("restricted", "latest", {}, spec(rc("a", runAsNonRoot=False), rc("b"), init=(rc("i", runAsNonRoot=False),),
                                          securityContext={"runAsNonRoot": False,
                                                           "seccompProfile": {"type": "RuntimeDefault"}}),
         "runAsNonRoot != true", 'pod and containers "i", "a" must not set securityContext.runAsNonRoot=false'),
        ("restricted", "latest", {}, rspec(rc("a", runAsNonRoot=False)),
         "runAsNonRoot != true", 'container "a" must not set securityContext.runAsNonRoot=false'),
        ("restricted", "v1.34", {}, spec(rc("a"), hostUsers=False,
                                         securityContext={"seccompProfile": {"type": "RuntimeDefault"}}),
         "runAsNonRoot != true", 'pod or container "a" must set securityContext.runAsNonRoot=true'),
        ("restricted", "v1.35", {}, spec(rc("a"), hostUsers=False,
                                         securityContext={"seccompProfile": {"type": "RuntimeDefault"}}), None, None),
        ("restricted", "v1.25", {}, spec(c("a"), os={"name": "windows"}),
         "runAsNonRoot != true", 'pod or container "a" must set securityContext.runAsNonRoot=true'),
    ],
    "runAsUser": [
        ("restricted", "v1.22", {}, rspec(rc("a", runAsUser=0), pod_sc={"runAsUser": 0}), None, None),
        ("restricted", "v1.23", {}, rspec(rc("a", runAsUser=1000), pod_sc={"runAsUser": 1}), None, None),
        ("restricted", "v1.23", {}, rspec(rc("a", runAsUser=0)),
         "runAsUser=0", 'container "a" must not set runAsUser=0'),
        ("restricted", "latest", {}, rspec(rc("a", runAsUser=0), rc("b", runAsUser=0), init=(rc("i", runAsUser=0),),
                                           pod_sc={"runAsUser": 0}),
         "runAsUser=0", 'pod and containers "i", "a", "b" must not set runAsUser=0'),
        ("restricted", "v1.34", {}, rspec(rc("a", runAsUser=0), hostUsers=False),
         "runAsUser=0", 'container "a" must not set runAsUser=0'),
        ("restricted", "v1.35", {}, rspec(rc("a", runAsUser=0), hostUsers=False), None, None),
    ],
    "seccompProfile_restricted": [
        ("restricted", "v1.18", {}, spec(rc("a"), securityContext={"runAsNonRoot": True}), None, None),
        ("restricted", "v1.19", {}, spec(rc("a"), securityContext={"runAsNonRoot": True}),
         "seccompProfile",
         'pod or container "a" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"'),
        ("restricted", "v1.19", {}, spec(rc("a", seccompProfile={"type": "Localhost", "localhostProfile": "p"}),
                                         securityContext={"runAsNonRoot": True}), None, None),
        ("restricted", "latest", {}, rspec(rc("a", seccompProfile={"type": "Unconfined"}), rc("b"),
                                           pod_sc={"seccompProfile": {"type": "Unconfined"}}),
         "seccompProfile", 'pod and container "a" must not set securityContext.seccompProfile.type to "Unconfined"'),
        ("restricted", "latest", {}, spec(rc("a", seccompProfile={"type": "RuntimeDefault"}), rc("b"), rc("c"),
                                          securityContext={"runAsNonRoot": True}),
         "seccompProfile",
         'pod or containers "b", "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"'),
        ("restricted", "v1.24", {}, spec(rc("a"), os={"name": "windows"}, securityContext={"runAsNonRoot": True}),
         "seccompProfile",
         'pod or container "a" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"'),
        ("restricted", "v1.25", {}, spec(rc("a"), os={"name": "windows"}, securityContext={"runAsNonRoot": True}),
         None, None),
    ],
}


def test_every_check_has_cases() -> None:
    assert set(CASES) == {check.id for check in CHECKS}


@pytest.mark.parametrize(
    "check, level, version, metadata, pod_spec, reason, detail",
    [(check, *case) for check, cases in CASES.items() for case in cases],
    ids=[f"{check}-{i}-{case[0]}-{case[1]}" for check, cases in CASES.items() for i, case in enumerate(cases)],
)
def test_check(check: str, level: str, version: str, metadata: dict[str, Any], pod_spec: dict[str, Any],
               reason: str | None, detail: str | None) -> None:
    found = only(check, level, version, pod_spec, metadata)
    if reason is None:
        assert found is None, found
    else:
        assert found == CheckFailure(check, reason, detail or "")
        assert found.message == f"{reason} ({detail})"


# --------------------------------------------------------------------------------------------------
# Go decoding semantics


@pytest.mark.parametrize("pod_spec", [
    spec(c("a", {"privileged": "true"})),          # not a boolean: not privileged=true
    spec(c("a", {"privileged": None})),
    spec(c("a", None)),
    spec(hostNetwork="yes"),
    spec(c("a", ports=[{"containerPort": 1, "hostPort": None}])),
    {"containers": None},
    {},
])
def test_only_real_true_values_count(pod_spec: dict[str, Any]) -> None:
    assert evaluate("baseline", "latest", {}, pod_spec) == []


def test_empty_objects_are_set_objects() -> None:
    # seccompProfile: {} is a set profile with type "" (neither RuntimeDefault nor Localhost)
    found = only("seccompProfile_baseline", "baseline", "latest", spec(securityContext={"seccompProfile": {}}))
    assert found is not None and found.detail == 'pod must not set securityContext.seccompProfile.type to ""'
    # a null volume source is no source
    assert only("hostPathVolumes", "baseline", "latest", spec(volumes=[{"name": "v", "hostPath": None}])) is None


def test_go_quoting_of_annotation_values() -> None:
    found = only("appArmorProfile", "baseline", "latest", spec(),
                 {"annotations": {"container.apparmor.security.beta.kubernetes.io/a": 'we"ird\n'}})
    assert found is not None
    assert found.detail.endswith('"container.apparmor.security.beta.kubernetes.io/a="we\\"ird\\n""')


def test_metadata_and_spec_may_be_missing() -> None:
    failures = evaluate("restricted", "latest", None, None)
    assert failures == []


def test_failure_locations() -> None:
    [failure] = evaluate("baseline", "latest", {}, spec(c("a"), c("b", {"privileged": True})))
    assert failure.containers == ("b",)
    assert failure.fields == ("spec.containers[1].securityContext.privileged",)
    [failure] = evaluate("baseline", "latest", {}, spec(hostNetwork=True))
    assert failure.containers == () and failure.fields == ("spec.hostNetwork",)


# --------------------------------------------------------------------------------------------------
# the aggregate message


def test_format_failures_like_upstream() -> None:
    failures = evaluate("restricted", "latest", {}, spec(c("app")))
    assert format_failures("restricted", "latest", failures) == (
        'violates PodSecurity "restricted:latest": '
        'allowPrivilegeEscalation != false (container "app" must set securityContext.allowPrivilegeEscalation=false), '
        'unrestricted capabilities (container "app" must set securityContext.capabilities.drop=["ALL"]), '
        'runAsNonRoot != true (pod or container "app" must set securityContext.runAsNonRoot=true), '
        'seccompProfile (pod or container "app" must set securityContext.seccompProfile.type to '
        '"RuntimeDefault" or "Localhost")')


def test_format_failures_orders_baseline_before_restricted_and_prints_the_version() -> None:
    pod_spec = spec(c("app", {"privileged": True}), hostPID=True)
    failures = evaluate("restricted", "v1.25", {}, pod_spec)
    message = format_failures("restricted", "v1.25", failures)
    assert message.startswith('violates PodSecurity "restricted:v1.25": host namespaces (hostPID=true), '
                              'privileged (container "app" must not set securityContext.privileged=true), '
                              "allowPrivilegeEscalation != false")
    assert format_failures("baseline", "latest", []) == ""


def test_evaluate_is_pure() -> None:
    pod_spec = spec(c("a", {"capabilities": {"add": ["NET_RAW"]}}), securityContext={"sysctls": [{"name": "x"}]})
    before = copy.deepcopy(pod_spec)
    assert evaluate("restricted", "latest", {}, pod_spec) == evaluate("restricted", "latest", {}, pod_spec)
    assert pod_spec == before


# --------------------------------------------------------------------------------------------------
# the validator (rules.podSecurity) and the golden suites in tests/golden/pod_security/

import pathlib

import jsonpatch
import yaml

from webhook.views.memory import InMemoryClusterState
from webhook.core.decision import Violation
from webhook.core.mutation import MutationContext, json_copy
from webhook.core.mutators.security_preset import RestrictedPreset
from webhook.core.plan import CompiledPolicy, ValidationContext
from webhook.core.request import AdmissionRequest
from webhook.core.validators.pod_security import PodSecurityValidator, is_significant_pod_update
from webhook.core.workloads import locate_pod

GOLDEN = pathlib.Path(__file__).parent / "golden" / "pod_security"
JUDGED_BY_ENGINE = ("", "ephemeralcontainers")  # the engine hands validators only these subresources


def run_validators(validators: list[tuple[str, PodSecurityValidator]], request: AdmissionRequest) -> list[Violation]:
    """What the engine does for podSecurity: locate the pod (template), skip unchanged updates, validate."""
    if request.subresource not in JUDGED_BY_ENGINE or request.obj is None:
        return []
    target = locate_pod(request.obj)
    old_target = locate_pod(request.old_obj) if request.old_obj is not None else None
    if (request.operation == "UPDATE" and request.subresource == "" and target is not None
            and old_target is not None and target.spec == old_target.spec
            and target.metadata.get("annotations") == old_target.metadata.get("annotations")):
        return []
    found: list[Violation] = []
    for name, validator in validators:
        ctx = ValidationContext(
            request=request, obj=request.obj, target=target, old_target=old_target,
            policy=CompiledPolicy(name=name, kind="ClusterPolicy", source="test", validators=(validator,)),
            tenant=None, state=InMemoryClusterState(), tenant_of=lambda ns: None,
        )
        if target is not None and request.subresource in validator.subresources:
            found.extend(validator.validate(ctx))
    return found


def matches(expected: dict[str, Any], actual: Violation) -> bool:
    for key, value in expected.items():
        if key == "messageContains":
            if value not in actual.message:
                return False
        elif getattr(actual, key) != value:
            return False
    return True


def golden_cases() -> list[Any]:
    out = []
    for path in sorted(GOLDEN.glob("*.yaml")):
        suite = yaml.safe_load(path.read_text())
        for case in suite["spec"]["cases"]:
            out.append(pytest.param(suite, case, id=f"{path.stem}: {case['name']}"))
    return out


@pytest.mark.parametrize("suite, case", golden_cases())
def test_golden(suite: dict[str, Any], case: dict[str, Any]) -> None:
    validators = [(p["metadata"]["name"], PodSecurityValidator.from_spec(p["spec"]["rules"]["podSecurity"]))
                  for p in suite["spec"]["policies"]]
    request = AdmissionRequest(
        obj=case["object"], namespace=case.get("namespace", suite["spec"].get("namespace", "default")),
        operation=case.get("operation", "CREATE"), old_obj=case.get("oldObject"),
        subresource=case.get("subresource", ""),
    )
    actual = run_validators(validators, request)
    expect = case["expect"]
    assert (not actual) == expect["allowed"], [v.message for v in actual]
    expected = expect.get("violations", [])
    assert len(actual) == len(expected), [(v.policy, v.check, v.message) for v in actual]
    remaining = list(actual)
    for want in expected:
        hit = next((v for v in remaining if matches(want, v)), None)
        assert hit is not None, (want, [(v.policy, v.check, v.container, v.field, v.message) for v in remaining])
        remaining.remove(hit)


def test_golden_suites_are_policy_tests() -> None:
    suites = [yaml.safe_load(p.read_text()) for p in sorted(GOLDEN.glob("*.yaml"))]
    assert len(suites) >= 4
    for suite in suites:
        assert suite["apiVersion"] == "tenantguard.io/v1alpha1" and suite["kind"] == "PolicyTest"
        for policy in suite["spec"]["policies"]:
            assert policy["kind"] == "ClusterPolicy" and "podSecurity" in policy["spec"]["rules"]


def make_ctx(validator: PodSecurityValidator, obj: dict[str, Any], **request: Any) -> ValidationContext:
    req = AdmissionRequest(obj=obj, namespace="apps", **request)
    old = req.old_obj
    return ValidationContext(
        request=req, obj=obj, target=locate_pod(obj), old_target=locate_pod(old) if old else None,
        policy=CompiledPolicy(name="pss", kind="ClusterPolicy", source="t"), tenant=None,
        state=InMemoryClusterState(), tenant_of=lambda ns: None)


def pod_obj(pod_spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", **meta}, "spec": pod_spec}


def test_validator_shape() -> None:
    v = PodSecurityValidator.from_spec({"level": "restricted", "version": "v1.25"})
    assert (v.rule, v.kinds, v.level, v.version, v.label) == ("podSecurity", None, "restricted", "v1.25",
                                                              "restricted:v1.25")
    assert PodSecurityValidator.from_spec("baseline").version == "latest"
    with pytest.raises(ValueError):
        PodSecurityValidator("restricted", "1.25")


def test_validator_yields_one_violation_per_check() -> None:
    v = PodSecurityValidator("restricted", "latest")
    found = list(v.validate(make_ctx(v, pod_obj(spec(c("app"), c("side"))))))
    assert [f.check for f in found] == ["allowPrivilegeEscalation", "capabilities_restricted", "runAsNonRoot",
                                        "seccompProfile_restricted"]
    assert all(f.container is None and f.field is None and f.policy == "pss" and f.rule == "podSecurity"
               for f in found)
    assert found[0].message == ('allowPrivilegeEscalation != false (containers "app", "side" must set '
                                "securityContext.allowPrivilegeEscalation=false)")
    assert found[0].enforcement == "Enforce" and found[0].required == "restricted:latest"


def test_privileged_level_yields_nothing() -> None:
    v = PodSecurityValidator("privileged")
    assert list(v.validate(make_ctx(v, pod_obj(spec(c("a", {"privileged": True})))))) == []


@pytest.mark.parametrize("subresource, judged", [
    ("", True), ("ephemeralcontainers", True), ("resize", True), ("status", False), ("exec", False),
    ("attach", False), ("binding", False), ("eviction", False), ("log", False), ("portforward", False),
    ("proxy", False),
])
def test_pod_subresources_as_upstream(subresource: str, judged: bool) -> None:
    v = PodSecurityValidator("baseline")
    obj = pod_obj(spec(c("a", {"privileged": True})))
    assert bool(list(v.validate(make_ctx(v, obj, subresource=subresource)))) is judged


def test_template_subresources_are_not_judged() -> None:
    v = PodSecurityValidator("baseline")
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
              "spec": {"template": {"metadata": {}, "spec": spec(c("a", {"privileged": True}))}}}
    assert list(v.validate(make_ctx(v, deploy, subresource="scale"))) == []
    [found] = list(v.validate(make_ctx(v, deploy)))
    assert found.field == "spec.template.spec.containers[0].securityContext.privileged"


def test_delete_and_connect_are_not_judged() -> None:
    v = PodSecurityValidator("baseline")
    obj = pod_obj(spec(c("a", {"privileged": True})))
    assert list(v.validate(make_ctx(v, obj, operation="DELETE"))) == []
    assert list(v.validate(make_ctx(v, obj, operation="CONNECT"))) == []


@pytest.mark.parametrize("change, significant", [
    (lambda p: p["metadata"].setdefault("labels", {}).update(x="y"), False),
    (lambda p: p["metadata"].setdefault("annotations", {}).update(note="y"), False),
    (lambda p: p["metadata"].setdefault("annotations", {}).update(
        {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}), False),
    (lambda p: p["spec"].update(activeDeadlineSeconds=5), False),
    (lambda p: p["spec"].update(tolerations=[{"operator": "Exists"}]), False),
    (lambda p: p["spec"]["containers"][0].update(image="other"), True),
    (lambda p: p["spec"]["initContainers"][0].update(image="other"), True),
    (lambda p: p["spec"]["containers"].append(c("extra")), True),
    (lambda p: p["spec"].update(ephemeralContainers=[c("debug")]), True),
    (lambda p: p["metadata"].setdefault("annotations", {}).update(
        {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}), True),
    (lambda p: p["metadata"].setdefault("annotations", {}).update(
        {"container.seccomp.security.alpha.kubernetes.io/app": "unconfined"}), True),
    (lambda p: p["metadata"].setdefault("annotations", {}).update(
        {"container.seccomp.security.alpha.kubernetes.io/nope": "unconfined"}), False),
])
def test_significant_pod_updates(change: Any, significant: bool) -> None:
    old = pod_obj(spec(c("app", {"privileged": True}), init=(c("init"),)))
    new = copy.deepcopy(old)
    change(new)
    assert is_significant_pod_update(new, old) is significant
    v = PodSecurityValidator("baseline")
    judged = list(v.validate(make_ctx(v, new, operation="UPDATE", old_obj=old)))
    assert bool(judged) is significant


def test_ephemeral_container_image_change_is_significant() -> None:
    old = pod_obj(spec(c("app"), ephemeral=(c("debug"),)))
    new = copy.deepcopy(old)
    assert not is_significant_pod_update(new, old)
    new["spec"]["ephemeralContainers"][0]["image"] = "other"
    assert is_significant_pod_update(new, old)


# --------------------------------------------------------------------------------------------------
# the restricted preset (defaults.securityContext)

SEED_PODS = [  # the pods of the trading/edge/ml scenarios (shared/seed), as users write them
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "trading-service", "labels": {"app": "trading"}},
     "spec": {"containers": [{"name": "trading-app", "image": "trading:v1",
                              "resources": {"requests": {"cpu": "2", "memory": "4Gi"},
                                            "limits": {"cpu": "2", "memory": "4Gi"}},
                              "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}},
                              "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}}}]}},
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "market-data-processor"},
     "spec": {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
         {"labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["trading"]}]},
          "topologyKey": "kubernetes.io/hostname"}]}},
         "containers": [{"name": "processor", "image": "market-processor:v1"}]}},
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "edge-processor"},
     "spec": {"containers": [{"name": "processor", "image": "edge-app:v1",
                              "resources": {"requests": {"cpu": "500m", "memory": "512Mi"},
                                            "limits": {"cpu": "1", "memory": "1Gi"}}}]}},
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ml-training"},
     "spec": {"containers": [{"name": "trainer", "image": "ml-trainer:v1", "resources": {"limits": {"nvidia.com/gpu": 2}},
                              "volumeMounts": [{"name": "training-data", "mountPath": "/data"}]}],
              "volumes": [{"name": "training-data", "persistentVolumeClaim": {"claimName": "training-data-pvc"}}]}},
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "model-server"},
     "spec": {"containers": [{"name": "inference", "image": "model-server:v1", "ports": [{"containerPort": 8080}]}],
              "volumes": [{"name": "model-store", "persistentVolumeClaim": {"claimName": "model-store-pvc"}}]}},
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
     "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
         "metadata": {"labels": {"app": "web"}},
         "spec": {"initContainers": [{"name": "migrate", "image": "web:v1", "securityContext": {"runAsUser": 1000}}],
                  "containers": [{"name": "web", "image": "web:v1",
                                  "securityContext": {"capabilities": {"drop": ["NET_RAW"]}}}]}}}},
]


def preset(obj: dict[str, Any], subresource: str = "") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the preset on a copy; check the recorded ops equal jsonpatch's diff; return (mutated, ops)."""
    original, working = json_copy(obj), json_copy(obj)
    request = AdmissionRequest(obj=working, namespace="apps", subresource=subresource)
    ctx = MutationContext(request=request, target=locate_pod(working))
    RestrictedPreset().mutate(ctx)
    ops = ctx.recorder.as_json()
    assert jsonpatch.apply_patch(original, ops) == working
    assert sorted(map(str, ops)) == sorted(map(str, jsonpatch.make_patch(original, working).patch)) or \
        jsonpatch.apply_patch(original, jsonpatch.make_patch(original, working).patch) == working
    return working, ops


@pytest.mark.parametrize("obj", SEED_PODS, ids=[p["metadata"]["name"] for p in SEED_PODS])
def test_preset_makes_typical_pods_restricted(obj: dict[str, Any]) -> None:
    target = locate_pod(obj)
    assert evaluate("restricted", "latest", target.metadata, target.spec) != []
    mutated, _ = preset(obj)
    target = locate_pod(mutated)
    assert evaluate("restricted", "latest", target.metadata, target.spec) == []
    for version in ("v1.0", "v1.19", "v1.22", "v1.25", "v1.34"):
        assert evaluate("restricted", version, target.metadata, target.spec) == []
    again, more = preset(mutated)
    assert more == [] and again == mutated
    assert rule_of(RestrictedPreset()) == "defaults.securityContext"


def rule_of(mutator: Any) -> str:
    return mutator.rule


def test_preset_ops_for_a_bare_pod() -> None:
    _, ops = preset(pod_obj(spec(c("app"))))
    assert ops == [
        {"op": "add", "path": "/spec/securityContext",
         "value": {"seccompProfile": {"type": "RuntimeDefault"}, "runAsNonRoot": True}},
        {"op": "add", "path": "/spec/containers/0/securityContext",
         "value": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}},
    ]


def test_preset_never_overwrites() -> None:
    user = pod_obj(spec(
        c("a", {"allowPrivilegeEscalation": True, "capabilities": {"drop": ["NET_RAW"], "add": ["CHOWN"]},
                "seccompProfile": {"type": "Unconfined"}}),
        securityContext={"runAsNonRoot": False, "seccompProfile": {"type": "Localhost", "localhostProfile": "p"}}))
    mutated, ops = preset(user)
    assert ops == [{"op": "add", "path": "/spec/containers/0/securityContext/capabilities/drop/1", "value": "ALL"}]
    sc = mutated["spec"]["containers"][0]["securityContext"]
    assert sc["allowPrivilegeEscalation"] is True and sc["seccompProfile"] == {"type": "Unconfined"}
    assert mutated["spec"]["securityContext"]["runAsNonRoot"] is False


def test_preset_fills_explicit_nulls() -> None:
    mutated, ops = preset(pod_obj(spec(c("a", {"allowPrivilegeEscalation": None, "capabilities": None}),
                                       securityContext={"runAsNonRoot": None})))
    assert {op["op"] for op in ops} == {"add", "replace"}
    target = locate_pod(mutated)
    assert evaluate("restricted", "latest", target.metadata, target.spec) == []


def test_preset_leaves_intentional_root_and_invalid_combinations_alone() -> None:
    mutated, _ = preset(pod_obj(spec(c("a", {"runAsUser": 0}), c("b", {"privileged": True}),
                                     c("s", {"capabilities": {"add": ["CAP_SYS_ADMIN"]}}))))
    assert "runAsNonRoot" not in mutated["spec"]["securityContext"]
    containers = mutated["spec"]["containers"]
    assert containers[0]["securityContext"]["allowPrivilegeEscalation"] is False
    assert "allowPrivilegeEscalation" not in containers[1]["securityContext"]
    assert "allowPrivilegeEscalation" not in containers[2]["securityContext"]
    # the policy then names what is still wrong
    target = locate_pod(mutated)
    checks = {f.check for f in evaluate("restricted", "latest", target.metadata, target.spec)}
    assert checks == {"privileged", "allowPrivilegeEscalation", "capabilities_restricted", "runAsNonRoot", "runAsUser"}
    # a container that sets runAsNonRoot itself does not inherit, so the pod may still get it
    mutated, _ = preset(pod_obj(spec(c("a", {"runAsUser": 0, "runAsNonRoot": False}))))
    assert mutated["spec"]["securityContext"]["runAsNonRoot"] is True


def test_preset_respects_user_namespaces_and_seccomp_annotations() -> None:
    mutated, _ = preset(pod_obj(spec(c("a")), hostUsers=False) | {"spec": spec(c("a"), hostUsers=False)})
    assert "runAsNonRoot" not in mutated["spec"]["securityContext"]
    target = locate_pod(mutated)
    assert evaluate("restricted", "latest", target.metadata, target.spec) == []
    annotated = pod_obj(spec(c("a")), annotations={"seccomp.security.alpha.kubernetes.io/pod": "runtime/default"})
    mutated, _ = preset(annotated)
    assert "seccompProfile" not in mutated["spec"]["securityContext"]


def test_preset_windows_pods_get_only_run_as_non_root() -> None:
    mutated, ops = preset(pod_obj(spec(c("app"), os={"name": "windows"})))
    assert ops == [{"op": "add", "path": "/spec/securityContext", "value": {"runAsNonRoot": True}}]
    target = locate_pod(mutated)
    assert evaluate("restricted", "latest", target.metadata, target.spec) == []


def test_preset_on_ephemeralcontainers_touches_only_ephemeral_containers() -> None:
    obj = pod_obj(spec(c("app"), ephemeral=(c("debug"),)))
    mutated, ops = preset(obj, subresource="ephemeralcontainers")
    assert [op["path"] for op in ops] == ["/spec/ephemeralContainers/0/securityContext"]
    assert "securityContext" not in mutated["spec"]["containers"][0]


def test_preset_then_restricted_admits_through_the_validator() -> None:
    v = PodSecurityValidator("restricted", "latest")
    for obj in SEED_PODS:
        mutated, _ = preset(obj)
        assert list(v.validate(make_ctx(v, mutated))) == []
