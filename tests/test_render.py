"""`tenantguard render`: native objects from the policies, valid Kubernetes 1.35, admitted by our own rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import k8s_schema
from tests.conftest import EXAMPLES, POLICIES, run_cli
from webhook.views.memory import InMemoryClusterState
from webhook.core.engine import evaluate
from webhook.core.request import from_manifest
from webhook.policy.loader import SourceDoc, build_policy_set
from webhook.actions.render import RenderError, render
from webhook.inputs.yamlio import dump_all, load_documents


def _policies(*docs: dict):
    return build_policy_set([SourceDoc(d, f"inline[{i}]", 1) for i, d in enumerate(docs)])


def _tenant(name: str, spec: dict) -> dict:
    return {"apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": name},
            "spec": spec}


def _cluster(name: str, spec: dict) -> dict:
    return {"apiVersion": "tenantguard.io/v1alpha1", "kind": "ClusterPolicy", "metadata": {"name": name},
            "spec": spec}


SHOP = _tenant("shop", {
    "namespaces": ["shop", "shop-dev", "shop-*"],
    "namespaceSelector": {"matchLabels": {"tenant": "shop"}},
    "defaults": {"resources": {"requests": {"cpu": "200m"}, "limits": {"cpu": "1", "memory": "1Gi"}}},
    "rules": {
        "podSecurity": "restricted",
        "sharedNamespaces": ["monitoring", "ingress-*"],
        "maxResources": {"perContainer": {"cpu": "2", "limits.memory": "4Gi", "requests.memory": "2Gi"},
                         "perPod": {"limits.cpu": "4"}},
        "networkIsolation": {"defaultDeny": ["Ingress", "Egress"]},
    },
    "quota": {"hard": {"requests.cpu": "4", "requests.memory": "8Gi", "pods": "20"},
              "perNamespace": {"requests.cpu": "2500m", "limits.cpu": "6"}},
})
BASE = _cluster("base", {
    "defaults": {"resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}},
    "rules": {"podSecurity": "baseline", "maxResources": {"perContainer": {"cpu": "3"}}},
    "quota": {"perNamespace": {"pods": "15", "requests.memory": "16Gi"}},
    "exemptions": [{"namespaces": ["kube-system"], "reason": "system"}],
})


def _by(objects: list[dict], kind: str, namespace: str, name: str | None = None) -> dict:
    for obj in objects:
        meta = obj["metadata"]
        same_namespace = meta.get("namespace") == namespace or (kind == "Namespace" and meta["name"] == namespace)
        if obj["kind"] == kind and same_namespace and (name is None or meta["name"] == name):
            return obj
    raise AssertionError(f"no {kind} {name or ''} for {namespace}")


def test_shipped_policies_render_valid_kubernetes_objects() -> None:
    result = run_cli("render", "--policies", str(POLICIES))
    assert result.code == 0, result.err
    objects = load_documents(result.out, "render")
    kinds = {o["kind"] for o in objects}
    assert kinds == {"Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy"}
    for obj in objects:
        k8s_schema.assert_valid(obj)
    assert {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"} == \
        {"customer-a", "trading", "edge", "ml"}
    assert "note: tenant customer-a: namespaces matched by customer-a-* or its namespaceSelector are not rendered" \
        in result.err
    assert "--cluster-state FILE or --kubeconfig FILE" in result.err


def test_every_object_of_a_rich_policy_is_valid() -> None:
    rendered = render(_policies(BASE, SHOP))
    assert len(rendered.objects) == 2 * 6  # Namespace, ResourceQuota, LimitRange, 3 NetworkPolicies
    for obj in rendered.objects:
        k8s_schema.assert_valid(obj)


def test_cli_json_output(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(dump_all([BASE, SHOP]))
    result = run_cli("render", "--policies", str(path), "--output", "json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["apiVersion"] == "v1" and doc["kind"] == "List"
    assert doc["items"] == render(_policies(BASE, SHOP)).objects


def test_namespace_carries_tenant_selector_and_pod_security_labels() -> None:
    objects = render(_policies(BASE, SHOP)).objects
    ns = _by(objects, "Namespace", "shop-dev")
    labels = ns["metadata"]["labels"]
    assert labels["tenantguard.io/tenant"] == "shop"
    assert labels["tenant"] == "shop"  # the tenant's namespaceSelector claims it too
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"  # the stricter of tenant and cluster
    assert labels["pod-security.kubernetes.io/enforce-version"] == "latest"
    policies = _policies(BASE, SHOP)
    assert policies.tenant_for("shop-dev", labels).name == "shop"
    # only literal names are rendered
    assert sorted(o["metadata"]["name"] for o in objects if o["kind"] == "Namespace") == ["shop", "shop-dev"]


def test_pod_security_enforce_is_left_out_when_exemptions_name_users() -> None:
    tenant = _tenant("t", {"namespaces": ["t"], "rules": {"podSecurity": "restricted"},
                           "exemptions": [{"users": ["ci-bot"], "reason": "CI"}]})
    rendered = render(_policies(tenant))
    labels = _by(rendered.objects, "Namespace", "t")["metadata"]["labels"]
    assert "pod-security.kubernetes.io/enforce" not in labels
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert any("cannot exempt users or groups" in n for n in rendered.notes)


def test_resource_quota_takes_the_smallest_bound_per_key() -> None:
    quota = _by(render(_policies(BASE, SHOP)).objects, "ResourceQuota", "shop")
    assert quota["spec"]["hard"] == {
        "limits.cpu": "6",            # tenant perNamespace only
        "pods": "15",                 # cluster perNamespace 15 < tenant hard 20
        "requests.cpu": "2500m",      # tenant perNamespace 2500m < hard 4
        "requests.memory": "8Gi",     # tenant hard 8Gi < cluster perNamespace 16Gi
    }


def test_limit_range_layers_defaults_and_maxima() -> None:
    rendered = render(_policies(BASE, SHOP))
    limits = _by(rendered.objects, "LimitRange", "shop")["spec"]["limits"]
    container = next(i for i in limits if i["type"] == "Container")
    assert container["default"] == {"cpu": "1", "memory": "1Gi"}              # tenant's limits
    assert container["defaultRequest"] == {"cpu": "200m", "memory": "128Mi"}  # tenant cpu, cluster memory
    assert container["max"] == {"cpu": "2", "memory": "4Gi"}                   # min(2, 3); limits.memory
    assert next(i for i in limits if i["type"] == "Pod")["max"] == {"cpu": "4"}
    assert any("requests.memory" in n and "cannot express" in n for n in rendered.notes)


def test_defaults_above_maxima_cannot_be_rendered(tmp_path: Path) -> None:
    tenant = _tenant("t", {"namespaces": ["t"], "defaults": {"resources": {"limits": {"cpu": "4"}}},
                           "rules": {"maxResources": {"perContainer": {"cpu": "2"}}}})
    with pytest.raises(RenderError, match="default limit cpu 4 is above maxResources.perContainer 2"):
        render(_policies(tenant))
    path = tmp_path / "p.yaml"
    path.write_text(dump_all([tenant]))
    result = run_cli("render", "--policies", str(path))
    assert result.code == 2 and "LimitRange would be invalid" in result.err


def test_network_policies_deny_by_default_and_allow_the_tenant_and_shared_namespaces() -> None:
    rendered = render(_policies(BASE, SHOP))
    deny = _by(rendered.objects, "NetworkPolicy", "shop", "tenantguard-default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    allow = _by(rendered.objects, "NetworkPolicy", "shop", "tenantguard-allow-tenant")["spec"]
    peers = allow["ingress"][0]["from"]
    assert peers == allow["egress"][0]["to"] and peers is not allow["egress"][0]["to"]
    assert {"namespaceSelector": {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["shop", "shop-dev"]}]}} in peers
    assert {"namespaceSelector": {"matchLabels": {"tenant": "shop"}}} in peers
    assert {"namespaceSelector": {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["monitoring"]}]}} in peers
    assert any("ingress-*" in n for n in rendered.notes)
    dns = _by(rendered.objects, "NetworkPolicy", "shop", "tenantguard-allow-dns")["spec"]
    assert dns["policyTypes"] == ["Egress"]


def test_rendered_objects_pass_our_own_webhook_and_isolate_the_namespaces() -> None:
    """Apply the render output to a cluster view: every object is admitted, then tenant pods are judged
    against it (isolation known, quota in force) with no advisory warning."""
    policies = _policies(BASE, SHOP)
    state = InMemoryClusterState()
    for obj in render(policies).objects:
        decision = evaluate(from_manifest(obj), policies, state)
        assert decision.allowed, (obj["kind"], obj["metadata"]["name"], decision.message())
        state.add_object(obj)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop-dev"},
           "spec": {"containers": [{"name": "c", "image": "i"}],
                    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}}}
    decision = evaluate(from_manifest(pod), policies, state)
    assert not any("networkIsolation" in w for w in decision.warnings)
    assert all(v.rule != "networkIsolation" for v in decision.violations)


def test_shipped_seed_is_admitted_against_the_rendered_backstop(tmp_path: Path) -> None:
    rendered = run_cli("render", "--policies", str(POLICIES), "--tenant", "customer-a")
    assert rendered.code == 0, rendered.err
    state = tmp_path / "state.yaml"
    state.write_text(rendered.out)
    result = run_cli("dry-run", "--policies", str(POLICIES), "--cluster-state", str(state), "--output", "json",
                     str(EXAMPLES / "customer-a" / "web.yaml"), str(EXAMPLES / "customer-a" / "network-policy.yaml"))
    assert result.code == 0, result.out + result.err
    for item in result.json()["results"]:
        assert item["allowed"]
        assert not any("networkIsolation" in w for w in item["warnings"])


def test_tenant_filter_and_unknown_tenant() -> None:
    only = run_cli("render", "--policies", str(POLICIES), "--tenant", "ml")
    assert only.code == 0
    assert {o["metadata"].get("namespace", o["metadata"]["name"]) for o in load_documents(only.out, "x")} == {"ml"}
    bad = run_cli("render", "--policies", str(POLICIES), "--tenant", "nobody")
    assert bad.code == 2 and "no TenantPolicy named nobody" in bad.err


def test_glob_only_tenant_renders_nothing_without_cluster_state_but_says_how() -> None:
    rendered = render(_policies(_tenant("g", {"namespaces": ["g-*"]})))
    assert rendered.objects == []
    assert rendered.notes == ["tenant g: claims namespaces only by g-*, whose names are unknown without cluster "
                              "state, so nothing is rendered; pass --cluster-state FILE or --kubeconfig FILE "
                              "(or --in-cluster) to render them"]


def test_bad_policy_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("apiVersion: tenantguard.io/v1alpha1\nkind: TenantPolicy\nmetadata: {name: x}\n"
                    "spec: {namespaces: [x], rules: {networkIsolation: {defaultDeny: [Sideways]}}}\n")
    result = run_cli("render", "--policies", str(path))
    assert result.code == 2
    assert "networkIsolation" in result.err


# --- networkIsolation gates the NetworkPolicies ---------------------------------------------------

def _netpol_names(objects: list[dict], namespace: str) -> list[str]:
    return [o["metadata"]["name"] for o in objects
            if o["kind"] == "NetworkPolicy" and o["metadata"]["namespace"] == namespace]


def test_network_policies_only_where_isolation_is_asked_for() -> None:
    plain = render(_policies(BASE, _tenant("t", {"namespaces": ["t"]})))
    assert not any(o["kind"] == "NetworkPolicy" for o in plain.objects)
    assert {o["kind"] for o in plain.objects} == {"Namespace", "ResourceQuota", "LimitRange"}

    isolated = render(_policies(_tenant("t", {"namespaces": ["t"], "rules": {"networkIsolation": True}}))).objects
    assert _netpol_names(isolated, "t") == ["tenantguard-default-deny", "tenantguard-allow-tenant"]
    assert _by(isolated, "NetworkPolicy", "t", "tenantguard-default-deny")["spec"]["policyTypes"] == ["Ingress"]

    no_dns = _tenant("t", {"namespaces": ["t"], "rules": {"networkIsolation": {
        "defaultDeny": ["Egress"], "allowDNS": False}}})
    objects = render(_policies(no_dns)).objects
    assert _netpol_names(objects, "t") == ["tenantguard-default-deny", "tenantguard-allow-tenant"]
    assert _by(objects, "NetworkPolicy", "t", "tenantguard-allow-tenant")["spec"]["policyTypes"] == ["Egress"]

    nothing = render(_policies(_tenant("t", {"namespaces": ["t"], "rules": {"networkIsolation": {
        "defaultDeny": []}}})))
    assert not any(o["kind"] == "NetworkPolicy" for o in nothing.objects)
    assert any("defaultDeny is empty" in n for n in nothing.notes)


def test_a_cluster_policys_isolation_is_rendered_where_it_applies() -> None:
    cluster = _cluster("iso", {"rules": {"networkIsolation": {"defaultDeny": ["Egress"]}},
                               "exemptions": [{"namespaces": ["lab"], "reason": "sandbox"}]})
    tenant = _tenant("t", {"namespaces": ["t", "lab"], "rules": {"networkIsolation": True}})
    objects = render(_policies(cluster, tenant)).objects
    # the union of the directions in force: the tenant's Ingress and the cluster's Egress (not in "lab")
    assert _by(objects, "NetworkPolicy", "t", "tenantguard-default-deny")["spec"]["policyTypes"] == \
        ["Ingress", "Egress"]
    assert "tenantguard-allow-dns" in _netpol_names(objects, "t")
    assert _by(objects, "NetworkPolicy", "lab", "tenantguard-default-deny")["spec"]["policyTypes"] == ["Ingress"]
    only_cluster = render(_policies(cluster, _tenant("u", {"namespaces": ["u"]}))).objects
    assert _netpol_names(only_cluster, "u") == \
        ["tenantguard-default-deny", "tenantguard-allow-tenant", "tenantguard-allow-dns"]


# --- namespaces from cluster state: globs and selectors ---------------------------------------------

GLOBS = _tenant("shop", {
    "namespaces": ["shop", "shop-*"],
    "quota": {"hard": {"requests.cpu": "4"}},
    "defaults": {"resources": {"limits": {"cpu": "1"}}},
    "rules": {"networkIsolation": {"defaultDeny": ["Ingress", "Egress"]}},
})
SELECTED = _tenant("analytics", {
    "namespaceSelector": {"matchLabels": {"team": "analytics"}},
    "quota": {"perNamespace": {"pods": "10"}},
    "rules": {"networkIsolation": True},
})


def _namespace(name: str, **labels: str) -> dict:
    meta: dict = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


STATE = [
    _namespace("shop-dev"),
    _namespace("shop-prod", owner="ops"),
    _namespace("reports", team="analytics", owner="data"),
    _namespace("unclaimed"),
    _namespace("kube-system", team="analytics"),  # the webhook never judges it: never rendered
]


def _write(path: Path, docs: list[dict]) -> str:
    path.write_text(dump_all(docs))
    return str(path)


def _namespaces(objects: list[dict]) -> list[str]:
    return [o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"]


def test_glob_and_selector_tenants_are_rendered_from_a_cluster_state_file(tmp_path: Path) -> None:
    policies = _write(tmp_path / "p.yaml", [GLOBS, SELECTED])
    state = _write(tmp_path / "state.yaml", STATE)
    result = run_cli("render", "--policies", policies, "--cluster-state", state)
    assert result.code == 0, result.err
    objects = load_documents(result.out, "render")
    for obj in objects:
        k8s_schema.assert_valid(obj)
    # the literal "shop" (absent from the state) as before, plus what the state shows each tenant claims
    assert _namespaces(objects) == ["shop", "shop-dev", "shop-prod", "reports"]
    assert "cannot" not in result.err and "unknown without cluster state" not in result.err
    for namespace in ("shop-dev", "shop-prod"):
        assert _by(objects, "ResourceQuota", namespace)["spec"]["hard"] == {"requests.cpu": "4"}
        assert _by(objects, "LimitRange", namespace)["spec"]["limits"][0]["default"] == {"cpu": "1"}
        assert _netpol_names(objects, namespace) == \
            ["tenantguard-default-deny", "tenantguard-allow-tenant", "tenantguard-allow-dns"]
    assert _by(objects, "ResourceQuota", "reports")["spec"]["hard"] == {"pods": "10"}
    assert _netpol_names(objects, "reports") == ["tenantguard-default-deny", "tenantguard-allow-tenant"]
    assert not any(o["metadata"].get("namespace") in ("unclaimed", "kube-system") for o in objects)
    # existing labels survive, ours are merged over them, and the webhook still resolves the same tenant
    reports = _by(objects, "Namespace", "reports")["metadata"]["labels"]
    assert reports["owner"] == "data" and reports["team"] == "analytics"
    assert reports["kubernetes.io/metadata.name"] == "reports"
    assert reports["tenantguard.io/tenant"] == "analytics"
    prod = _by(objects, "Namespace", "shop-prod")["metadata"]["labels"]
    assert prod["owner"] == "ops" and prod["tenantguard.io/tenant"] == "shop"
    compiled = _policies(GLOBS, SELECTED)
    for obj in objects:
        if obj["kind"] == "Namespace":
            assert compiled.tenant_for(obj["metadata"]["name"], obj["metadata"]["labels"]).name == \
                obj["metadata"]["labels"]["tenantguard.io/tenant"]


def test_allow_tenant_reaches_glob_and_selector_namespaces() -> None:
    namespaces = {o["metadata"]["name"]: o["metadata"].get("labels", {}) for o in STATE}
    objects = render(_policies(GLOBS, SELECTED), namespaces=namespaces).objects
    shop = _by(objects, "NetworkPolicy", "shop-dev", "tenantguard-allow-tenant")["spec"]["ingress"][0]["from"]
    assert {"namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In",
                                                        "values": ["shop", "shop-dev", "shop-prod"]}]}} in shop
    assert {"namespaceSelector": {"matchLabels": {"tenantguard.io/tenant": "shop"}}} in shop  # later shop-* too
    analytics = _by(objects, "NetworkPolicy", "reports", "tenantguard-allow-tenant")["spec"]["ingress"][0]["from"]
    assert {"namespaceSelector": {"matchLabels": {"team": "analytics"}}} in analytics


def test_objects_rendered_from_state_pass_our_webhook_and_isolate_glob_namespaces() -> None:
    """Apply the output over the state: every object is admitted (the allow policies reach nothing outside the
    tenant), and a pod in a glob-claimed namespace then finds its default-deny and its quota."""
    policies = _policies(GLOBS, SELECTED)
    state = InMemoryClusterState()
    for obj in STATE:
        state.add_object(obj)
    namespaces = {ns: state.namespace_labels(ns) or {} for ns in state.namespaces()}
    for obj in render(policies, namespaces=namespaces).objects:
        decision = evaluate(from_manifest(obj), policies, state)
        assert decision.allowed, (obj["kind"], obj["metadata"]["name"], decision.message())
        state.add_object(obj)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop-prod"},
           "spec": {"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "5"}}}]}}
    decision = evaluate(from_manifest(pod), policies, state)
    assert not any("networkIsolation" in w for w in decision.warnings)
    assert [v.rule for v in decision.violations] == ["quota"]  # 5 cpu > 4: quota judged, isolation satisfied


def test_selector_namespace_claimed_by_two_tenants_is_a_note_not_a_crash(tmp_path: Path) -> None:
    other = _tenant("bi", {"namespaceSelector": {"matchLabels": {"owner": "data"}}})
    policies = _write(tmp_path / "p.yaml", [GLOBS, SELECTED, other])
    state = _write(tmp_path / "state.yaml", STATE)
    result = run_cli("render", "--policies", policies, "--cluster-state", state)
    assert result.code == 0, result.err
    assert "note: namespace reports is claimed by several tenants: analytics, bi" in result.err
    assert "reports" not in _namespaces(load_documents(result.out, "render"))
    assert "no namespace of the cluster state is claimed by its namespaceSelector" in result.err


def test_the_shipped_policies_cover_glob_and_selector_namespaces_of_a_cluster(tmp_path: Path) -> None:
    state = _write(tmp_path / "state.yaml", [_namespace("customer-a-dev"), _namespace("billing", customer="a"),
                                             _namespace("trading-eu"), _namespace("sandbox")])
    result = run_cli("render", "--policies", str(POLICIES), "--cluster-state", state)
    assert result.code == 0, result.err
    objects = load_documents(result.out, "render")
    for obj in objects:
        k8s_schema.assert_valid(obj)
    for namespace in ("customer-a-dev", "billing"):
        quota = _by(objects, "ResourceQuota", namespace)
        assert quota["metadata"]["labels"]["tenantguard.io/tenant"] == "customer-a"
        assert quota["spec"]["hard"]["requests.cpu"] == "4"
        container = _by(objects, "LimitRange", namespace)["spec"]["limits"][0]
        assert container["default"] == {"cpu": "500m", "memory": "512Mi"}
        assert "tenantguard-default-deny" in _netpol_names(objects, namespace)
    assert _by(objects, "Namespace", "billing")["metadata"]["labels"]["customer"] == "a"
    assert _by(objects, "LimitRange", "trading-eu")["metadata"]["labels"]["tenantguard.io/tenant"] == "trading"
    assert _netpol_names(objects, "trading-eu") == []  # trading asks for no network isolation
    assert "sandbox" not in _namespaces(objects)
    assert "not rendered" not in result.err


def test_render_from_state_is_deterministic(tmp_path: Path) -> None:
    policies = _write(tmp_path / "p.yaml", [GLOBS, SELECTED])
    forward = run_cli("render", "-p", policies, "--cluster-state", _write(tmp_path / "a.yaml", STATE))
    backward = run_cli("render", "-p", policies, "--cluster-state", _write(tmp_path / "b.yaml", STATE[::-1]))
    assert forward.code == backward.code == 0
    assert forward.out == backward.out and forward.err == backward.err


def test_a_stricter_pod_security_level_already_set_is_kept() -> None:
    tenant = _tenant("t", {"namespaces": ["t-*"], "rules": {"podSecurity": "baseline"}})
    existing = {"pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "v1.35",
                "pod-security.kubernetes.io/warn": "privileged"}
    rendered = render(_policies(tenant), namespaces={"t-1": existing})
    labels = _by(rendered.objects, "Namespace", "t-1")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/enforce-version"] == "v1.35"
    assert labels["pod-security.kubernetes.io/warn"] == "baseline"  # looser: raised to the policies' level
    assert any("keeps its stricter pod-security.kubernetes.io/enforce=restricted" in n for n in rendered.notes)


# --- --only ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("only", "kinds"), [
    ("labels", {"Namespace"}),
    ("quota", {"ResourceQuota"}),
    ("limits", {"LimitRange"}),
    ("network", {"NetworkPolicy"}),
    ("quota,limits", {"ResourceQuota", "LimitRange"}),
    ("network, labels", {"NetworkPolicy", "Namespace"}),
])
def test_only_renders_the_parts_asked_for(tmp_path: Path, only: str, kinds: set[str]) -> None:
    policies = _write(tmp_path / "p.yaml", [BASE, SHOP])
    result = run_cli("render", "--policies", policies, "--only", only, "--output", "json")
    assert result.code == 0, result.err
    items = result.json()["items"]
    assert {o["kind"] for o in items} == kinds
    full = render(_policies(BASE, SHOP)).objects
    assert items == [o for o in full if o["kind"] in kinds]  # same objects, same order


def test_only_is_repeatable_and_skips_what_it_leaves_out(tmp_path: Path) -> None:
    # the LimitRange cannot be rendered, but only quota is asked for
    tenant = _tenant("t", {"namespaces": ["t"], "defaults": {"resources": {"limits": {"cpu": "4"}}},
                           "rules": {"maxResources": {"perContainer": {"cpu": "2"}}},
                           "quota": {"hard": {"pods": "5"}}})
    policies = _write(tmp_path / "p.yaml", [tenant])
    result = run_cli("render", "--policies", policies, "--only", "quota", "--only", "labels")
    assert result.code == 0, result.err
    assert [o["kind"] for o in load_documents(result.out, "render")] == ["Namespace", "ResourceQuota"]


@pytest.mark.parametrize("only", ["quotas", "quota,bogus", ""])
def test_only_with_a_bad_part_exits_2(only: str) -> None:
    result = run_cli("render", "--policies", str(POLICIES), "--only", only)
    assert result.code == 2
    assert "--only" in result.err and "labels, quota, limits, network" in result.err
    assert result.out == ""


# --- errors ---------------------------------------------------------------------------------------

def test_unreadable_or_invalid_cluster_state_exits_2_naming_file_and_document(tmp_path: Path) -> None:
    missing = run_cli("render", "--policies", str(POLICIES), "--cluster-state", str(tmp_path / "nope.yaml"))
    assert missing.code == 2 and "--cluster-state" in missing.err and "nope.yaml" in missing.err
    invalid = tmp_path / "state.yaml"
    invalid.write_text(dump_all([_namespace("a"), {"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": "b", "labels": ["x"]}}]))
    bad = run_cli("render", "--policies", str(POLICIES), "--cluster-state", str(invalid))
    assert bad.code == 2 and bad.out == ""
    assert f"{invalid}: document 2: metadata.labels: must be a mapping" in bad.err
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: Namespace\nmetadata: {name: [\n")
    result = run_cli("render", "--policies", str(POLICIES), "--cluster-state", str(broken))
    assert result.code == 2 and str(broken) in result.err and "line" in result.err


@pytest.mark.parametrize("live", [["--kubeconfig", "kc"], ["--in-cluster"], ["--context", "prod"]])
def test_cluster_state_and_a_live_cluster_exclude_each_other(tmp_path: Path, live: list[str]) -> None:
    state = _write(tmp_path / "state.yaml", STATE)
    result = run_cli("render", "--policies", str(POLICIES), "--cluster-state", state, *live)
    assert result.code == 2 and result.out == ""
    assert "exclude each other" in result.err


def test_in_cluster_takes_no_kubeconfig() -> None:
    result = run_cli("render", "--policies", str(POLICIES), "--in-cluster", "--kubeconfig", "kc")
    assert result.code == 2 and "--in-cluster" in result.err


def test_cluster_state_may_be_a_namespace_list_as_kubectl_prints_it(tmp_path: Path) -> None:
    policies = _write(tmp_path / "p.yaml", [GLOBS, SELECTED])
    listed = _write(tmp_path / "list.yaml", [{"apiVersion": "v1", "kind": "List", "items": STATE}])
    streamed = _write(tmp_path / "stream.yaml", STATE)
    from_list = run_cli("render", "-p", policies, "--cluster-state", listed)
    assert from_list.code == 0, from_list.err
    assert from_list.out == run_cli("render", "-p", policies, "--cluster-state", streamed).out


def test_no_network_notes_for_a_tenant_without_isolation() -> None:
    tenant = _tenant("t", {"namespaces": ["t"], "rules": {"sharedNamespaces": ["ingress-*"]}})
    rendered = render(_policies(tenant))
    assert not any("ingress-*" in n for n in rendered.notes)
    isolated = _tenant("t", {"namespaces": ["t"], "rules": {"sharedNamespaces": ["ingress-*"],
                                                             "networkIsolation": True}})
    assert any("ingress-*" in n for n in render(_policies(isolated)).notes)
