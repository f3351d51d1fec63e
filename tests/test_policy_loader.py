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
    assert errors_of(path) == [f"{path}: document 2: spec.defualts: unknown field (did you mean defaults?)"]


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


# --- label and annotation keys and values: the API server's own rules and messages ---

NAME_PART_RULE = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                  "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
                  "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
PREFIX_RULE = ("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
               "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
               "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
VALUE_RULE = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
              "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
              "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
LONG = "a" * 64


def cluster_policy(tmp_path: Path, spec: str) -> Path:
    return write(tmp_path, "p.yaml", "apiVersion: tenantguard.io/v1alpha1\nkind: ClusterPolicy\n"
                 "metadata: {name: c}\nspec:\n" + spec)


@pytest.mark.parametrize("spec,expected", [
    ('  defaults: {labels: {"we~ird/key": x}}\n',
     f"spec.defaults.labels[\"we~ird/key\"]: invalid label key 'we~ird/key': {PREFIX_RULE}"),
    ('  defaults: {labels: {"ключ": x}}\n', f"spec.defaults.labels[\"ключ\"]: invalid label key 'ключ': {NAME_PART_RULE}"),
    (f"  defaults: {{labels: {{{LONG}: x}}}}\n",
     f"spec.defaults.labels.{LONG}: invalid label key '{LONG}': name part must be no more than 63 characters"),
    ('  defaults: {labels: {"Example.com/team": x}}\n',
     f"spec.defaults.labels[\"Example.com/team\"]: invalid label key 'Example.com/team': {PREFIX_RULE}"),
    ('  defaults: {labels: {team: "a b"}}\n', f"spec.defaults.labels.team: invalid label value 'a b': {VALUE_RULE}"),
    (f"  defaults: {{labels: {{team: {LONG}}}}}\n",
     f"spec.defaults.labels.team: invalid label value '{LONG}': must be no more than 63 characters"),
    ('  defaults: {labels: {"a/b/c": x}}\n',
     ("spec.defaults.labels[\"a/b/c\"]: invalid label key 'a/b/c': a qualified name must consist of alphanumeric "
      "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or "
      "'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an "
      "optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")),
    ('  defaults: {labels: {"/team": x}}\n',
     "spec.defaults.labels[\"/team\"]: invalid label key '/team': prefix part must be non-empty"),
    ('  defaults: {labels: {"example.com/": x}}\n',
     f"spec.defaults.labels[\"example.com/\"]: invalid label key 'example.com/': name part must be non-empty; {NAME_PART_RULE}"),
    (f'  defaults: {{labels: {{"{"a" * 254}/x": y}}}}\n',
     f"spec.defaults.labels[\"{'a' * 254}/x\"]: invalid label key '{'a' * 254}/x': prefix part must be no more than 253 characters"),
    ('  defaults: {labels: {"team\\n": x}}\n',
     f"spec.defaults.labels[\"team\\n\"]: invalid label key 'team\\n': {NAME_PART_RULE}"),
    ('  defaults: {labels: {team: "-x"}}\n', f"spec.defaults.labels.team: invalid label value '-x': {VALUE_RULE}"),
    ('  defaults: {annotations: {"bad key": x}}\n',
     f"spec.defaults.annotations[\"bad key\"]: invalid annotation key 'bad key': {NAME_PART_RULE}"),
    ('  defaults: {annotations: {"ex_ample.com/x": y}}\n',
     "spec.defaults.annotations[\"ex_ample.com/x\"]: invalid annotation key 'ex_ample.com/x': prefix part a lowercase"),
    ('  defaults: {nodeSelector: {"": x}}\n',
     f"spec.defaults.nodeSelector[\"\"]: invalid label key '': name part must be non-empty; {NAME_PART_RULE}"),
    ('  defaults: {nodeSelector: {zone: "eu west"}}\n', "spec.defaults.nodeSelector.zone: invalid label value 'eu west'"),
    ('  defaults: {tolerations: [{key: "gpu type", operator: Exists}]}\n',
     f"spec.defaults.tolerations[0].key: invalid toleration key 'gpu type': {NAME_PART_RULE}"),
    ('  defaults: {tolerations: [{key: gpu, value: "a100 80g"}]}\n',
     f"spec.defaults.tolerations[0].value: invalid label value 'a100 80g': {VALUE_RULE}"),
    ('  defaults: {topologySpreadConstraints: [{maxSkew: 1, topologyKey: "Zone/x", whenUnsatisfiable: DoNotSchedule}]}\n',
     f"spec.defaults.topologySpreadConstraints[0].topologyKey: invalid label key 'Zone/x': {PREFIX_RULE}"),
    ('  rules: {allowedNodeLabels: {"pool~": [a]}}\n', "spec.rules.allowedNodeLabels[\"pool~\"]: invalid label key 'pool~'"),
    ('  rules: {allowedNodeLabels: {pool: [ok, "not ok"]}}\n',
     "spec.rules.allowedNodeLabels.pool[1]: invalid label value 'not ok'"),
    ('  rules: {requiredNodeLabels: ["Edge.io/capability"]}\n',
     f"spec.rules.requiredNodeLabels[0]: invalid label key 'Edge.io/capability': {PREFIX_RULE}"),
    ('  rules: {allowedTolerations: [{key: "gpu~*"}]}\n',
     ("spec.rules.allowedTolerations[0].key: invalid toleration key pattern 'gpu~*': a label key or a glob over label "
      "keys may use only")),
    ('  rules: {allowedTolerations: [{key: "gpu type"}]}\n',
     "spec.rules.allowedTolerations[0].key: invalid toleration key 'gpu type'"),
])
def test_label_and_annotation_rules(tmp_path: Path, spec: str, expected: str) -> None:
    path = cluster_policy(tmp_path, spec)
    [error] = errors_of(path)
    assert error.startswith(f"{path}: document 1: {expected}"), error


@pytest.mark.parametrize("selector,expected", [
    ('{matchLabels: {"Team.Example.com/x": a}}',
     f"spec.namespaceSelector.matchLabels[\"Team.Example.com/x\"]: invalid label key 'Team.Example.com/x': {PREFIX_RULE}"),
    ("{matchLabels: {team: 'a b'}}", f"spec.namespaceSelector.matchLabels.team: invalid label value 'a b': {VALUE_RULE}"),
    ("{matchExpressions: [{key: 'we~ird', operator: Exists}]}",
     f"spec.namespaceSelector.matchExpressions[0].key: invalid label key 'we~ird': {NAME_PART_RULE}"),
    ("{matchExpressions: [{key: team, operator: In, values: [ok, 'has space']}]}",
     f"spec.namespaceSelector.matchExpressions[0].values[1]: invalid label value 'has space': {VALUE_RULE}"),
])
def test_namespace_selector_keys_and_values(tmp_path: Path, selector: str, expected: str) -> None:
    path = write(tmp_path, "t.yaml", "apiVersion: tenantguard.io/v1alpha1\nkind: TenantPolicy\nmetadata: {name: t}\n"
                 f"spec:\n  namespaceSelector: {selector}\n")
    [error] = errors_of(path)
    assert error == f"{path}: document 1: {expected}"


def test_every_bad_key_and_value_is_reported(tmp_path: Path) -> None:
    path = cluster_policy(tmp_path, '  defaults: {labels: {"a b": "c d", ok: "e f"}}\n'
                          '  rules: {requiredNodeLabels: [ok, "x y"]}\n')
    errors = errors_of(path)
    assert [e.split(": invalid")[0] for e in errors] == [
        f'{path}: document 1: spec.defaults.labels["a b"]', f'{path}: document 1: spec.defaults.labels["a b"]',
        f"{path}: document 1: spec.defaults.labels.ok", f"{path}: document 1: spec.rules.requiredNodeLabels[1]",
    ]


def test_policy_metadata_labels_and_annotations_follow_the_same_rules(tmp_path: Path) -> None:
    path = write(tmp_path, "m.yaml", "apiVersion: tenantguard.io/v1alpha1\nkind: ClusterPolicy\nmetadata:\n"
                 "  name: c\n  labels: {'owner team': x}\n  annotations: {'-x': y}\n")
    assert [e.split(": invalid")[0] for e in errors_of(path)] == [
        f'{path}: document 1: metadata.labels["owner team"]', f'{path}: document 1: metadata.annotations.-x']


def test_annotations_total_size_limit(tmp_path: Path) -> None:
    value = "v" * (256 * 1024 - len("note"))  # keys and values together: exactly 256 KiB
    ok = cluster_policy(tmp_path, f"  defaults: {{annotations: {{note: {value}}}}}\n")
    assert load_policies([ok]).cluster[0].name == "c"
    too_big = cluster_policy(tmp_path, f"  defaults: {{annotations: {{note: {value}é}}}}\n")  # é is 2 bytes
    [error] = errors_of(too_big)
    assert error == (f"{too_big}: document 1: spec.defaults.annotations: annotations size 262146 is larger than limit "
                     "262144 (keys and values together may take at most 256 KiB)")


def test_valid_keys_and_values_load(tmp_path: Path) -> None:
    path = write(tmp_path, "ok.yaml", f"""apiVersion: tenantguard.io/v1alpha1
kind: TenantPolicy
metadata:
  name: t
  labels: {{app.kubernetes.io/part-of: tenantguard}}
  annotations: {{Example.COM/Owner: "Platform Team <platform@example.com>"}}
spec:
  namespaces: [t]
  namespaceSelector:
    matchLabels: {{tenantguard.io/tenant: t, "{'a' * 63}": "{'b' * 63}"}}
    matchExpressions: [{{key: Tier_1.x-y, operator: In, values: ["", A-b_c.9]}}]
  defaults:
    labels: {{tenant: t, version: 1.0, enabled: true, empty: ""}}
    annotations: {{"note": "any string at all: spaces, ünïcödé, / and ~", "example.com/n": 3}}
    nodeSelector: {{topology.kubernetes.io/zone: eu-west-1a}}
    tolerations: [{{key: nvidia.com/gpu, operator: Exists}}, {{operator: Exists}}, {{key: pool, value: ""}}]
  rules:
    allowedNodeLabels: {{pool: [a, b]}}
    requiredNodeLabels: [example.com/capability]
    allowedTolerations: [{{key: "nvidia.com/*"}}, {{key: "pool-[ab]?"}}, {{key: dedicated, value: ml}}]
""")
    [tenant] = load_policies([path]).tenants
    labels = tenant.document.defaults.labels
    assert labels == {"tenant": "t", "version": "1.0", "enabled": "true", "empty": ""}


@pytest.mark.parametrize("directory", ["policies", "charts/tenantguard/policies", "charts/tenantguard/starter"])
def test_shipped_policies_load(directory: str) -> None:
    root = Path(__file__).resolve().parent.parent
    assert load_policies([root / directory]).generation


from hypothesis import given, settings
from hypothesis import strategies as st

_PATTERNS = st.lists(st.text("ab-*?", min_size=1, max_size=4).filter(lambda p: p[0] not in "-" and p[-1] != "-"),
                     min_size=1, max_size=3)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PATTERNS, min_size=2, max_size=5))
