"""rules.networkIsolation: the schema, the compiled validators, and dry-run behaviour with and without state."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, POLICIES, run_cli
from webhook.views.memory import InMemoryClusterState
from webhook.core.engine import evaluate
from webhook.core.request import from_manifest
from webhook.core.validators.network import (
    NetworkPolicyPeers,
    RequireDefaultDeny,
    default_deny_directions,
    policy_types,
)
from webhook.policy import PolicyError
from webhook.policy.loader import SourceDoc, build_policy_set
from webhook.inputs.yamlio import dump_all


def _policy(kind: str = "TenantPolicy", enforcement: str = "Enforce", **rules) -> dict:
    spec: dict = {"enforcement": enforcement, "rules": rules}
    if kind == "TenantPolicy":
        spec["namespaces"] = ["shop"]
    return {"apiVersion": "tenantguard.io/v1alpha1", "kind": kind, "metadata": {"name": "p"}, "spec": spec}


def _set(*docs: dict):
    return build_policy_set([SourceDoc(d, f"inline[{i}]", 1) for i, d in enumerate(docs)])


POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"},
       "spec": {"containers": [{"name": "c", "image": "i"}]}}


@pytest.mark.parametrize("spec,expected", [
    ({"podSelector": {}}, {"Ingress"}),
    ({"podSelector": {}, "egress": [{"to": [{"podSelector": {}}]}]}, {"Ingress", "Egress"}),
    ({"podSelector": {}, "egress": []}, {"Ingress"}),
    ({"podSelector": {}, "policyTypes": ["Egress"]}, {"Egress"}),
])
def test_policy_types_default_as_the_api_server_does(spec: dict, expected: set) -> None:
    assert policy_types(spec) == expected


@pytest.mark.parametrize("spec,expected", [
    ({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, {"Ingress", "Egress"}),
    ({"podSelector": {"matchLabels": {}}, "policyTypes": ["Ingress"]}, {"Ingress"}),
    ({"podSelector": {"matchLabels": {"a": "b"}}, "policyTypes": ["Ingress"]}, set()),
    ({"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]}, set()),
    ({"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"ports": [{"port": 80}]}]}, {"Ingress"}),
    ({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": []}]}, set()),
])
def test_default_deny_directions(spec: dict, expected: set) -> None:
    assert default_deny_directions({"spec": spec}) == expected


def test_schema_shorthand_and_compiled_validators() -> None:
    policies = _set(_policy(networkIsolation=True))
    validators = policies.tenants[0].validators
    assert RequireDefaultDeny(("Ingress",)) in validators
    assert NetworkPolicyPeers((), (), True) in validators
    cluster = _set(_policy("ClusterPolicy", networkIsolation={"defaultDeny": ["Ingress", "Egress"]}))
    assert [v for v in cluster.cluster[0].validators if v.rule.startswith("network")] == \
        [RequireDefaultDeny(("Ingress", "Egress"))]  # a cluster policy has no tenant to keep peers inside
    assert _set(_policy(networkIsolation=False)).tenants[0].validators == \
        _set(_policy()).tenants[0].validators


@pytest.mark.parametrize("value,message", [
    ({"defaultDeny": ["Sideways"]}, "defaultDeny"),
    ({"allowedCIDRs": ["10.0.0.0/33"]}, "is not a CIDR"),
    ({"allowDNs": True}, "allowDNs"),
])
def test_schema_errors(value: dict, message: str) -> None:
    with pytest.raises(PolicyError) as info:
        _set(_policy(networkIsolation=value))
    assert message in "\n".join(info.value.errors)


@pytest.mark.parametrize("enforcement,where", [("Enforce", "warnings"), ("Warn", "warnings"), ("Audit", "audit")])
def test_an_unknown_view_never_denies(enforcement: str, where: str) -> None:
    decision = evaluate(from_manifest(POD), _set(_policy(enforcement=enforcement, networkIsolation=True)),
                        InMemoryClusterState())
    assert decision.allowed and decision.violations == []
    found = decision.warnings if where == "warnings" else [v.summary() for v in decision.audit]
    assert any("[p/networkIsolation] not checked" in w for w in found)


@pytest.mark.parametrize("enforcement", ["Warn", "Audit"])
def test_a_known_view_routes_findings_by_enforcement(enforcement: str) -> None:
    state = InMemoryClusterState()
    state.add_object({"kind": "NetworkPolicy", "metadata": {"name": "x", "namespace": "other"}, "spec": {}})
    decision = evaluate(from_manifest(POD), _set(_policy(enforcement=enforcement, networkIsolation=True)), state)
    assert decision.allowed
    found = decision.warnings if enforcement == "Warn" else [v.summary() for v in decision.audit]
    assert any("namespace shop has no default-deny NetworkPolicy for Ingress" in w for w in found)


def test_seed_manifests_are_admitted_by_dry_run_without_cluster_state() -> None:
    for name in ("web.yaml", "network-policy.yaml", "namespace.yaml"):
        result = run_cli("dry-run", "--policies", str(POLICIES), "--output", "json",
                         str(EXAMPLES / "customer-a" / name))
        assert result.code == 0, (name, result.out, result.err)
    # the whole seed directory: the debug pod is denied for its own reasons, never for isolation
    result = run_cli("dry-run", "--policies", str(POLICIES), "--output", "json", str(EXAMPLES))
    for item in result.json()["results"]:
        assert all(v["rule"] not in ("networkIsolation", "networkPolicyPeers") for v in item["violations"])
        if item["namespace"] == "customer-a" and item["name"] != "debug":
            assert item["allowed"], item


def test_dry_run_with_network_policies_in_the_cluster_state_judges(tmp_path: Path) -> None:
    state = tmp_path / "state.yaml"
    state.write_text(dump_all([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "customer-a", "labels": {"customer": "a"}}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": "ingress-only", "namespace": "customer-a"},
         "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}},
    ]))
    result = run_cli("dry-run", "--policies", str(POLICIES), "--cluster-state", str(state), "--output", "json",
                     str(EXAMPLES / "customer-a" / "web.yaml"))
    assert result.code == 1
    [item] = result.json()["results"]
    [violation] = [v for v in item["violations"] if v["enforcement"] == "Enforce"]
    assert violation["rule"] == "networkIsolation"
    assert "no default-deny NetworkPolicy for Egress" in violation["message"]
    assert violation["required"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    # applying the seed's own NetworkPolicy first (same input) fixes it
    result = run_cli("dry-run", "--policies", str(POLICIES), "--cluster-state", str(state), "--output", "json",
                     str(EXAMPLES / "customer-a" / "network-policy.yaml"), str(EXAMPLES / "customer-a" / "web.yaml"))
    assert result.code == 0, result.out
