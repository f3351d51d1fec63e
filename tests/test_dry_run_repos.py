"""`tenantguard dry-run` over a real repository: what is no object is skipped with a note, what no rule
judges is reported skipped with the reason, pod templates of other kinds are judged where the policies
say they are, every finding carries its enforcement, and `-o manifests` prints the mutated objects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonpatch
import pytest

from tests.conftest import run_cli
from webhook.core.decision import Status, Violation
from webhook.core.engine import evaluate
from webhook.core.plan import MAIN_ONLY, CompiledPolicy, Enforcement, Exemption, PolicySet, ValidationContext
from webhook.core.request import from_manifest
from webhook.core.workloads import locate_pod
from webhook.inputs.yamlio import dump_all, load_documents
from webhook.policy.loader import SourceDoc, build_policy_set
from webhook.views.memory import InMemoryClusterState

ROLLOUTS = {"kind": "Rollout", "group": "argoproj.io", "path": "spec.template"}
KNATIVE = {"kind": "Service", "group": "serving.knative.dev", "path": "spec.template"}


def cluster_policy(name: str = "baseline", **spec: Any) -> dict[str, Any]:
    spec.setdefault("defaults", {"labels": {"team": "shop"}})
    spec.setdefault("rules", {"podSecurity": "baseline"})
    return {"apiVersion": "tenantguard.io/v1alpha1", "kind": "ClusterPolicy", "metadata": {"name": name},
            "spec": spec}


def container(**extra: Any) -> dict[str, Any]:
    return {"name": "app", "image": "nginx", **extra}


def rollout(name: str = "canary", privileged: bool = True) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": name, "namespace": "shop"},
            "spec": {"replicas": 2, "strategy": {"canary": {"steps": [{"setWeight": 20}]}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [container(securityContext={"privileged": privileged})]}}}}


def knative_service() -> dict[str, Any]:
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "hello", "namespace": "shop"},
            "spec": {"template": {"spec": {"containers": [{"image": "ghcr.io/knative/helloworld-go",
                                                           "securityContext": {"privileged": True}}]}}}}


def pod(name: str = "web", namespace: str | None = "shop", **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": [container()], **spec}}


CONFIG_MAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "shop"},
              "data": {"mode": "fast"}}
CORE_SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}
POLICY_TEST = {"apiVersion": "tenantguard.io/v1alpha1", "kind": "PolicyTest", "metadata": {"name": "suite"},
               "spec": {"policies": ["../policies"], "cases": []}}


def write(path: Path, *docs: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_all(list(docs)))
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An application repository as it is found: kustomize, Helm, tests, CI, and the manifests."""
    root = tmp_path / "repo"
    write(root / "kustomization.yaml", {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                                        "resources": ["configmap.yaml", "rollout.yaml"]})
    write(root / "configmap.yaml", CONFIG_MAP)
    write(root / "rollout.yaml", rollout())
    write(root / "pod.yaml", pod())
    write(root / "tests" / "suite.yaml", POLICY_TEST)
    write(root / "policies" / "extra.yaml", cluster_policy("extra", rules={"requireLimits": ["cpu"]}))
    write(root / "chart" / "Chart.yaml", {"apiVersion": "v2", "name": "shop", "version": "0.1.0"})
    write(root / "chart" / "values.yaml", {"replicaCount": 2, "image": {"repository": "nginx"}})
    (root / "chart" / "templates").mkdir()
    (root / "chart" / "templates" / "deployment.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n"
        "{{- if .Values.labels }}\n  labels: {{ toYaml .Values.labels | nindent 4 }}\n{{- end }}\n")
    write(root / "ci" / "pipeline.yml", {"stages": ["test", "deploy"], "test": {"script": ["make test"]}})
    return root


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    return write(tmp_path / "policies.yaml", cluster_policy(podTemplates=[ROLLOUTS]))


@pytest.fixture
def plain_policies(tmp_path: Path) -> Path:
    return write(tmp_path / "plain.yaml", cluster_policy())


def by_kind(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["kind"]: item for item in doc["results"]}


# --- a repository folder ---------------------------------------------------------------------------------

