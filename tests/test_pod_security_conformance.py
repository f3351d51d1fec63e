"""Conformance of the Pod Security engine with k8s.io/pod-security-admission's own corpus.

``tests/data/pod_security/fixtures.yaml`` transcribes, as data, upstream's check table
(``policy/check_*.go``), its minimal valid pods (``test/fixtures.go``) and every fixture
generator (``test/fixtures_<check>.go``); ``tests/data/pod_security/corpus.py`` expands them
the way ``test/fixtures_test.go`` writes ``test/testdata/{level}/v1.N/{pass,fail}/*.yaml``.

For every level, every version v1.0 .. v1.38 and every case:

* a pass pod is allowed: no check fails at that level and version;
* a fail pod is denied, a failing check is the fixture's check or the restricted check that
  overrides it at that version (``hostPathVolumes`` under restricted fails as
  ``restrictedVolumes``), and the denial message contains the generator's
  ``expectErrorSubstring`` (as upstream's ``test/run.go`` asserts), or, when an overriding
  check did the denying, that check's own substring.

Cases marked ``x-`` are ours (``extra: true`` in the data): read off the check sources for
behaviour the upstream fixtures do not exercise (Windows exemptions, user namespaces,
ephemeral containers, the appArmorProfile fields).
"""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from webhook.core.pod_security import NEWEST_VERSION, evaluate, format_failures
from webhook.core.pod_security.registry import CHECKS

DATA = Path(__file__).parent / "data" / "pod_security"


def _load_corpus_module() -> ModuleType:
    name = "tenantguard_psa_corpus"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, DATA / "corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


corpus_module = _load_corpus_module()
CORPUS = corpus_module.Corpus()
CASES = list(CORPUS.cases())
UPSTREAM_CASES = [c for c in CASES if not c.extra]


def _describe(failures: list) -> str:
    return "; ".join(f"{f.check}: {f.message}" for f in failures) or "allowed"


# --------------------------------------------------------------------------------------------------
# the corpus itself


def test_case_ids_are_unique() -> None:
    ids = Counter(c.id for c in CASES)
    assert [i for i, n in ids.items() if n > 1] == []


def test_corpus_has_upstream_scale() -> None:
    # upstream's testdata holds a few thousand pods over both levels and v1.0 .. v1.38
    assert len(UPSTREAM_CASES) > 4000
    per_check = Counter(c.check for c in UPSTREAM_CASES)
    assert set(per_check) == {check.id for check in CORPUS.checks} | {"base"}


def test_registry_matches_the_upstream_check_table() -> None:
    ours = {
        check.id: (check.level, tuple(r.since for r in check.revisions),
                   {r.since: tuple(r.overrides) for r in check.revisions if r.overrides})
        for check in CHECKS
    }
    upstream = {c.id: (c.level, c.versions, dict(c.overrides)) for c in CORPUS.checks}
    assert ours == upstream


def test_latest_is_the_newest_policy_revision() -> None:
    # sysctls gained its v1.37 revision (net.ipv4.tcp_slow_start_after_idle, tcp_notsent_lowat)
    assert NEWEST_VERSION == f"v1.{CORPUS.policy_max()}" == "v1.37"


@pytest.mark.parametrize(("level", "minor", "kind", "name", "probe"), [
    # a handful of pods compared with upstream's generated testdata files
    ("restricted", 38, "pass", "restrictedvolumes0", lambda pod: pod["spec"]["volumes"][0] == {"name": "volume0"}),
    ("baseline", 37, "pass", "sysctls1",
     lambda pod: [s["name"] for s in pod["spec"]["securityContext"]["sysctls"]]
     == ["net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"]),
    ("baseline", 34, "pass", "sysctls1",
     lambda pod: [s["name"] for s in pod["spec"]["securityContext"]["sysctls"]]
     == ["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"]),
    ("restricted", 37, "fail", "allowprivilegeescalation2",
     lambda pod: "allowPrivilegeEscalation" not in pod["spec"]["containers"][0]["securityContext"]),
    ("restricted", 35, "fail", "procmount0",
     lambda pod: pod["spec"]["hostUsers"] is True
     and pod["spec"]["containers"][0]["securityContext"]["procMount"] == "Unmasked"),
    ("baseline", 36, "pass", "apparmorprofile0",
     lambda pod: pod["metadata"]["annotations"]
     == {"container.apparmor.security.beta.kubernetes.io/container1": "localhost/foo"}),
    ("restricted", 25, "pass", "base_windows",
     lambda pod: pod["spec"]["os"] == {"name": "windows"} and "seccompProfile" not in pod["spec"]["securityContext"]),
])
def test_generated_pods_match_upstream_testdata(level, minor, kind, name, probe) -> None:
    found = [c for c in CASES if (c.level, c.minor, c.kind, c.name) == (level, minor, kind, name)]
    assert len(found) == 1
    assert probe(found[0].pod)


