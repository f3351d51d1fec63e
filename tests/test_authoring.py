"""The policy author's loop: lint finds policies that cannot work as written, load errors suggest the
intended spelling, and `tenantguard schema` gives editors the schema of policy files and suites."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import GOLDEN, POLICIES, run_cli
from webhook.actions.dry_run import run as dry_run
from webhook.core.quantity import QuantityError, parse_quantity
from webhook.core.validators.boundaries import parse_image, registry_allows
from webhook.inputs.manifests import read_objects
from webhook.inputs.yamlio import load_documents
from webhook.policy import load_policies
from webhook.policy.contradictions import Layer, fill_resources, registry_entry_problem
from webhook.policy.json_schema import FIELD_DOCS, QUANTITY_PATTERN, policy_schema, suite_schema
from webhook.policy.schema import POLICY_KINDS
from webhook.policy.spelling import quantity_suggestions
from webhook.policy.suite import PolicyTestDoc
from webhook.views.memory import InMemoryClusterState

HEAD = "apiVersion: tenantguard.io/v1alpha1\n"
CLUSTER = HEAD + "kind: ClusterPolicy\nmetadata: {name: base}\nspec:\n"
TENANT = HEAD + "kind: TenantPolicy\nmetadata: {name: shop}\nspec:\n  namespaces: [shop]\n"


def lint(tmp_path: Path, text: str, *flags: str) -> tuple[int, list[str], list[str], Path]:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    result = run_cli("lint", *flags, str(path))
    return result.code, result.err.splitlines(), result.out.splitlines(), path


# --- contradictions within a policy ---

def test_default_above_the_policys_own_maximum_is_an_error(tmp_path: Path) -> None:
    code, err, out, path = lint(tmp_path, TENANT + "  defaults: {resources: {limits: {cpu: '1'}}}\n"
                                "  rules: {maxResources: {perContainer: {limits.cpu: 500m}}}\n")
    assert code == 2
    assert err == [
        f"error: {path}: document 1: spec.defaults.resources.limits.cpu: default cpu limit 1 is above the maximum "
        "500m of spec.rules.maxResources.perContainer.limits.cpu: a container that sets no cpu limit of its own "
        "gets 1 and is denied; write limits: {cpu: 500m} or less, or raise the maximum"]
    assert out == ["1 policy (0 cluster, 1 tenant): 1 error(s)"]


def test_guaranteed_qos_with_requests_unlike_limits_is_an_error(tmp_path: Path) -> None:
    code, err, _, path = lint(tmp_path, TENANT + "  defaults:\n    resources:\n"
                              "      requests: {cpu: 250m, memory: 256Mi}\n      limits: {cpu: '1', memory: 256Mi}\n"
                              "  rules: {qosClass: Guaranteed}\n")
    assert code == 2
    assert err == [
        f"error: {path}: document 1: spec.defaults.resources.requests.cpu: default cpu request 250m and limit 1 "
        "differ: a container that sets no cpu resources of its own is Burstable and is denied by spec.rules.qosClass: "
        "Guaranteed; write the same value for both: requests: {cpu: 1}, limits: {cpu: 1} (or only the limit: the "
        "request copies it)"]


def test_guaranteed_qos_with_a_request_default_and_no_limit_default(tmp_path: Path) -> None:
    code, err, _, path = lint(tmp_path, TENANT + "  defaults: {resources: {requests: {memory: 1Gi}}}\n"
                              "  rules: {qosClass: Guaranteed}\n")
    assert code == 2
    assert err == [
        f"error: {path}: document 1: spec.defaults.resources.limits.memory: default memory request 1Gi comes with no "
        "memory limit default: a container that sets no memory resources of its own is Burstable and is denied by "
        "spec.rules.qosClass: Guaranteed; write the same value for both: requests: {memory: 1Gi}, limits: "
        "{memory: 1Gi} (or only the limit: the request copies it)"]


def test_a_limit_default_copied_to_the_request_is_reported_once(tmp_path: Path) -> None:
    code, err, _, _ = lint(tmp_path, TENANT + "  defaults: {resources: {limits: {memory: 2Gi}}}\n"
                           "  rules: {maxResources: {perContainer: {memory: 1Gi}, perPod: {requests.memory: 1Gi}}}\n")
    assert code == 2
    assert len(err) == 2
    assert "spec.defaults.resources.limits.memory: default memory limit 2Gi is above the maximum 1Gi of " \
           "spec.rules.maxResources.perContainer.memory: a container that sets no memory limit" in err[0]
    assert "spec.defaults.resources.limits.memory: default memory limit 2Gi (a container without a request takes " \
           "it as its request too) is above the maximum 1Gi of spec.rules.maxResources.perPod.requests.memory: a " \
           "pod whose one container sets no memory request of its own gets 2Gi and is denied; add requests: " \
           "{memory: 1Gi} or less next to it" in err[1]


def test_warn_mode_says_warned_about(tmp_path: Path) -> None:
    _, err, _, _ = lint(tmp_path, TENANT + "  enforcement: Warn\n  defaults: {priorityClassName: low}\n"
                        "  rules: {allowedPriorityClasses: [high]}\n")
    assert err[0].endswith("spec.defaults.priorityClassName: default priorityClassName low is not in "
                           "spec.rules.allowedPriorityClasses (allowed: high): a pod that sets none gets it and is "
                           "warned about; write one of: high")


def test_scheduling_defaults_outside_the_tenants_own_allowed_sets(tmp_path: Path) -> None:
    code, err, _, path = lint(tmp_path, TENANT + """  defaults:
    nodeSelector: {pool: shared}
    affinity:
      nodeAffinity:
        requiredDuringSchedulingIgnoredDuringExecution:
          nodeSelectorTerms: [{matchExpressions: [{key: zone, operator: In, values: [a, c]}]}]
    tolerations: [{key: gpu, operator: Exists, effect: NoSchedule}]
    priorityClassName: batch
  rules:
    allowedNodeLabels: {pool: [shop], zone: [a, b]}
    allowedTolerations: [{key: dedicated}]
    allowedPriorityClasses: [shop-high, shop-low]