def test_a_repository_folder_judges_its_objects_and_notes_the_rest(repo: Path, policies: Path) -> None:
    result = run_cli("dry-run", "-p", str(policies), "-o", "json", str(repo))
    assert result.code == 1, result.err  # the privileged Rollout is denied
    assert [(r["kind"], r["name"]) for r in result.json()["results"]] == [
        ("ConfigMap", "settings"), ("Pod", "web"), ("Rollout", "canary")]
    notes = [line for line in result.err.splitlines() if line.startswith("note: ")]
    assert notes == [  # in the order of the files (sorted, recursively)
        f"note: {repo}/chart/Chart.yaml: document 1: not a Kubernetes object (Helm chart metadata); skipped",
        f"note: {repo}/chart/templates/deployment.yaml: a Helm chart template, not YAML until rendered "
        "(helm template ... | tenantguard dry-run -); skipped",
        f"note: {repo}/chart/values.yaml: document 1: not a Kubernetes object (Helm values); skipped",
        f"note: {repo}/ci/pipeline.yml: document 1: not a Kubernetes object (no apiVersion or kind); skipped",
        f"note: {repo}/kustomization.yaml: document 1: not a Kubernetes object (kustomization); skipped",
        f"note: {repo}/policies/extra.yaml: document 1: not a Kubernetes object (tenantguard ClusterPolicy; "
        "policies are read with --policies); skipped",
        f"note: {repo}/tests/suite.yaml: document 1: not a Kubernetes object (tenantguard PolicyTest; run it "
        "with tenantguard test); skipped",
    ]
    assert "warning" not in result.err  # files, every object names its namespace


def test_the_rollout_is_judged_through_the_template_the_policy_names(repo: Path, policies: Path) -> None:
    items = by_kind(run_cli("dry-run", "-p", str(policies), "-o", "json", str(repo)).json())
    rollout_item = items["Rollout"]
    assert rollout_item["allowed"] is False and "skipped" not in rollout_item
    [finding] = rollout_item["violations"]
    assert (finding["policy"], finding["rule"], finding["check"], finding["enforcement"]) == \
        ("baseline", "podSecurity", "privileged", "Enforce")
    assert finding["field"] == "spec.template.spec.containers[0].securityContext.privileged"
    # the patch points inside the template, and rebuilds the printed object
    assert rollout_item["patch"] == [{"op": "add", "path": "/spec/template/metadata/labels/team", "value": "shop"}]
    assert jsonpatch.apply_patch(rollout(), rollout_item["patch"]) == rollout_item["object"]


def test_without_pod_templates_the_rollout_is_skipped_saying_why(repo: Path, plain_policies: Path) -> None:
    result = run_cli("dry-run", "-p", str(plain_policies), "-o", "json", str(repo))
    assert result.code == 0, result.out
    item = by_kind(result.json())["Rollout"]
    assert item["allowed"] is True and item["patch"] == [] and item["violations"] == []
    assert item["skipped"] == ("Rollout (argoproj.io): no spec.podTemplates entry names where its pod template is "
                               "(it looks like spec.template; to judge it, add to a policy's spec: podTemplates: "
                               "[{kind: Rollout, group: argoproj.io, path: spec.template}])")
    table = run_cli("dry-run", "-p", str(plain_policies), "--color", "never", str(repo)).out
    assert "SKIPPED  Rollout shop/canary\n    skipped: Rollout (argoproj.io): no spec.podTemplates entry" in table


def test_a_config_map_is_skipped_not_allowed(repo: Path, policies: Path) -> None:
    doc = run_cli("dry-run", "-p", str(policies), "-o", "json", str(repo)).json()
    item = by_kind(doc)["ConfigMap"]
    assert item["allowed"] is True
    assert item["skipped"] == "ConfigMap: not a pod or pod template; no rule judges this kind"
    assert doc["summary"]["skipped"] == 1 and doc["summary"]["allowed"] + doc["summary"]["denied"] == 3
    table = run_cli("dry-run", "-p", str(policies), "--color", "never", str(repo)).out
    assert "SKIPPED  ConfigMap shop/settings\n    skipped: ConfigMap: not a pod or pod template" in table
    assert "3 objects: 2 allowed (1 skipped), 1 denied; findings: 1 Enforce, 0 Warn, 0 Audit" in table