def test_restricted_procmount_unmasked_user_namespace_pod_is_baseline_only() -> None:
    names = {(c.level, c.kind, c.name) for c in CASES if c.minor == 35 and c.check == "procMount"}
    assert ("baseline", "pass", "procmount1") in names
    assert ("restricted", "pass", "procmount1") not in names


# --------------------------------------------------------------------------------------------------
# the engine against every case


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_conformance(case) -> None:
    failures = evaluate(case.level, case.version, case.pod.get("metadata") or {}, case.pod.get("spec") or {})
    if case.kind == "pass":
        assert failures == [], f"{case.id} must be allowed, got: {_describe(failures)}"
        return
    assert failures, f"{case.id} must be denied, was allowed"
    failed = {f.check for f in failures}
    expected = {case.check} | CORPUS.overriders(case.level, case.minor, case.check)
    assert failed & expected, f"{case.id} must fail {sorted(expected)}, got: {_describe(failures)}"
    message = format_failures(case.level, case.version, failures)
    # a fixture denied by the restricted check overriding its own (hostPathVolumes -> restrictedVolumes)
    # is worded by that check: accept the overriding check's substring too
    substrings = {case.expect} | {CORPUS.generator(case.level, o, case.minor).expect for o in failed & expected
                                  if o != case.check}
    assert any(s in message for s in substrings), f"{case.id}: none of {sorted(substrings)} in {message!r}"


NEWEST_CASES = [c for c in CASES if c.minor == CORPUS.policy_max()]


@pytest.mark.parametrize("case", NEWEST_CASES, ids=[c.id for c in NEWEST_CASES])
def test_latest_and_future_versions_evaluate_as_the_newest(case) -> None:
    metadata, spec = case.pod.get("metadata") or {}, case.pod.get("spec") or {}
    at_newest = evaluate(case.level, case.version, metadata, spec)
    assert evaluate(case.level, "latest", metadata, spec) == at_newest
    assert evaluate(case.level, "v1.99", metadata, spec) == at_newest


# --------------------------------------------------------------------------------------------------
# discrepancies found against the Go source, pinned


def test_bare_volume_is_the_api_defaulted_empty_dir() -> None:
    # check_restrictedVolumes.go only sees defaulted pods: SetDefaults_Volume turns a volume with no
    # source into an emptyDir; upstream's restricted pass fixture restrictedvolumes0 relies on it.
    spec = {"containers": [{"name": "c"}], "volumes": [{"name": "volume0"}, {"name": "v1", "emptyDir": None}]}
    assert [f for f in evaluate("restricted", "latest", {}, spec) if f.check == "restrictedVolumes"] == []
    unknown = {"containers": [{"name": "c"}], "volumes": [{"name": "x", "notAVolumeSource": {}}]}
    (failure,) = [f for f in evaluate("restricted", "latest", {}, unknown) if f.check == "restrictedVolumes"]
    assert failure.detail == 'volume "x" uses restricted volume type "unknown"'


def test_selinux_user_and_role_are_only_worded_next_to_a_bad_type() -> None:
    # check_seLinuxOptions.go appends "user may not be set" / "role may not be set" inside its
    # `if len(badTypes) > 0` block, so a user- or role-only violation has an empty detail.
    only_user = {"securityContext": {"seLinuxOptions": {"user": "somevalue"}}, "containers": [{"name": "c"}]}
    (failure,) = evaluate("baseline", "latest", {}, only_user)
    assert (failure.check, failure.reason, failure.detail) == (
        "seLinuxOptions", "seLinuxOptions", "pod set forbidden securityContext.seLinuxOptions: ")
    assert failure.message == "seLinuxOptions (pod set forbidden securityContext.seLinuxOptions: )"
    with_type = {"securityContext": {"seLinuxOptions": {"user": "u", "role": "r", "type": "t"}},
                 "containers": [{"name": "c", "securityContext": {"seLinuxOptions": {"role": "r"}}}]}
    (failure,) = evaluate("baseline", "latest", {}, with_type)
    assert failure.detail == ('pod and container "c" set forbidden securityContext.seLinuxOptions: '
                              'type "t"; user may not be set; role may not be set')