""")
    where = f"error: {path}: document 1"
    assert code == 2
    assert err == [
        f"{where}: spec.defaults.nodeSelector.pool: default nodeSelector pool=shared is not allowed by "
        "spec.rules.allowedNodeLabels.pool (allowed: shop): a pod that sets no pool of its own gets it and is denied; "
        "write one of: shop",
        f"{where}: spec.defaults.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution."
        "nodeSelectorTerms[0].matchExpressions[0]: default required node affinity zone In [a, c] selects c, which "
        "spec.rules.allowedNodeLabels.zone does not allow (allowed: zone In [a, b]): a pod that does not constrain "
        "zone itself gets it and is denied; write {key: zone, operator: In, values: [a, b]} or a subset",
        f"{where}: spec.defaults.tolerations[0]: default toleration {{key=gpu, operator=Exists, effect=NoSchedule}} "
        "is not allowed by spec.rules.allowedTolerations (allowed: {key=dedicated}): it is added to every pod that "
        "does not tolerate it already, so every pod is denied; allow it (add {key: gpu} to "
        "spec.rules.allowedTolerations) or remove the default",
        f"{where}: spec.defaults.priorityClassName: default priorityClassName batch is not in "
        "spec.rules.allowedPriorityClasses (allowed: shop-high, shop-low): a pod that sets none gets it and is "
        "denied; write one of: shop-high, shop-low",
    ]


def test_allowed_defaults_are_clean(tmp_path: Path) -> None:
    code, err, out, _ = lint(tmp_path, TENANT + """  defaults:
    resources: {requests: {cpu: 500m, memory: 1Gi}, limits: {cpu: 500m, memory: 1Gi}}
    nodeSelector: {"example.com/pool": shop}
    tolerations: [{key: dedicated, operator: Exists}, {key: node.kubernetes.io/not-ready, operator: Exists}]
    priorityClassName: shop-high
  rules:
    qosClass: Guaranteed
    maxResources: {perContainer: {cpu: 500m, memory: 1Gi}, perPod: {cpu: '1'}}
    allowedNodeLabels: {"example.com/pool": [shop]}
    allowedTolerations: [{key: dedicated}]
    allowedPriorityClasses: [shop-high]
    allowedRegistries: [registry.example.com/, "*.mirror.example.com", "localhost:5000/team", docker.io/library]
    podSecurity: restricted:v1.30
