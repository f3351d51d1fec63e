"""The checks of the Pod Security Standards with their version history, as data.

Mirrors the upstream PodSecurity admission library (k8s.io/pod-security-admission,
``policy/check_*.go`` and ``policy/registry.go``):

* every check has an id, a level (baseline or restricted) and revisions, each
  applying from a minimum policy version (``v1.N``) until the next revision;
* a policy version below a check's first revision does not run that check;
* baseline runs the baseline checks; restricted runs every baseline check except
  those a restricted revision in force overrides, plus the restricted checks;
* a version newer than the newest revision (and ``latest``) is evaluated as
  that newest revision (upstream's ``maxVersion`` clamp);
* checks run, and failures are reported, in upstream's order: baseline ids
  sorted, then restricted ids sorted.

The tables are built once per (level, version) and cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from webhook.core.pod_security import checks_baseline as b
from webhook.core.pod_security import checks_restricted as r
from webhook.core.pod_security._api import (
    BASELINE,
    LATEST,
    PRIVILEGED,
    RESTRICTED,
    parse_level,
    parse_version,
)
from webhook.core.pod_security._model import CheckFn


@dataclass(frozen=True, slots=True)
class Revision:
    """One revision of a check: in force from policy version v1.<since> until the next revision."""

    since: int
    check_pod: CheckFn
    overrides: tuple[str, ...] = ()  # baseline check ids this (restricted) revision replaces


@dataclass(frozen=True, slots=True)
class Check:
    id: str
    level: str  # BASELINE or RESTRICTED
    revisions: tuple[Revision, ...]

    def revision_at(self, minor: int) -> Revision | None:
        found = None
        for revision in self.revisions:
            if revision.since <= minor:
                found = revision
        return found


CHECKS: tuple[Check, ...] = (
    # ---- baseline --------------------------------------------------------------------------------
    Check("windowsHostProcess", BASELINE, (Revision(0, b.windows_host_process_1_0),)),
    Check("hostNamespaces", BASELINE, (Revision(0, b.host_namespaces_1_0),)),
    Check("privileged", BASELINE, (Revision(0, b.privileged_1_0),)),
    Check("capabilities_baseline", BASELINE, (Revision(0, b.capabilities_baseline_1_0),)),
    Check("hostPathVolumes", BASELINE, (Revision(0, b.host_path_volumes_1_0),)),
    Check("hostPorts", BASELINE, (Revision(0, b.host_ports_1_0),)),
    Check("hostProbesAndHostLifecycle", BASELINE, (Revision(34, b.host_probes_and_host_lifecycle_1_34),)),
    Check("appArmorProfile", BASELINE, (Revision(0, b.app_armor_profile_1_0),)),
    Check("seLinuxOptions", BASELINE, (
        Revision(0, b.se_linux_options_1_0),
        Revision(31, b.se_linux_options_1_31),
    )),
    Check("procMount", BASELINE, (
        Revision(0, b.proc_mount_1_0),
        Revision(35, b.proc_mount_1_35),
    )),
    Check("seccompProfile_baseline", BASELINE, (
        Revision(0, b.seccomp_profile_baseline_1_0),
        Revision(19, b.seccomp_profile_baseline_1_19),
    )),
    Check("sysctls", BASELINE, (
        Revision(0, b.sysctls_1_0),
        Revision(27, b.sysctls_1_27),
        Revision(29, b.sysctls_1_29),
        Revision(32, b.sysctls_1_32),
        Revision(37, b.sysctls_1_37),
    )),
    # ---- restricted ------------------------------------------------------------------------------
    Check("restrictedVolumes", RESTRICTED, (
        Revision(0, r.restricted_volumes_1_0, overrides=("hostPathVolumes",)),
    )),
    Check("allowPrivilegeEscalation", RESTRICTED, (
        Revision(8, r.allow_privilege_escalation_1_8),
        Revision(25, r.allow_privilege_escalation_1_25),
    )),
    Check("runAsNonRoot", RESTRICTED, (
        Revision(0, r.run_as_non_root_1_0),
        Revision(35, r.run_as_non_root_1_35),
    )),
    Check("runAsUser", RESTRICTED, (
        Revision(23, r.run_as_user_1_23),
        Revision(35, r.run_as_user_1_35),
    )),
    Check("seccompProfile_restricted", RESTRICTED, (
        Revision(19, r.seccomp_profile_restricted_1_19, overrides=("seccompProfile_baseline",)),
        Revision(25, r.seccomp_profile_restricted_1_25, overrides=("seccompProfile_baseline",)),
    )),
    Check("capabilities_restricted", RESTRICTED, (
        Revision(22, r.capabilities_restricted_1_22, overrides=("capabilities_baseline",)),
        Revision(25, r.capabilities_restricted_1_25, overrides=("capabilities_baseline",)),
    )),
    Check("procMount_restricted", RESTRICTED, (
        Revision(35, b.proc_mount_1_0, overrides=("procMount",)),
    )),
)


def _validate(checks: tuple[Check, ...]) -> None:
    """The registry's own invariants (as upstream's validateChecks)."""
    levels = {}
    for check in checks:
        if check.id in levels:
            raise ValueError(f"multiple checks registered for id {check.id}")
        if check.level not in (BASELINE, RESTRICTED):
            raise ValueError(f"check {check.id}: invalid level {check.level}")
        if not check.revisions:
            raise ValueError(f"check {check.id}: no revisions")
        last = -1
        for revision in check.revisions:
            if revision.since <= last:
                raise ValueError(f"check {check.id}: revisions must have strictly increasing versions")
            last = revision.since
        levels[check.id] = check.level
    for check in checks:
        for revision in check.revisions:
            if revision.overrides and check.level != RESTRICTED:
                raise ValueError(f"check {check.id}: only restricted checks may override")
            for overridden in revision.overrides:
                if levels.get(overridden) != BASELINE:
                    raise ValueError(f"check {check.id}: overrides {overridden}, which is not a baseline check")


_validate(CHECKS)

# The newest policy version any check revision defines: what "latest" means.
NEWEST_MINOR: int = max(revision.since for check in CHECKS for revision in check.revisions)
NEWEST_VERSION: str = f"v1.{NEWEST_MINOR}"

_ORDER = tuple(sorted(c.id for c in CHECKS if c.level == BASELINE)) + tuple(
    sorted(c.id for c in CHECKS if c.level == RESTRICTED))
_BY_ID = {c.id: c for c in CHECKS}


def effective_minor(minor: int) -> int:
    """The policy version actually evaluated: ``latest`` and future versions clamp to the newest."""
    return NEWEST_MINOR if minor >= LATEST or minor > NEWEST_MINOR else minor


@cache
def plan(level: str, minor: int) -> tuple[tuple[str, CheckFn], ...]:
    """The (check id, check function) pairs to run for a level at a policy version, in report order."""
    minor = effective_minor(minor)
    if level == PRIVILEGED:
        return ()
    active: dict[str, Revision] = {}
    for check in CHECKS:
        if check.level == RESTRICTED and level != RESTRICTED:
            continue
        revision = check.revision_at(minor)
        if revision is not None:
            active[check.id] = revision
    overridden = {o for cid, rev in active.items() if _BY_ID[cid].level == RESTRICTED for o in rev.overrides}
    return tuple((cid, active[cid].check_pod) for cid in _ORDER if cid in active and cid not in overridden)


def checks_for(level: str, version: str = "latest") -> tuple[str, ...]:
    """The ids of the checks that run for ``level`` at ``version`` (e.g. ``"restricted"``, ``"v1.25"``)."""
    return tuple(cid for cid, _ in plan(parse_level(level), parse_version(version)))
