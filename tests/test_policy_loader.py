"""Policy loading: every error names file, document and field; cross-policy conflicts are load errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from webhook.core.selectors import globs_overlap
from webhook.policy import PolicyError, load_policies

TENANT = """apiVersion: tenantguard.io/v1alpha1
kind: TenantPolicy
metadata: {{name: {name}}}
spec:
  namespaces: {namespaces}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def errors_of(*paths: Path) -> list[str]:
    with pytest.raises(PolicyError) as info:
        load_policies(paths)
    return info.value.errors


def test_typo_names_file_document_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "x.yaml", TENANT.format(name="ok", namespaces="[a]") + "---\n" +
                 "apiVersion: tenantguard.io/v1alpha1\nkind: ClusterPolicy\nmetadata: {name: c}\n"
                 "spec:\n  defualts: {}\n")
    assert errors_of(path) == [f"{path}: document 2: spec.defualts: unknown field"]


@pytest.mark.parametrize("spec,expected", [
    ("  enforcement: Enfrce\n", "spec.enforcement: must be one of 'Enforce', 'Warn' or 'Audit' (got 'Enfrce')"),
    ("  defaults: {resources: {requests: {cpu: 1 Gi}}}\n",
     "spec.defaults.resources.requests.cpu: invalid quantity '1 Gi'"),
    ("  defaults: {resources: {requests: {cpu: 2}, limits: {cpu: 1}}}\n",
     "spec.defaults.resources: requests.cpu 2 is above limits.cpu 1"),
    ("  rules: {podSecurity: strict}\n", "spec.rules.podSecurity:"),
    ("  rules: {podSecurity: {level: baseline, version: v2.0}}\n", "spec.rules.podSecurity:"),
    ("  rules: {requireProbes: [liveliness]}\n", "spec.rules.requireProbes[0]: must be one of"),
    ("  rules: {qosClass: Gold}\n", "spec.rules.qosClass: must be one of"),
    ("  quota: {hard: {requests.cpuu: 4}}\n", "spec.quota.hard[\"requests.cpuu\"]: 'requests.cpuu' is not a ResourceQuota key"),
    ("  quota: {hard: {requests.cpu: 4}}\n", "spec.quota: quota.hard bounds a tenant and belongs in a TenantPolicy"),
    ("  defaults: {tolerations: [{key: a, effect: Never}]}\n", "spec.defaults.tolerations[0].effect: must be one of"),
    ("  defaults: {probes: {liveness: {httpGet: {path: /}}}}\n", "spec.defaults.probes.liveness: httpGet needs a port"),
    ("  defaults: {securityContext: {container: {runAsNonroot: true}}}\n",
     "spec.defaults.securityContext.container.runAsNonroot: unknown field"),
    ("  defaults: {securityContext: hardened}\n", "spec.defaults.securityContext.preset: must be one of 'restricted'"),
    ("  exemptions: [{reason: nothing named}]\n", "spec.exemptions[0]: an exemption must name namespaces"),
    (("  defaults:\n    affinity:\n      nodeAffinity:\n        requiredDuringSchedulingIgnoredDuringExecution:\n"
      "          nodeSelectorTerms: [{matchExpressions: []}, {matchExpressions: []}]\n"),
     "spec.defaults.affinity.nodeAffinity: a default required nodeAffinity must have exactly one nodeSelectorTerm"),
])
def test_field_errors(tmp_path: Path, spec: str, expected: str) -> None:
    path = write(tmp_path, "p.yaml", "apiVersion: tenantguard.io/v1alpha1\nkind: ClusterPolicy\n"
                 "metadata: {name: c}\nspec:\n" + spec)
    [error] = errors_of(path)
    assert error.startswith(f"{path}: document 1: {expected}"), error


def test_broken_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.yaml", "apiVersion: tenantguard.io/v1alpha1\nkind: [ClusterPolicy\n")
    [error] = errors_of(path)
    assert error.startswith(f"{path}: line ")


def test_duplicate_yaml_keys_are_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "dup.yaml", TENANT.format(name="a", namespaces="[a]") + "  namespaces: [b]\n")
    [error] = errors_of(path)
    assert "duplicate key 'namespaces'" in error and str(path) in error