""", "--strict")
    assert (code, err, out) == (0, [], ["1 policy (0 cluster, 1 tenant): ok"])


# --- contradictions across the cluster and tenant layers ---

def test_cluster_default_above_a_tenant_maximum_is_reported_on_the_tenant(tmp_path: Path) -> None:
    code, err, _, path = lint(tmp_path, CLUSTER + "  defaults: {resources: {limits: {cpu: '1'}}}\n---\n" +
                              TENANT + "  rules: {maxResources: {perContainer: {limits.cpu: 500m}}}\n")
    assert code == 2
    assert err == [
        f"error: {path}: document 2: spec.defaults.resources.limits.cpu: default cpu limit 1 of ClusterPolicy base "
        f"({path}: document 1) is above the maximum 500m of spec.rules.maxResources.perContainer.limits.cpu: a "
        "container that sets no cpu limit of its own gets 1 and is denied; write limits: {cpu: 500m} or less in this "
        "policy (the tenant's default wins), or raise the maximum"]


def test_cluster_defaults_under_a_guaranteed_tenant(tmp_path: Path) -> None:
    cluster = CLUSTER + "  defaults: {resources: {requests: {cpu: 100m}, limits: {cpu: 500m}}}\n---\n"
    code, err, _, path = lint(tmp_path, cluster + TENANT + "  rules: {qosClass: Guaranteed}\n")
    assert code == 2
    assert err == [
        f"error: {path}: document 2: spec.defaults.resources: default cpu request 100m and limit 500m of ClusterPolicy "
        f"base ({path}: document 1) differ: a container that sets no cpu resources of its own is Burstable and is "
        "denied by spec.rules.qosClass: Guaranteed; write the same value for both in this policy, whose defaults "
        "win: requests: {cpu: 500m}, limits: {cpu: 500m} (or only the limit: the request copies it)"]
    # the tenant's own defaults win field by field: with requests == limits the cluster's fill nothing
    fixed = TENANT + "  defaults: {resources: {requests: {cpu: 500m}, limits: {cpu: 500m}}}\n  rules: {qosClass: " \
                     "Guaranteed}\n"
    assert lint(tmp_path, cluster + fixed)[0] == 0


def test_tenant_default_under_a_cluster_rule_is_reported_on_the_tenant(tmp_path: Path) -> None:
    code, err, _, path = lint(tmp_path, CLUSTER + "  rules: {allowedTolerations: [{key: gpu}]}\n---\n" +
                              TENANT + "  defaults: {tolerations: [{key: spot, operator: Exists}]}\n")
    assert code == 2
    assert err == [
        f"error: {path}: document 2: spec.defaults.tolerations[0]: default toleration {{key=spot, operator=Exists}} "
        f"is not allowed by spec.rules.allowedTolerations of ClusterPolicy base ({path}: document 1) (allowed: "
        "{key=gpu}): it is added to every pod that does not tolerate it already, so every pod is denied; allow it "
        f"(add {{key: spot}} to spec.rules.allowedTolerations of ClusterPolicy base ({path}: document 1)) or remove "
        "the default"]


def test_cluster_scheduling_defaults_under_a_tenants_allowed_sets(tmp_path: Path) -> None:
    code, err, _, path = lint(tmp_path, CLUSTER + "  defaults:\n    nodeSelector: {pool: shared}\n"
                              "    tolerations: [{key: spot, operator: Exists}]\n    priorityClassName: standard\n"
                              "---\n" + TENANT + "  rules:\n    allowedNodeLabels: {pool: [shop]}\n"
                              "    allowedTolerations: []\n    allowedPriorityClasses: [shop]\n")
    of = f"of ClusterPolicy base ({path}: document 1)"
    assert code == 2
    assert err == [
        f"error: {path}: document 2: spec.defaults.nodeSelector.pool: default nodeSelector pool=shared {of} is not "
        "allowed by spec.rules.allowedNodeLabels.pool (allowed: shop): a pod that sets no pool of its own gets it and "
        "is denied; write one of: shop in this policy (the tenant's default wins)",
        f"error: {path}: document 2: spec.rules.allowedTolerations: default toleration {{key=spot, operator=Exists}} "
        f"{of} is not allowed by spec.rules.allowedTolerations (allowed: none): it is added to every pod that does "
        "not tolerate it already, so every pod is denied; add {key: spot} here",
        f"error: {path}: document 2: spec.defaults.priorityClassName: default priorityClassName standard {of} is not "
        "in spec.rules.allowedPriorityClasses (allowed: shop): a pod that sets none gets it and is denied; write one "
        "of: shop in this policy (the tenant's default wins)",
    ]


def test_audit_mode_defaults_fill_nothing_so_contradict_nothing(tmp_path: Path) -> None:
    code, _, _, _ = lint(tmp_path, CLUSTER + "  enforcement: Audit\n  defaults: {resources: {limits: {cpu: '4'}}}\n"
                         "---\n" + TENANT + "  rules: {maxResources: {perContainer: {cpu: '1'}}}\n", "--strict")
    assert code == 0


# --- registries and Pod Security versions ---

def test_registries_written_as_urls_are_errors(tmp_path: Path) -> None:
    code, err, _, path = lint(tmp_path, CLUSTER + "  rules:\n    allowedRegistries: [\"https://registry.example.com/\", "
                              "registry.example.com/ok/]\n")
    assert code == 2
    assert err == [
        f"error: {path}: document 1: spec.rules.allowedRegistries[0]: 'https://registry.example.com/': https:// makes "
        "it a URL, and image names never carry a scheme, so it matches no image; write registry.example.com"]


IMAGES = ["nginx", "bitnami/redis:7", "registry.example.com/team/app:1", "registry.example.com:5000/x",
          "localhost/app", "docker.io/library/nginx@sha256:" + "a" * 64]


@pytest.mark.parametrize("entry,fixed,admits", [
    ("https://registry.example.com/", "registry.example.com", "registry.example.com/team/app:1"),
    ("http://registry.example.com/team", "registry.example.com/team", "registry.example.com/team/app:1"),
    ("bitnami", "docker.io/bitnami", "bitnami/redis:7"),
    ("nginx:latest", "docker.io/library/nginx", "nginx"),
    ("registry.example.com/team/app:1", "registry.example.com/team/app", "registry.example.com/team/app:1"),
    ("docker.io/library/nginx@sha256:abc", "docker.io/library/nginx", "nginx"),
])
def test_registry_entries_that_match_no_image(entry: str, fixed: str, admits: str) -> None:
    problem = registry_entry_problem(entry)
    assert problem is not None and problem[1] == fixed
    assert not any(registry_allows(entry, parse_image(image)) for image in IMAGES)
    assert registry_allows(fixed, parse_image(admits))


@pytest.mark.parametrize("entry", ["registry.example.com/", "registry.example.com:5000", "*", "localhost",
                                   "*.mirror.example.com", "[::1]:5000", "docker.io/library", "gcr.io/project/"])
def test_registry_entries_that_work(entry: str) -> None:
    assert registry_entry_problem(entry) is None


def test_pod_security_versions_out_of_range_are_warnings(tmp_path: Path) -> None:
    text = CLUSTER + "  rules: {podSecurity: baseline:v1.20}\n---\n" + TENANT + \
        "  rules: {podSecurity: {level: restricted, version: v1.99}}\n"
    code, err, out, path = lint(tmp_path, text)
    assert code == 0 and err == []
    assert out[:2] == [
        f"warning: {path}: document 1: spec.rules.podSecurity: version v1.20 is older than v1.22, the first Kubernetes "
        "release with Pod Security admission, so no cluster ever enforced it; write latest, or the version of your "
        "oldest cluster (v1.22 or later): baseline:v1.22",
        f"warning: {path}: document 2: spec.rules.podSecurity: version v1.99 is newer than v1.37, the newest Pod "
        "Security version this tenantguard knows: it is checked as v1.37, and what v1.99 adds is not checked; write "
        "restricted:v1.37 (or latest), or upgrade tenantguard",
    ]
    assert out[2] == "2 policies (1 cluster, 1 tenant): 2 warning(s)"
    strict = run_cli("lint", "--strict", str(path))
    assert strict.code == 2 and strict.out == "2 policies (1 cluster, 1 tenant): 2 error(s)\n"
    assert strict.err.splitlines()[0].startswith(f"error: {path}: document 1: spec.rules.podSecurity: version v1.20")


NO_SSH = """\
  rules:
    cel:
    - name: no-ssh
      validations:
      - expression: "object.spec.containers.all(c, !has(c.ports) || c.ports.all(p, p.containerPort != 22))"
        message: containers must not expose port 22