def test_the_indexed_overlap_check_finds_exactly_the_pairwise_clashes(claims: list[list[str]]) -> None:
    """Every pair of tenants compared, as a reference, against the index by literal start."""
    from webhook.policy import loader, schema

    tenants = []
    for i, patterns in enumerate(claims):
        doc = schema.TenantPolicyDoc.model_validate({"apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy",
                                                     "metadata": {"name": f"t{i}"},
                                                     "spec": {"namespaces": patterns}})
        tenants.append((doc, loader.SourceDoc({}, f"t{i}.yaml", 1)))
    expected = []
    for i, (a, a_src) in enumerate(tenants):
        for b, b_src in tenants[i + 1:]:
            for pa in a.spec.namespaces:
                for pb in b.spec.namespaces:
                    if loader._clashes(pa, pb):
                        shown = pb if pa == pb else f"{pb!r} overlaps {pa!r}"
                        expected.append(f"{b_src.source}: document 1: spec.namespaces: {shown}: namespace already "
                                        f"claimed by TenantPolicy {a.metadata.name} ({a_src.source}: document 1); "
                                        "a namespace belongs to one tenant")
    assert loader._namespace_conflicts(tenants) == expected


@pytest.mark.parametrize("spec,expected", [
    ("  defualts: {}\n", "spec.defualts: unknown field (did you mean defaults?)"),
    ("  Rules: {}\n", "spec.Rules: unknown field (did you mean rules?)"),
    ("  rules: {requireLimts: [cpu]}\n", "spec.rules.requireLimts: unknown field (did you mean requireLimits?)"),
    ("  rules: {networkIsolation: {defaultDeni: [Egress]}}\n",
     "spec.rules.networkIsolation.defaultDeni: unknown field (did you mean defaultDeny?)"),
    ("  defaults: {tolerations: [{ky: a, operator: Exists}]}\n",
     "spec.defaults.tolerations[0].ky: unknown field (did you mean key?)"),
    ("  defaults: {securityContext: {pod: {runAsUsr: 1000}}}\n",
     "spec.defaults.securityContext.pod.runAsUsr: unknown field (did you mean runAsUser?)"),
    ("  bogus: 1\n", "spec.bogus: unknown field"),
    ("  defaults: {resources: {requests: {memory: 500mi}}}\n",
     "spec.defaults.resources.requests.memory: invalid quantity '500mi': unable to parse quantity's suffix "
     "(did you mean 500Mi?)"),
    ("  quota: {perNamespace: {requests.memory: 8 Gi}}\n",
     "spec.quota.perNamespace[\"requests.memory\"]: invalid quantity '8 Gi': quantities must match the "
     "regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' (did you mean 8Gi?)"),
])
def test_load_errors_suggest_what_was_meant(tmp_path: Path, spec: str, expected: str) -> None:
    path = write(tmp_path, "p.yaml", "apiVersion: tenantguard.io/v1alpha1\nkind: ClusterPolicy\n"
                 "metadata: {name: c}\nspec:\n" + spec)
    assert errors_of(path) == [f"{path}: document 1: {expected}"]