def test_wrong_kind_and_api_version(tmp_path: Path) -> None:
    path = write(tmp_path, "k.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n---\n"
                 "apiVersion: tenantguard.io/v2\nkind: TenantPolicy\nmetadata: {name: x}\n")
    errors = errors_of(path)
    assert errors[0] == f"{path}: document 1: kind: must be ClusterPolicy or TenantPolicy (got 'Pod')"
    assert errors[1].startswith(f"{path}: document 2: apiVersion: must be tenantguard.io/v1alpha1")


def test_all_errors_reported_together(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", TENANT.format(name="a", namespaces="[a]") + "  bogus: 1\n")
    b = write(tmp_path, "b.yaml", "kind: [\n")
    errors = errors_of(a, b)
    assert len(errors) == 2


@pytest.mark.parametrize("first,second", [
    ("[shop]", "[shop]"),
    ("[shop-*]", "[shop-prod]"),
    ("[shop-prod]", "[shop-*]"),
    ("[team-*]", "[team-a*]"),
    ("['*-prod']", "['shop-*']"),
    ("['shop-[ab]']", "['shop-?']"),
])
def test_two_tenants_claiming_one_namespace(tmp_path: Path, first: str, second: str) -> None:
    a = write(tmp_path, "a.yaml", TENANT.format(name="a", namespaces=first))
    b = write(tmp_path, "b.yaml", TENANT.format(name="b", namespaces=second))
    [error] = errors_of(a, b)
    assert error.startswith(f"{b}: document 1: spec.namespaces:")
    assert f"already claimed by TenantPolicy a ({a}: document 1)" in error  # the other file is named too


@pytest.mark.parametrize("first,second", [("[shop-*]", "[shopx]"), ("['a-?']", "['a-bc']"), ("['x-[ab]']", "['x-c*']")])
def test_disjoint_globs_load(tmp_path: Path, first: str, second: str) -> None:
    a = write(tmp_path, "a.yaml", TENANT.format(name="a", namespaces=first))
    b = write(tmp_path, "b.yaml", TENANT.format(name="b", namespaces=second))
    assert len(load_policies([a, b]).tenants) == 2


def test_glob_overlap_decision() -> None:
    assert globs_overlap("a*", "*b")
    assert globs_overlap("*", "x")
    assert not globs_overlap("a*", "b*")
    assert not globs_overlap("a?", "abc")
    assert globs_overlap("a*c", "ab*")


def test_duplicate_policy_names(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", TENANT.format(name="same", namespaces="[a]"))
    b = write(tmp_path, "b.yaml", TENANT.format(name="same", namespaces="[b]"))
    [error] = errors_of(a, b)
    assert "TenantPolicy same is already defined in" in error


def test_tenant_must_claim_namespaces(tmp_path: Path) -> None:
    path = write(tmp_path, "t.yaml", "apiVersion: tenantguard.io/v1alpha1\nkind: TenantPolicy\n"
                 "metadata: {name: t}\nspec: {}\n")
    [error] = errors_of(path)
    assert "must claim namespaces" in error


def test_directory_walk_skips_hidden_configmap_indirection(tmp_path: Path) -> None:
    data = tmp_path / "..2026_11_27_00_00_00.000"
    data.mkdir()
    (data / "t.yaml").write_text(TENANT.format(name="t", namespaces="[t]"))
    (tmp_path / "..data").symlink_to(data.name)
    (tmp_path / "t.yaml").symlink_to("..data/t.yaml")
    (tmp_path / "README.md").write_text("not a policy")
    policies = load_policies([tmp_path])
    assert [t.name for t in policies.tenants] == ["t"]


def test_missing_path_and_empty_input(tmp_path: Path) -> None:
    assert errors_of(tmp_path / "nope.yaml")[0].endswith("no such file or directory")
    empty_dir = tmp_path / "none"
    empty_dir.mkdir()
    assert errors_of(empty_dir) == [f"{empty_dir}: no policy documents found"]


EMPTY = "(a policy file must hold at least one policy document)"


@pytest.mark.parametrize("text,why", [
    ("", "file is empty"),
    ("\n  \n\r\n", "file is empty"),
    ("# cluster baseline\n# (rewritten)\n", "file holds no document, only comments"),
    ("---\n---\n", "file holds no document"),
    ("--- # nothing\n...\n", "file holds no document"),
    ("null\n", "file holds no document"),
    ("{}", None),  # a document, just not a valid policy: judged as one
])
def test_an_empty_policy_file_is_an_error_naming_it(tmp_path: Path, text: str, why: str | None) -> None:
    """A truncated file (a non-atomic rewrite caught half way) must not load as "no rules"."""
    policies = tmp_path / "policies"
    policies.mkdir()
    write(policies, "tenant.yaml", TENANT.format(name="t", namespaces="[t]"))
    baseline = write(policies, "cluster-baseline.yaml", text)
    for paths in ([baseline], [policies], [baseline, policies / "tenant.yaml"]):
        errors = errors_of(*paths)
        if why is None:
            assert errors == [f"{baseline}: document 1: kind: must be ClusterPolicy or TenantPolicy (got None)"]
        else:
            [error] = errors
            assert error.startswith(f"{baseline}: {why}") and error.endswith(EMPTY), error


def test_an_empty_file_is_reported_with_the_errors_of_the_other_files(tmp_path: Path) -> None:
    empty = write(tmp_path, "a.yaml", "")
    broken = write(tmp_path, "b.yaml", TENANT.format(name="b", namespaces="[b]") + "  bogus: 1\n")
    assert errors_of(empty, broken) == [f"{empty}: file is empty {EMPTY}",
                                        f"{broken}: document 1: spec.bogus: unknown field"]


def test_every_error_line_starts_with_its_file(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", TENANT.format(name="a", namespaces="[shop-*]") + "---\n" +
              TENANT.format(name="dup", namespaces="[x]"))
    b = write(tmp_path, "b.yaml", TENANT.format(name="b", namespaces="[shop-prod]") + "---\n" +
              TENANT.format(name="dup", namespaces="[y]") + "---\n" + "kind: Nonsense\n")
    c = write(tmp_path, "c.yaml", "# only a comment\n")
    errors = errors_of(a, b, c)
    assert len(errors) == 4, errors
    files = {str(p) for p in (a, b, c)}
    for line in errors:
        assert line.split(": ", 1)[0] in files, line
    assert [line.split(": ", 1)[0] for line in errors].count(str(b)) == 3
    assert any(line.startswith(f"{c}: ") for line in errors)


def test_generation_changes_with_content(tmp_path: Path) -> None:
    path = write(tmp_path, "t.yaml", TENANT.format(name="t", namespaces="[t]"))
    first = load_policies([path]).generation
    assert load_policies([path]).generation == first
    path.write_text(TENANT.format(name="t", namespaces="[u]"))
    assert load_policies([path]).generation != first


def test_quantities_as_numbers_and_labels_as_strings(tmp_path: Path) -> None:
    path = write(tmp_path, "t.yaml", TENANT.format(name="t", namespaces="[t]") +
                 "  defaults:\n    labels: {enabled: true, version: 2}\n"
                 "    resources: {limits: {cpu: 2, memory: 1Gi}}\n")
    tenant = load_policies([path]).tenants[0]
    labels = next(m for m in tenant.mutators if m.rule == "defaults.labels")
    assert labels.values == {"enabled": "true", "version": "2"}
    resources = next(m for m in tenant.mutators if m.rule == "defaults.resources")
    assert resources.limits == {"cpu": "2", "memory": "1Gi"}


def test_a_document_that_fails_to_compile_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever goes wrong past the schema is still reported against its file and document."""
    from webhook.policy import loader

    real = loader.compile_policy

    def flaky(doc, source):  # type: ignore[no-untyped-def]
        if doc.metadata.name == "b":
            raise ValueError("boom")
        return real(doc, source)

    monkeypatch.setattr(loader, "compile_policy", flaky)
    a = write(tmp_path, "a.yaml", TENANT.format(name="a", namespaces="[a]"))
    b = write(tmp_path, "b.yaml", TENANT.format(name="x", namespaces="[x]") + "---\n" +
              TENANT.format(name="b", namespaces="[b]"))
    assert errors_of(a, b) == [f"{b}: document 2: cannot be compiled: boom"]