def test_invalid_yaml_in_a_repository_is_still_an_error(repo: Path, policies: Path) -> None:
    (repo / "broken.yaml").write_text("apiVersion: v1\nkind: [Pod\n")
    result = run_cli("dry-run", "-p", str(policies), str(repo))
    assert result.code == 2 and f"{repo}/broken.yaml: line" in result.err and result.out == ""


def test_a_chart_template_named_by_itself_is_read_as_yaml(repo: Path, policies: Path) -> None:
    """Only a directory walk knows the file sits in a chart: named directly, it is read, and fails as YAML."""
    result = run_cli("dry-run", "-p", str(policies), str(repo / "chart" / "templates" / "deployment.yaml"))
    assert result.code == 2 and "deployment.yaml" in result.err


def test_half_an_object_stays_an_error_in_a_directory(repo: Path, policies: Path) -> None:
    write(repo / "typo.yaml", {"apiVersion": "v1", "knd": "Pod", "metadata": {"name": "x"}})
    result = run_cli("dry-run", "-p", str(policies), str(repo))
    assert result.code == 2 and f"{repo}/typo.yaml: document 1: kind: required field is missing" in result.err


def test_cluster_state_files_still_hold_only_objects(tmp_path: Path, policies: Path) -> None:
    state = write(tmp_path / "state" / "kustomization.yaml", {"resources": ["a.yaml"]})
    result = run_cli("dry-run", "-p", str(policies), "--cluster-state", str(state), "-", stdin=dump_all([pod()]))
    assert result.code == 2 and "kind: required field is missing" in result.err


# --- pod templates of other kinds --------------------------------------------------------------------------

def test_a_knative_service_is_told_apart_from_the_core_service(tmp_path: Path) -> None:
    with_knative = write(tmp_path / "p.yaml", cluster_policy(podTemplates=[KNATIVE]))
    f = write(tmp_path / "in.yaml", knative_service(), CORE_SERVICE)
    result = run_cli("dry-run", "-p", str(with_knative), "-o", "json", str(f))
    assert result.code == 1
    knative, core = result.json()["results"]
    assert knative["apiVersion"] == "serving.knative.dev/v1" and not knative["allowed"]
    assert knative["violations"][0]["field"] == "spec.template.spec.containers[0].securityContext.privileged"
    assert {"op": "add", "path": "/spec/template/metadata", "value": {"labels": {"team": "shop"}}} in knative["patch"]
    assert core["allowed"] and core["skipped"] == "Service: not a pod or pod template; no rule judges this kind"
    without = write(tmp_path / "q.yaml", cluster_policy())
    knative, _ = run_cli("dry-run", "-p", str(without), "-o", "json", str(f)).json()["results"]
    assert knative["skipped"] == ("Service (serving.knative.dev): no spec.podTemplates entry names where its pod "
                                  "template is (it looks like spec.template; to judge it, add to a policy's spec: "
                                  "podTemplates: [{kind: Service, group: serving.knative.dev, path: spec.template}])")


def test_a_pod_templates_entry_whose_path_holds_nothing_says_so() -> None:
    ps = build_policy_set([SourceDoc(cluster_policy(podTemplates=[ROLLOUTS]), "p", 1)])
    by_ref = rollout()
    by_ref["spec"] = {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}}
    d = evaluate(from_manifest(by_ref), ps, InMemoryClusterState())
    assert d.allowed and d.skipped == ("Rollout (argoproj.io): no pod template at spec.template (where "
                                       "spec.podTemplates says it is)")


