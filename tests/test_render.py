"""`tenantguard render`: native objects from the policies, valid Kubernetes 1.35, admitted by our own rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import k8s_schema
from tests.conftest import EXAMPLES, POLICIES, run_cli
from webhook.core.cluster_state import InMemoryClusterState
from webhook.core.engine import evaluate
from webhook.core.request import from_manifest
from webhook.policy.loader import SourceDoc, build_policy_set
from webhook.render import RenderError, render
from webhook.yamlio import dump_all, load_documents


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
    assert "note: tenant customer-a: namespaces matched by customer-a-*" in result.err


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


def test_ingress_only_when_the_tenant_sets_no_isolation() -> None:
    objects = render(_policies(_tenant("t", {"namespaces": ["t"]}))).objects
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "NetworkPolicy"] == \
        ["tenantguard-default-deny", "tenantguard-allow-tenant"]
    assert _by(objects, "NetworkPolicy", "t", "tenantguard-default-deny")["spec"]["policyTypes"] == ["Ingress"]


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


def test_glob_only_tenant_renders_nothing_but_says_so() -> None:
    rendered = render(_policies(_tenant("g", {"namespaces": ["g-*"]})))
    assert rendered.objects == []
    assert rendered.notes == ["tenant g: claims no namespace by name (globs or selector only); nothing rendered"]


def test_bad_policy_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("apiVersion: tenantguard.io/v1alpha1\nkind: TenantPolicy\nmetadata: {name: x}\n"
                    "spec: {namespaces: [x], rules: {networkIsolation: {defaultDeny: [Sideways]}}}\n")
    result = run_cli("render", "--policies", str(path))
    assert result.code == 2
    assert "networkIsolation" in result.err