"""


def test_probe_default_on_a_port_the_tenant_refuses(tmp_path: Path) -> None:
    cluster = CLUSTER + "  defaults:\n    probes:\n      liveness: {tcpSocket: {port: 22}}\n" \
        "      readiness: {httpGet: {path: /ready, port: 8080}}\n"
    tenant = HEAD + "kind: TenantPolicy\nmetadata: {name: shop}\nspec:\n  namespaces: ['shop-*']\n" + NO_SSH
    code, err, out, path = lint(tmp_path, cluster + "---\n" + tenant)
    assert code == 2
    assert err == [
        f"error: {path}: document 1: spec.defaults.probes.liveness: the default liveness probe on port 22 is added "
        "only to containers that declare port 22, and in namespaces of TenantPolicy shop (shop-x) a pod whose "
        "container does is denied: [shop/cel/no-ssh] containers must not expose port 22; write a probe the rules "
        "allow (on the port your apps serve health checks on), give TenantPolicy shop a liveness probe default of "
        "its own (the tenant's wins), or change the rule"]  # the readiness probe on 8080 is fine
    assert out == ["2 policies (1 cluster, 1 tenant): 1 error(s)"]
    # the tenant's own default wins: the cluster's is never added there
    fixed = tenant.replace("  rules:", "  defaults: {probes: {liveness: {tcpSocket: {port: 8080}}}}\n  rules:")
    code, err, _, _ = lint(tmp_path, cluster + "---\n" + fixed)
    assert (code, err) == (0, [])


def test_probe_default_the_tenant_refuses_by_itself_is_blamed_on_that_probe_only(tmp_path: Path) -> None:
    """Two probe defaults on one port: only the one whose probe breaks Pod Security (a host) is reported; under
    Warn it is a warning."""
    text = TENANT + "  defaults:\n    probes:\n      liveness: {httpGet: {path: /h, port: 8080, host: 10.0.0.1}}\n" \
        "      readiness: {httpGet: {path: /r, port: 8080}}\n  rules: {podSecurity: baseline}\n"
    code, err, _, path = lint(tmp_path, text)
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"error: {path}: document 1: spec.defaults.probes.liveness: the default liveness probe "
                             "on port 8080 is added only to containers that declare port 8080, and in namespaces "
                             "of TenantPolicy shop (shop) a pod whose container does is denied: [shop/podSecurity] "
                             "hostProbesAndHostLifecycle: ")
    code, err, out, _ = lint(tmp_path, text.replace("spec:\n", "spec:\n  enforcement: Warn\n", 1))
    assert code == 0 and err == [] and out[0].startswith(f"warning: {path}: document 1: spec.defaults.probes.liveness:")
    assert "is warned about: [shop/podSecurity]" in out[0]


def test_probe_defaults_of_a_tenant_claiming_by_labels_are_judged_too(tmp_path: Path) -> None:
    text = HEAD + "kind: TenantPolicy\nmetadata: {name: shop}\nspec:\n  namespaceSelector: {matchLabels: {team: shop}}\n" \
        "  defaults: {probes: {startup: {tcpSocket: {port: 22}}}}\n" + NO_SSH
    code, err, _, _ = lint(tmp_path, text)
    assert code == 2 and len(err) == 1
    assert "spec.defaults.probes.startup: the default startup probe on port 22" in err[0]
    assert "in namespaces of TenantPolicy shop (shop-lint)" in err[0]


def test_shipped_policies_have_no_contradiction() -> None:
    result = run_cli("lint", "--strict", str(POLICIES))
    assert (result.code, result.err) == (0, ""), result.err


# --- the layering lint assumes is the one the mutators apply ---

RESOURCE_CASES = [
    ("  defaults: {resources: {requests: {cpu: '2'}}}\n",
     "  defaults: {resources: {requests: {memory: 128Mi}, limits: {cpu: '1', memory: 512Mi}}}\n"),
    ("  defaults: {resources: {limits: {cpu: '1'}}}\n",
     "  defaults: {resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 1Gi}}}\n"),
    ("", "  defaults: {resources: {requests: {cpu: 100m}, limits: {cpu: 200m, ephemeral-storage: 1Gi}}}\n"),
    ("  defaults: {resources: {requests: {cpu: 100m}}}\n",
     "  enforcement: Audit\n  defaults: {resources: {limits: {cpu: '4'}}}\n"),
]


@pytest.mark.parametrize("tenant,cluster", RESOURCE_CASES)
def test_fill_resources_agrees_with_the_mutators(tmp_path: Path, tenant: str, cluster: str) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(CLUSTER + cluster + "---\n" + TENANT + tenant)
    pod = tmp_path / "pod.yaml"
    pod.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\n"
                   "spec: {containers: [{name: c, image: nginx}]}\n")
    policies = load_policies([policy])
    [result] = dry_run(read_objects([str(pod)]), policies, InMemoryClusterState())
    got = result.obj["spec"]["containers"][0].get("resources", {})
    layers = [Layer(p.kind, p.name, p.source, p.document) for p in policies.tenants + policies.cluster]
    requests, limits = fill_resources([p for p in layers if p.spec.enforcement != "Audit"])
    assert got.get("requests", {}) == {r: f.value for r, f in requests.items()}
    assert got.get("limits", {}) == {r: f.value for r, f in limits.items()}


# --- did you mean: unknown fields and quantities ---

def test_typo_in_a_rule_suggests_the_field(tmp_path: Path) -> None:
    code, err, _, path = lint(tmp_path, TENANT + "  rules: {requireLimts: [cpu], zzzzz: 1}\n")
    assert code == 2
    assert err == [f"error: {path}: document 1: spec.rules.requireLimts: unknown field (did you mean requireLimits?)",
                   f"error: {path}: document 1: spec.rules.zzzzz: unknown field"]


def test_typo_in_an_inline_policy_of_a_suite_suggests_the_field(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(HEAD + "kind: PolicyTest\nspec:\n  policies:\n  - " + CLUSTER.replace("\n", "\n    ") +
                     "  defualts: {}\n  cases:\n  - object: {apiVersion: v1, kind: Pod, metadata: {name: p}}\n"
                     "    expect: {allowed: true, patch: [{op: add, path: /a, fro: /b}]}\n")
    result = run_cli("test", "--color", "never", str(suite))
    assert result.code == 2
    assert f"{suite}: document 1: spec.policies[0].spec.defualts: unknown field (did you mean defaults?)" in result.out
    assert f"{suite}: document 1: spec.cases[0].expect.patch[0].fro: unknown field (did you mean from?)" in result.out


def test_invalid_quantity_suggests_the_spelling(tmp_path: Path) -> None:
    code, err, _, path = lint(tmp_path, TENANT + "  defaults: {resources: {limits: {memory: 256MB}}}\n")
    assert code == 2
    assert err == [f"error: {path}: document 1: spec.defaults.resources.limits.memory: invalid quantity '256MB': "
                   "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' "
                   "(did you mean 256M or 256Mi?)"]


@pytest.mark.parametrize("written,suggested", [
    ("256MB", ["256M", "256Mi"]),
    ("1.5 Gi", ["1.5Gi"]),
    ("500mi", ["500Mi"]),
    ("2GiB", ["2Gi"]),
    ("1gb", ["1G", "1Gi"]),
    ("100K", ["100k", "100Ki"]),
    ("1,5Gi", ["1.5Gi"]),
    ("2 cores", ["2"]),
    ("250 millicores", ["250m"]),
    ("512B", ["512"]),
    ("500m", []),  # milli: valid as written, never "corrected"
    ("5e", []),
    ("lots", []),
])
def test_quantity_suggestions(written: str, suggested: list[str]) -> None:
    assert quantity_suggestions(written) == suggested
    for text in suggested:
        parse_quantity(text)


# --- tenantguard schema ---

jsonschema = pytest.importorskip("jsonschema")


def printed_schema(*flags: str) -> dict[str, Any]:
    result = run_cli("schema", *flags)
    assert result.code == 0, result.err
    document: dict[str, Any] = json.loads(result.out)
    jsonschema.Draft202012Validator.check_schema(document)
    return document


def as_editor_sees(doc: Any) -> Any:
    """YAML as a language server reads it: dates (expires: 2027-06-30) are strings."""
    return json.loads(json.dumps(doc, default=str))


def test_printed_policy_schema_validates_the_shipped_policies() -> None:
    document = printed_schema()
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["oneOf"] == [{"$ref": "#/$defs/TenantPolicyDoc"}, {"$ref": "#/$defs/ClusterPolicyDoc"}]
    validator = jsonschema.Draft202012Validator(document)
    docs = [d for path in sorted(POLICIES.glob("*.yaml")) for d in load_documents(path.read_text(), str(path))]
    assert len(docs) >= 6
    for doc in docs:
        assert not list(validator.iter_errors(as_editor_sees(doc))), doc["metadata"]["name"]


def test_printed_suite_schema_validates_the_golden_suites() -> None:
    validator = jsonschema.Draft202012Validator(printed_schema("--kind", "PolicyTest"))
    suites = sorted(GOLDEN.rglob("*.yaml"))
    assert suites
    for path in suites:
        [doc] = load_documents(path.read_text(), str(path))
        assert not list(validator.iter_errors(as_editor_sees(doc))), path


def test_schema_refuses_typos_and_wrong_values() -> None:
    validator = jsonschema.Draft202012Validator(printed_schema())
    ok = {"apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": "shop"},
          "spec": {"namespaces": ["shop"], "rules": {"requireLimits": ["cpu"], "podSecurity": "restricted:v1.30"},
                   "defaults": {"securityContext": "restricted", "resources": {"limits": {"cpu": 1, "memory": "1Gi"}},
                                "labels": {"tier": 1}}}}
    assert validator.is_valid(ok)
    for broken in (
        {**ok, "spec": {**ok["spec"], "rules": {"requireLimts": ["cpu"]}}},
        {**ok, "spec": {**ok["spec"], "defualts": {}}},
        {**ok, "spec": {**ok["spec"], "defaults": {"resources": {"limits": {"memory": "256MB"}}}}},
        {**ok, "spec": {**ok["spec"], "rules": {"podSecurity": "strict"}}},
        {**ok, "kind": "PolicyTest"},
        {**ok, "kind": "ClusterPolicy"},  # a ClusterPolicy claims no namespaces
    ):
        assert not validator.is_valid(broken), broken
    suite = jsonschema.Draft202012Validator(printed_schema("--kind", "PolicyTest"))
    case = {"object": {"kind": "Pod"}, "expect": {"allowed": True}}
    assert suite.is_valid({"kind": "PolicyTest", "spec": {"policies": ["p.yaml", ok], "cases": [case]}})
    assert not suite.is_valid({"kind": "PolicyTest", "spec": {"policies": [ok], "cases": [{**case, "expectt": {}}]}})
    inline_typo = {**ok, "spec": {**ok["spec"], "defualts": {}}}
    assert not suite.is_valid({"kind": "PolicyTest", "spec": {"policies": [inline_typo], "cases": [case]}})


def test_schema_describes_fields_and_writes_a_file(tmp_path: Path) -> None:
    out = tmp_path / "policy.schema.json"
    result = run_cli("schema", "-o", str(out))
    assert result.code == 0 and result.out == "" and result.err == f"wrote {out}\n"
    document = json.loads(out.read_text())
    assert document == printed_schema()
    rules = document["$defs"]["Rules"]["properties"]
    assert rules["requireLimits"]["description"] == "Resources every container must limit."
    assert "title" not in rules["requireLimits"]
    assert document["$defs"]["TenantPolicySpec"]["properties"]["defaults"]["description"].startswith("Mutations")
    assert printed_schema("--kind", "ClusterPolicy")["$ref"] == "#/$defs/ClusterPolicyDoc"
    assert run_cli("schema", "-o", str(tmp_path / "missing" / "x.json")).code == 2


def test_field_docs_name_existing_fields() -> None:
    models: dict[str, Any] = {}
    stack: list[Any] = [*POLICY_KINDS.values(), PolicyTestDoc]
    while stack:
        model = stack.pop()
        if model.__name__ in models:
            continue
        models[model.__name__] = model
        stack.extend(m for m in model.__mro__ if hasattr(m, "model_fields") and m.__name__ not in models)
        for info in model.model_fields.values():
            stack.extend(_models_in(info.annotation))
    for key in FIELD_DOCS:
        model_name, _, field = key.partition(".")
        assert model_name in models and field in models[model_name].model_fields, key


def _models_in(annotation: Any) -> list[Any]:
    from typing import get_args

    from pydantic import BaseModel

    found = [annotation] if isinstance(annotation, type) and issubclass(annotation, BaseModel) else []
    for arg in get_args(annotation):
        found.extend(_models_in(arg))
    return found


def _parses(text: str) -> bool:
    try:
        parse_quantity(text)
    except QuantityError:
        return False
    return True


@given(st.from_regex(r"[+-]?\.?[0-9]", fullmatch=True), st.text(alphabet="0123456789.+-eEinumkKMGTPB ", max_size=6))
def test_quantity_pattern_agrees_with_the_parser(start: str, rest: str) -> None:
    import re

    text = start + rest
    assert bool(re.search(QUANTITY_PATTERN, text)) == _parses(text), text


def test_policy_and_suite_schemas_are_stable() -> None:
    assert policy_schema() == policy_schema() and suite_schema() == suite_schema()
    assert run_cli("schema").out == run_cli("schema").out