def test_pod_templates_are_the_union_of_every_policy() -> None:
    ps = build_policy_set([SourceDoc(cluster_policy("a", podTemplates=[ROLLOUTS]), "p", 1),
                           SourceDoc(cluster_policy("b", podTemplates=[KNATIVE, ROLLOUTS]), "p", 2)])
    assert ps.pod_templates == (("argoproj.io", "Rollout", ("spec", "template")),
                                ("serving.knative.dev", "Service", ("spec", "template")))
    target = locate_pod(rollout(), ps.pod_templates)
    assert target is not None and target.prefix == ("spec", "template") and target.kind == "Rollout"
    assert locate_pod(rollout()) is None  # without the policies' locations, a Rollout holds no pod we know of
    wrong_group = {**rollout(), "apiVersion": "example.com/v1"}
    assert locate_pod(wrong_group, ps.pod_templates) is None


def test_the_original_rollout_is_never_written_to() -> None:
    ps = build_policy_set([SourceDoc(cluster_policy(podTemplates=[ROLLOUTS]), "p", 1)])
    original = rollout(privileged=False)
    before = json.loads(json.dumps(original))
    d = evaluate(from_manifest(original), ps, InMemoryClusterState())
    assert d.allowed and d.patch and d.mutated is not None
    assert d.mutated["spec"]["template"]["metadata"]["labels"] == {"app": "canary", "team": "shop"}
    assert original == before


@pytest.mark.parametrize("entry,needle", [
    ({"kind": "Deployment", "group": "apps", "path": "spec.template"},
     "spec.podTemplates[0]: Deployment (apps) is judged through spec.template already; name other kinds here"),
    ({"kind": "Rollout", "group": "argoproj.io", "path": "spec.containers[0]"},
     "spec.podTemplates[0].path: 'spec.containers[0]' is not a field path such as spec.template"),
    ({"kind": "rollout", "group": "argoproj.io", "path": "spec.template"},
     "spec.podTemplates[0].kind: 'rollout' is not a kind"),
    ({"kind": "Rollout", "group": "Argo_Proj", "path": "spec.template"},
     "spec.podTemplates[0].group: 'Argo_Proj' is not an API group"),
    ({"kind": "Rollout", "path": "spec.template"}, "spec.podTemplates[0].group"),
])
def test_bad_pod_templates_entries_are_load_errors(tmp_path: Path, entry: dict[str, Any], needle: str) -> None:
    bad = write(tmp_path / "p.yaml", cluster_policy(podTemplates=[entry]))
    result = run_cli("dry-run", "-p", str(bad), "-", stdin=dump_all([pod()]))
    assert result.code == 2 and f"{bad}: document 1: {needle}" in result.err, result.err


def test_one_path_per_kind_in_a_policy(tmp_path: Path) -> None:
    bad = write(tmp_path / "p.yaml", cluster_policy(podTemplates=[ROLLOUTS, {**ROLLOUTS, "path": "spec.pod"}]))
    result = run_cli("dry-run", "-p", str(bad), "-", stdin=dump_all([pod()]))
    assert result.code == 2
    assert "Rollout (argoproj.io) is named twice, at spec.template and at spec.pod; one path per kind" in result.err


# --- skipped: derived from what ran, not from a list of kinds ------------------------------------------------

class _NamesServices:
    """A validator naming Service (as a CEL rule naming a kind does): it judges Services."""

    rule = "servicePorts"
    kinds = frozenset({"Service"})
    subresources = MAIN_ONLY

    def reads_cluster(self, obj: Any) -> bool:
        return False

    def validate(self, ctx: ValidationContext) -> Any:
        ports = ctx.obj.get("spec", {}).get("ports", [])
        if any(p.get("port") == 80 for p in ports):
            yield Violation(ctx.policy.name, self.rule, "port 80 is reserved", enforcement="Audit")


def test_an_object_a_rule_names_is_judged_not_skipped() -> None:
    audit = CompiledPolicy("services", "ClusterPolicy", "inline", enforcement=Enforcement.AUDIT,
                           validators=(_NamesServices(),))
    ps = PolicySet(cluster=(audit,))
    d = evaluate(from_manifest(CORE_SERVICE), ps, InMemoryClusterState())
    assert d.skipped is None and d.allowed and [v.message for v in d.audit] == ["port 80 is reserved"]
    assert [(r.rule, r.status) for r in d.results] == [("servicePorts", Status.FAIL)]
    d = evaluate(from_manifest(CONFIG_MAP), ps, InMemoryClusterState())
    assert d.skipped == "ConfigMap: not a pod or pod template; no rule judges this kind"
    assert [(r.rule, r.status) for r in d.results] == [("servicePorts", Status.SKIP)]


