"""Exemptions that switch a policy off: lint warns (errors under --strict), the server gets the same warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from webhook.core.selectors import glob_match
from webhook.policy import load_policies
from webhook.policy.exemptions import _NAMESPACES, _any_name, covers, policy_warnings

CLUSTER = "apiVersion: tenantguard.io/v1alpha1\nkind: ClusterPolicy\nmetadata: {name: base}\nspec:\n  exemptions:\n"
TENANT = ("apiVersion: tenantguard.io/v1alpha1\nkind: TenantPolicy\nmetadata: {name: shop}\nspec:\n"
          "  namespaces: [shop, shop-*]\n  exemptions:\n")


def policy(tmp_path: Path, head: str, *entries: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(head + "".join(f"  - {{{e}, reason: r}}\n" for e in entries))
    return path


def warnings_of(path: Path) -> list[str]:
    return policy_warnings(load_policies([path]))


@pytest.mark.parametrize("entry,field,why", [
    ('users: ["*"]', "users[0]", "'*' matches every user"),
    ('users: ["**"]', "users[0]", "'**' matches every user"),
    ('users: [alice, "?*"]', "users[1]", "'?*' matches every user"),
    ('users: ["*?*"]', "users[0]", "'*?*' matches every user"),
    ('users: ["[!a]*", "a*"]', "users", "['[!a]*', 'a*'] together match every user"),
    ("groups: [system:authenticated]", "groups[0]", "every authenticated caller is in group system:authenticated"),
    ("groups: [break-glass, system:authenticated]", "groups[1]", "every authenticated caller"),
    ('namespaces: ["*"]', "namespaces[0]", "'*' matches every namespace"),
    ('namespaces: ["?*"]', "namespaces[0]", "'?*' matches every namespace"),
    ('namespaces: ["[a-z0-9]*"]', "namespaces[0]", "'[a-z0-9]*' matches every namespace"),
    ('namespaces: ["*[a-z0-9]"]', "namespaces[0]", "'*[a-z0-9]' matches every namespace"),
    ('namespaces: ["[a-m]*", "[!a-m]*"]', "namespaces", "['[a-m]*', '[!a-m]*'] together match every namespace"),
    ('namespaces: ["[a-z]*", "[0-9]*"]', "namespaces", "['[a-z]*', '[0-9]*'] together match every namespace"),
])
def test_entries_that_match_every_request(tmp_path: Path, entry: str, field: str, why: str) -> None:
    path = policy(tmp_path, CLUSTER, "namespaces: [kube-system]", entry)
    [warning] = warnings_of(path)
    assert warning.startswith(f"{path}: ClusterPolicy base: spec.exemptions[1].{field}: {why}"), warning
    assert ", so this exemption turns the policy off for every request; " in warning


@pytest.mark.parametrize("entry,field,effect", [
    ("groups: [system:serviceaccounts]", "groups[0]", "every pod these controllers create"),
    ("groups: [system:serviceaccounts:kube-system]", "groups[0]", "every pod these controllers create"),
    ("users: [system:serviceaccount:kube-system:replicaset-controller]", "users[0]",
     "every pod these controllers create"),
    ('users: [ci, "system:serviceaccount:*"]', "users[1]", "every pod these controllers create"),
    ("users: [system:kube-controller-manager]", "users[0]", "every pod these controllers create"),
    ("groups: [system:unauthenticated]", "groups[0]", "every anonymous request"),
    ('groups: [system:unauthenticated, system:serviceaccounts]', "groups[1]", "every pod these controllers create"),
    ('groups: [system:unauthenticated, system:authenticated]', "groups[1]", "every request"),
])
def test_entries_that_match_every_controller_or_anonymous_caller(tmp_path: Path, entry: str, field: str,
                                                               effect: str) -> None:
    path = policy(tmp_path, CLUSTER, entry)
    [warning] = warnings_of(path)
    assert warning.startswith(f"{path}: ClusterPolicy base: spec.exemptions[0].{field}: "), warning
    assert f", so this exemption turns the policy off for {effect}" in warning


def test_the_message_names_file_policy_field_and_what_to_write(tmp_path: Path) -> None:
    path = policy(tmp_path, CLUSTER, 'users: ["*"]', "groups: [system:authenticated]", 'namespaces: ["*"]')
    assert warnings_of(path) == [
        (f"{path}: ClusterPolicy base: spec.exemptions[0].users[0]: '*' matches every user, so this exemption turns "
         "the policy off for every request; name the users to exempt (users: [ci-deployer]), or add namespaces: "
         "[...] to this entry to narrow it"),
        (f"{path}: ClusterPolicy base: spec.exemptions[1].groups[0]: every authenticated caller is in group "
         "system:authenticated, so this exemption turns the policy off for every request; name a group only trusted "
         "callers are in (groups: [platform-admins]), or add namespaces: [...] to this entry to narrow it"),
        (f"{path}: ClusterPolicy base: spec.exemptions[2].namespaces[0]: '*' matches every namespace, so this "
         "exemption turns the policy off for every request; list the namespaces to exempt by name (namespaces: "
         "[kube-system]); to switch the policy off, delete it or set enforcement: Audit"),
    ]


def test_an_entry_whose_every_criterion_matches_everyone(tmp_path: Path) -> None:
    path = policy(tmp_path, CLUSTER, 'namespaces: ["*"], users: ["*"], groups: [system:authenticated]')
    [warning] = warnings_of(path)
    assert warning.startswith(
        f"{path}: ClusterPolicy base: spec.exemptions[0]: every criterion of this entry matches everyone "
        "(namespaces[0]: '*' matches every namespace; users[0]: '*' matches every user; groups[0]: every "
        "authenticated caller is in group system:authenticated), so this exemption turns the policy off for every "
        "request; name whom to exempt:"), warning


@pytest.mark.parametrize("entry", [
    # the criteria of one entry are ANDed: one narrow criterion narrows the entry
    "namespaces: [kube-system], groups: [system:authenticated]",
    'namespaces: [kube-system], users: ["*"]',
    'namespaces: ["*"], users: [alice]',
    'namespaces: ["*"], groups: [break-glass]',
    'users: ["*"], groups: [platform-admins]',
    "namespaces: [ci-*], groups: [system:serviceaccounts]",
    "users: [system:serviceaccount:ci:deployer]",
    "groups: [system:masters]",
    "groups: [system:serviceaccounts:ci]",
    'users: ["ci-*", "?"]',
    'namespaces: ["[a-y0-9]*"]',  # misses the names that start with z
    'namespaces: ["*[a-y0-9]"]',
    'namespaces: ["[a-z]*"]',  # misses the names that start with a digit
    'namespaces: ["?*?"]',  # misses one-letter names
    # a controller that is anonymous is nobody
    'users: ["system:serviceaccount:*"], groups: [system:unauthenticated]',
])
def test_narrow_entries_are_not_flagged(tmp_path: Path, entry: str) -> None:
    assert warnings_of(policy(tmp_path, CLUSTER, entry)) == []


def test_tenant_exemptions_are_measured_against_the_namespaces_it_claims(tmp_path: Path) -> None:
    path = policy(tmp_path, TENANT, 'namespaces: ["shop*"]', "namespaces: [shop-*]", "namespaces: [shop, shop-*]",
                  "namespaces: [shop, shop-dev]", 'namespaces: ["*"]')
    warnings = warnings_of(path)
    assert [w.split(": ", 3)[2] for w in warnings] == [
        "spec.exemptions[0].namespaces[0]", "spec.exemptions[2].namespaces", "spec.exemptions[4].namespaces[0]"]
    assert warnings[0] == (
        f"{path}: TenantPolicy shop: spec.exemptions[0].namespaces[0]: 'shop*' matches every namespace TenantPolicy "
        "shop claims, so this exemption turns the policy off for every request; list by name the few namespaces to "
        "exempt, not every one the tenant claims; to switch the policy off, delete it or set enforcement: Audit")


def test_a_tenant_claiming_by_selector_may_own_any_namespace(tmp_path: Path) -> None:
    path = tmp_path / "sel.yaml"
    path.write_text("apiVersion: tenantguard.io/v1alpha1\nkind: TenantPolicy\nmetadata: {name: sel}\nspec:\n"
                    "  namespaces: [sel]\n  namespaceSelector: {matchLabels: {team: sel}}\n  exemptions:\n"
                    "  - {namespaces: [sel], reason: r}\n  - {namespaces: ['*'], reason: r}\n")
    [warning] = warnings_of(path)
    assert "spec.exemptions[1].namespaces[0]: '*' matches every namespace, so" in warning


@pytest.mark.parametrize("directory", ["policies", "charts/tenantguard/policies", "charts/tenantguard/starter"])
def test_shipped_policies_are_not_flagged(directory: str) -> None:
    assert policy_warnings(load_policies([ROOT / directory])) == []


# --- tenantguard lint ---

def test_lint_warns_and_exits_0(tmp_path: Path) -> None:
    path = policy(tmp_path, CLUSTER, 'users: ["*"]', "namespaces: [kube-system], groups: [system:authenticated]")
    result = run_cli("lint", str(path))
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        (f"warning: {path}: ClusterPolicy base: spec.exemptions[0].users[0]: '*' matches every user, so this exemption "
         "turns the policy off for every request; name the users to exempt (users: [ci-deployer]), or add namespaces: "
         "[...] to this entry to narrow it"),
        "1 policy (1 cluster, 0 tenant): 1 warning(s)",
    ]
    assert result.err == ""


def test_lint_strict_makes_them_errors(tmp_path: Path) -> None:
    path = policy(tmp_path, CLUSTER, 'namespaces: ["*"]', "groups: [system:authenticated]")
    result = run_cli("lint", "--strict", str(path))
    assert result.code == 2
    errors = result.err.splitlines()
    assert [e.split(": ", 4)[:4] for e in errors] == [
        ["error", str(path), "ClusterPolicy base", "spec.exemptions[0].namespaces[0]"],
        ["error", str(path), "ClusterPolicy base", "spec.exemptions[1].groups[0]"],
    ]
    assert result.out == "1 policy (1 cluster, 0 tenant): 2 error(s)\n"


def test_lint_strict_passes_anded_entries(tmp_path: Path) -> None:
    path = policy(tmp_path, CLUSTER, "namespaces: [kube-system], groups: [system:authenticated]",
                  "namespaces: [platform-*], users: [ops-bot]")
    result = run_cli("lint", "--strict", str(path))
    assert result.code == 0, result.err
    assert result.out == "1 policy (1 cluster, 0 tenant): ok\n"


def test_lint_strict_on_the_shipped_policies() -> None:
    for directory in ("policies", "charts/tenantguard/policies", "charts/tenantguard/starter"):
        result = run_cli("lint", "--strict", str(ROOT / directory))
        assert result.code == 0, result.err


# --- glob coverage, decided exactly ---

@pytest.mark.parametrize("patterns,expected", [
    (["*"], True), (["**"], True), (["?*"], True), (["*?"], True), (["?"], False), (["??*"], False),
    (["[a-z0-9]*"], True), (["[!-]*"], True), (["[a-z]*", "[0-9]*"], True), (["[a-z]*"], False),
    (["a*", "[!a]*"], True), (["*-*"], False), (["*[!-]"], True), (["[]]*"], False),
])
def test_namespace_coverage(patterns: list[str], expected: bool) -> None:
    assert covers(patterns, _NAMESPACES) is expected
    # the short names agree: a miss is found among them, a cover matches them all
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-"
    short = [a for a in alphabet if a != "-"] + [a + b for a in alphabet for b in alphabet if "-" not in (a, b)]
    short += [a + "-" + b for a in "az09" for b in "az09"]
    assert all(any(glob_match(p, name) for p in patterns) for name in short) is expected


@pytest.mark.parametrize("patterns,expected", [
    (["*"], True), (["?*"], True), (["?"], False), (["[!a]*", "a*"], True), (["[!a]*"], False),
    (["[a-z]*", "[!a-z]*"], True), (["[a-y]*", "[!a-z]*"], False), (["*[!:]", "*:"], True), (["system:*"], False),
    (["[*]*"], False),
])
def test_user_coverage(patterns: list[str], expected: bool) -> None:
    assert covers(patterns, _any_name(patterns)) is expected


def test_coverage_within_a_claim() -> None:
    assert covers(["shop*"], _NAMESPACES, within=["shop", "shop-*"])
    assert covers(["shop", "shop-*"], _NAMESPACES, within=["shop", "shop-*"])
    assert not covers(["shop-*"], _NAMESPACES, within=["shop", "shop-*"])
    assert covers(["*-prod"], _NAMESPACES, within=["team-?-prod"])
    assert not covers(["*-prod"], _NAMESPACES, within=["team-*"])