def test_a_network_policy_judged_by_a_rule_is_not_skipped() -> None:
    tenant = {"apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": "shop"},
              "spec": {"namespaces": ["shop"], "rules": {"networkIsolation": True}}}
    ps = build_policy_set([SourceDoc(tenant, "p", 1)])
    netpol = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": {"name": "n", "namespace": "shop"}, "spec": {"podSelector": {}}}
    d = evaluate(from_manifest(netpol), ps, InMemoryClusterState())
    assert d.skipped is None and any(r.status is not Status.SKIP for r in d.results)


def test_exempt_says_which_entry_of_which_policy_and_why(tmp_path: Path) -> None:
    p = write(tmp_path / "p.yaml",
              cluster_policy("baseline", exemptions=[{"users": ["ci-bot"], "reason": "pipeline"},
                                                     {"namespaces": ["ops-*"], "reason": "operations team"}]),
              cluster_policy("advisory", enforcement="Warn", exemptions=[{"namespaces": ["ops-tools"]}]))
    result = run_cli("dry-run", "-p", str(p), "-o", "json", "-", stdin=dump_all([pod(namespace="ops-tools")]))
    [item] = result.json()["results"]
    assert item["allowed"] and item["skipped"] == ("exempt: baseline spec.exemptions[1] (operations team); "
                                                   "advisory spec.exemptions[0] (no reason given)")


def test_exemption_index_in_the_core() -> None:
    first, second = Exemption(namespaces=("a",), reason="one"), Exemption(namespaces=("shop",), reason="two")
    ps = PolicySet(cluster=(CompiledPolicy("c", "ClusterPolicy", "inline", exemptions=(first, second)),))
    assert evaluate(from_manifest(pod()), ps, InMemoryClusterState()).skipped == "exempt: c spec.exemptions[1] (two)"


def test_a_system_namespace_and_no_policy_say_so(tmp_path: Path, plain_policies: Path) -> None:
    result = run_cli("dry-run", "-p", str(plain_policies), "-o", "json", "-",
                     stdin=dump_all([pod(namespace="kube-system")]))
    assert result.json()["results"][0]["skipped"] == "namespace kube-system is a system namespace"
    tenant_only = write(tmp_path / "t.yaml", {"apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy",
                                              "metadata": {"name": "a"}, "spec": {"namespaces": ["a"]}})
    result = run_cli("dry-run", "-p", str(tenant_only), "-o", "json", "-", stdin=dump_all([pod()]))
    assert result.json()["results"][0]["skipped"] == "no policy applies in namespace shop"


# --- findings with their enforcement --------------------------------------------------------------------------

@pytest.fixture
def three_modes(tmp_path: Path) -> Path:
    return write(tmp_path / "modes.yaml",
                 cluster_policy("enforced", defaults={}, rules={"podSecurity": "baseline"}),
                 cluster_policy("warned", enforcement="Warn", defaults={}, rules={"requireLimits": ["cpu"]}),
                 cluster_policy("audited", enforcement="Audit", defaults={},
                                rules={"requireProbes": ["liveness", "readiness"]}))


def test_every_finding_is_a_structured_violation_with_its_enforcement(tmp_path: Path, three_modes: Path) -> None:
    f = write(tmp_path / "in.yaml", pod("ok"), pod("bad", hostNetwork=True))
    result = run_cli("dry-run", "-p", str(three_modes), "-o", "json", str(f))
    assert result.code == 1
    ok, bad = result.json()["results"]
    assert ok["allowed"] is True
    assert [(v["policy"], v["rule"], v["enforcement"]) for v in ok["violations"]] == [
        ("warned", "requireLimits", "Warn"), ("audited", "requireProbes", "Audit"),
        ("audited", "requireProbes", "Audit")]
    assert ok["violations"][1] == {"policy": "audited", "rule": "requireProbes",
                                   "message": 'container "app" has no liveness probe (livenessProbe)',
                                   "container": "app", "field": "spec.containers[0].livenessProbe",
                                   "required": "livenessProbe", "enforcement": "Audit"}
    assert ok["warnings"] == ['[warned/requireLimits] container "app" has no cpu limit (policy requires limits for '
                              'cpu)']  # as before: the kubectl warnings
    assert ok["auditAnnotations"]["rules"] == "audited/requireProbes"
    assert bad["allowed"] is False
    assert [(v["check"], v["enforcement"]) for v in bad["violations"] if v["rule"] == "podSecurity"] == [
        ("hostNamespaces", "Enforce")]
    assert result.json()["summary"]["findings"] == {"Enforce": 1, "Warn": 2, "Audit": 4}


def test_the_table_shows_audit_findings_as_clearly_as_denials(tmp_path: Path, three_modes: Path) -> None:
    f = write(tmp_path / "in.yaml", pod("ok"))
    result = run_cli("dry-run", "-p", str(three_modes), "--color", "never", str(f))
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0] == "ALLOWED (2 audit findings)  Pod shop/ok"
    assert '    AUDIT [audited/requireProbes] container "app" has no liveness probe (livenessProbe) ' \
           "(spec.containers[0].livenessProbe)" in lines
    assert '    ! [warned/requireLimits] container "app" has no cpu limit (policy requires limits for cpu)' in lines
    assert "1 object: 1 allowed, 0 denied; findings: 0 Enforce, 1 Warn, 2 Audit" in lines
    coloured = run_cli("dry-run", "-p", str(three_modes), "--color", "always", str(f)).out
    assert "\033[1;35mALLOWED (2 audit findings)\033[0m" in coloured and "\033[1;35mAUDIT\033[0m" in coloured


@pytest.mark.parametrize("flags,code", [
    ([], 0),
    (["--fail-on", "warn"], 1),
    (["--fail-on", "audit"], 1),
    (["--fail-on", "warn,audit"], 1),
    (["--fail-on", "warn", "--fail-on", "audit"], 1),
])
def test_fail_on(tmp_path: Path, three_modes: Path, flags: list[str], code: int) -> None:
    f = write(tmp_path / "in.yaml", pod("ok"))
    result = run_cli("dry-run", "-p", str(three_modes), "-o", "json", *flags, str(f))
    assert result.code == code, result.err
    if "audit" in " ".join(flags):
        assert "note: exit 1: 2 Audit findings (--fail-on audit)" in result.err


def test_fail_on_without_such_findings_and_bad_values(tmp_path: Path) -> None:
    only_warn = write(tmp_path / "w.yaml", cluster_policy(enforcement="Warn", defaults={},
                                                          rules={"requireLimits": ["cpu"]}))
    f = write(tmp_path / "in.yaml", pod("ok"))
    assert run_cli("dry-run", "-p", str(only_warn), "--fail-on", "audit", str(f)).code == 0
    assert run_cli("dry-run", "-p", str(only_warn), "--fail-on", "audit", "--fail-on", "warn", str(f)).code == 1
    bad = run_cli("dry-run", "-p", str(only_warn), "--fail-on", "error", str(f))
    assert bad.code == 2 and "'error': expected warn, audit or both (warn,audit)" in bad.err


# --- -o manifests -------------------------------------------------------------------------------------------

def test_manifests_output_is_the_mutated_objects_in_input_order(repo: Path, policies: Path) -> None:
    result = run_cli("dry-run", "-p", str(policies), "-o", "manifests", str(repo))
    assert result.code == 1  # the denied Rollout: CI gets the exit code and the manifests
    docs = load_documents(result.out, "out")
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("ConfigMap", "settings"), ("Pod", "web"), ("Rollout", "canary")]
    config_map, mutated_pod, mutated_rollout = docs
    assert config_map == CONFIG_MAP  # skipped: passed through as written
    assert mutated_pod["metadata"]["labels"] == {"team": "shop"} and mutated_pod["spec"] == pod()["spec"]
    assert mutated_rollout["spec"]["template"]["metadata"]["labels"] == {"app": "canary", "team": "shop"}
    # a denied object is printed after comment lines naming each denial, which YAML ignores
    third = result.out.split("---\n")[2]
    assert third.startswith("# DENIED: [baseline/podSecurity] privileged: privileged (container \"app\" must not "
                            "set securityContext.privileged=true) "
                            "(spec.template.spec.containers[0].securityContext.privileged)\napiVersion: argoproj.io")
    assert result.out.count("---\n") == 2


def test_manifests_output_of_a_pod_from_stdin(tmp_path: Path, policies: Path) -> None:
    result = run_cli("dry-run", "-p", str(policies), "-o", "manifests", "-", stdin=dump_all([pod()]))
    assert result.code == 0, result.err
    [mutated] = load_documents(result.out, "out")
    assert mutated == {**pod(), "metadata": {"name": "web", "namespace": "shop", "labels": {"team": "shop"}}}
    assert "#" not in result.out


def test_manifests_output_keeps_lists_as_lists(tmp_path: Path, policies: Path) -> None:
    listing = {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
               "items": [pod("a"), CONFIG_MAP, pod("b")]}
    stream = dump_all([pod("first"), listing, CONFIG_MAP, {**listing, "items": [pod("c")]}])
    result = run_cli("dry-run", "-p", str(policies), "-o", "manifests", "-", stdin=stream)
    assert result.code == 0, result.err
    docs = load_documents(result.out, "out")
    assert [d["kind"] for d in docs] == ["Pod", "List", "ConfigMap", "List"]
    first, mutated_list, config_map, second_list = docs
    assert first["metadata"]["labels"] == {"team": "shop"}
    assert mutated_list["metadata"] == {"resourceVersion": ""}
    assert [i["metadata"]["name"] for i in mutated_list["items"]] == ["a", "settings", "b"]
    assert [i["metadata"].get("labels") for i in mutated_list["items"]] == [{"team": "shop"}, None, {"team": "shop"}]
    assert config_map == CONFIG_MAP
    assert [i["metadata"]["labels"] for i in second_list["items"]] == [{"team": "shop"}]


# --- stdin objects without a namespace ----------------------------------------------------------------------

def test_stdin_objects_without_a_namespace_warn_once_per_document(policies: Path) -> None:
    listing = {"apiVersion": "v1", "kind": "List", "items": [pod("a", namespace=None), pod("b", namespace=None)]}
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
    stream = dump_all([pod("named"), namespace, pod("web", namespace=None), listing])
    result = run_cli("dry-run", "-p", str(policies), "-o", "json", "-", stdin=stream)
    assert result.code == 0, result.err
    assert result.err.splitlines() == [
        'warning: <stdin>: document 3: Pod web has no namespace; judged in "default" (set --namespace or '
        "metadata.namespace)",
        'warning: <stdin>: document 4: Pod a, Pod b have no namespace; judged in "default" (set --namespace or '
        "metadata.namespace)",
    ]
    assert [r["namespace"] for r in result.json()["results"]] == ["shop", "", "default", "default", "default"]
    quiet = run_cli("dry-run", "-p", str(policies), "-n", "shop", "-o", "json", "-", stdin=stream)
    assert quiet.err == "" and quiet.code == 0


def test_files_without_a_namespace_do_not_warn(tmp_path: Path, policies: Path) -> None:
    f = write(tmp_path / "in.yaml", pod(namespace=None))
    result = run_cli("dry-run", "-p", str(policies), str(f))
    assert result.err == "" and result.code == 0


def test_kustomize_build_output_on_stdin(policies: Path) -> None:
    """What `kustomize build overlays/prod | tenantguard dry-run -` sees: objects, and nothing to skip."""
    stream = dump_all([CONFIG_MAP, rollout(), pod()])
    result = run_cli("dry-run", "-p", str(policies), "-o", "json", "-", stdin=stream)
    assert result.code == 1 and "note:" not in result.err
    assert [r.get("skipped") is not None for r in result.json()["results"]] == [True, False, False]
