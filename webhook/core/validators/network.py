"""networkIsolation: tenant pods run only in isolated namespaces; tenant NetworkPolicies stay inside the tenant.

Two validators, compiled from ``rules.networkIsolation``:

- :class:`RequireDefaultDeny` (pods and pod templates): the request's
  namespace must hold a *default-deny* NetworkPolicy for every configured
  direction (``defaultDeny``, Ingress by default): one that selects every pod
  (``podSelector: {}``), lists the direction in ``policyTypes`` (absent
  ``policyTypes`` mean Ingress, plus Egress when there are egress rules, as the
  API server defaults them) and has no rule in that direction that allows
  everything (a rule with neither peers nor ports). The denial spells out the
  object to apply.

  The rule judges only when the cluster view *knows* the namespace's
  NetworkPolicies (``ClusterState.network_policies_known``): the watch-backed
  view once its NetworkPolicy list has synced; the in-memory view of the
  dry-run CLI once it holds at least one NetworkPolicy (from
  ``--cluster-state`` or earlier in the input). Otherwise the finding is
  advisory: a warning that says the rule could not be checked, never a denial
  (``tenantguard dry-run`` without cluster state admits the seed pods).

- :class:`NetworkPolicyPeers` (NetworkPolicy objects in a tenant namespace):
  every ingress ``from`` / egress ``to`` peer may only reach the tenant's own
  namespaces and its ``sharedNamespaces``:

  * a rule without peers (every source / destination) is refused;
  * ``namespaceSelector: {}`` (every namespace) is refused;
  * a selector pinned to names (``kubernetes.io/metadata.name`` in matchLabels
    or an ``In`` expression) is judged by those names; a selector that
    contains the tenant's own ``namespaceSelector`` only reaches namespaces
    the tenant claims; any other selector is resolved against the namespaces
    the cluster view knows (as affinity namespace selectors are);
  * ``ipBlock`` peers can address other tenants' pod IPs (most CNIs apply
    ipBlock to pod traffic), so each CIDR must lie inside one of
    ``allowedCIDRs`` (none by default);
  * with ``allowDNS`` (default) an egress peer selecting the ``k8s-app:
    kube-dns`` pods of ``kube-system`` is allowed, so that an Egress
    default-deny does not break name resolution.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from webhook.core.cluster_state import NAME_LABEL
from webhook.core.decision import Violation
from webhook.core.plan import ValidationContext
from webhook.core.selectors import LabelSelector
from webhook.core.validators._base import (
    MAIN_ONLY,
    cluster_dependent,
    describe,
    inside_tenant,
    outside_tenant,
    violation,
)

DIRECTIONS = ("Ingress", "Egress")
DNS_NAMESPACE = "kube-system"
DNS_POD_LABELS = {"k8s-app": "kube-dns"}
_RULES = {"Ingress": ("ingress", "from"), "Egress": ("egress", "to")}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def policy_types(spec: Mapping[str, Any]) -> set[str]:
    """The directions a NetworkPolicy spec affects, with the API server's defaulting of ``policyTypes``."""
    types = spec.get("policyTypes")
    if isinstance(types, list) and types:
        return {t for t in types if t in DIRECTIONS}
    out = {"Ingress"}
    if _list(spec.get("egress")):
        out.add("Egress")
    return out


def selects_all_pods(spec: Mapping[str, Any]) -> bool:
    selector = spec.get("podSelector")
    if selector is None:
        return True
    return isinstance(selector, dict) and LabelSelector.from_dict(selector).is_empty


def _opens_everything(rule: Any, peers_key: str) -> bool:
    rule = _mapping(rule)
    return not _list(rule.get(peers_key)) and not _list(rule.get("ports"))


def default_deny_directions(policy: Mapping[str, Any]) -> set[str]:
    """Directions for which this NetworkPolicy isolates every pod of its namespace."""
    spec = _mapping(policy.get("spec"))
    if not selects_all_pods(spec):
        return set()
    out = set()
    for direction in policy_types(spec):
        rules_key, peers_key = _RULES[direction]
        if not any(_opens_everything(r, peers_key) for r in _list(spec.get(rules_key))):
            out.add(direction)
    return out


def default_deny_policy(namespace: str, directions: tuple[str, ...] | list[str],
                        name: str = "default-deny") -> dict[str, Any]:
    """The NetworkPolicy that isolates every pod of ``namespace`` for ``directions``."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"podSelector": {}, "policyTypes": list(directions)},
    }


def _flow(value: Any) -> str:
    """A compact one-line YAML (flow style) rendering, for messages."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return str(value)


def _knows(ctx: ValidationContext, namespace: str) -> bool:
    return ctx.state.network_policies_known(namespace)


@dataclass(frozen=True, slots=True)
class RequireDefaultDeny:
    directions: tuple[str, ...] = ("Ingress",)
    rule: str = "networkIsolation"
    kinds: frozenset[str] | None = None
    subresources: frozenset[str] = MAIN_ONLY
    reads_cluster = cluster_dependent  # judges with what the cluster view holds (usage, other objects)

    def validate(self, ctx: ValidationContext) -> Iterator[Violation]:
        namespace = ctx.request.namespace
        wanted = ", ".join(self.directions)
        fix = default_deny_policy(namespace, self.directions)
        if not _knows(ctx, namespace):
            found = violation(
                ctx, self.rule,
                f"not checked: the cluster view does not know the NetworkPolicies of namespace {namespace} "
                f"(dry-run: pass them with --cluster-state); it needs a default-deny NetworkPolicy for {wanted}",
                actual=None, required=fix,
            )
            yield found._replace(enforcement="Warn")  # advisory: never denies
            return
        covered: set[str] = set()
        for policy in ctx.state.network_policies(namespace):
            if isinstance(policy, dict):
                covered |= default_deny_directions(policy)
        missing = [d for d in self.directions if d not in covered]
        if not missing:
            return
        owner = f"tenant {ctx.tenant.name}" if ctx.tenant is not None else f"policy {ctx.policy.name}"
        yield violation(
            ctx, self.rule,
            f"namespace {namespace} has no default-deny NetworkPolicy for {', '.join(missing)} ({owner} requires "
            f"{wanted} isolation); apply this first (or `tenantguard render`): {_flow(fix)}",
            actual=sorted(covered), required=fix,
        )


def _name_constraint(selector: LabelSelector) -> set[str] | None:
    """The namespace names a selector is pinned to through ``kubernetes.io/metadata.name``; None if unpinned."""
    names: set[str] | None = None
    for key, value in selector.match_labels:
        if key == NAME_LABEL:
            names = {value} if names is None else names & {value}
    for key, op, values in selector.match_expressions:
        if key == NAME_LABEL and op == "In":
            names = set(values) if names is None else names & set(values)
    return names


def _implies(selector: LabelSelector, tenant_selector: LabelSelector) -> bool:
    """Every namespace ``selector`` matches also matches ``tenant_selector`` (checked term by term)."""
    if tenant_selector.is_empty:
        return False
    labels = set(selector.match_labels)
    exprs = set(selector.match_expressions)
    return all(pair in labels for pair in tenant_selector.match_labels) and all(
        e in exprs for e in tenant_selector.match_expressions
    )


def _is_dns_peer(peer: Mapping[str, Any]) -> bool:
    ns_sel = peer.get("namespaceSelector")
    pod_sel = peer.get("podSelector")
    if not isinstance(ns_sel, dict) or not isinstance(pod_sel, dict):
        return False
    if _name_constraint(LabelSelector.from_dict(ns_sel)) != {DNS_NAMESPACE}:
        return False
    pods = LabelSelector.from_dict(pod_sel)
    pinned = [(k, v) for k, v in DNS_POD_LABELS.items()]
    return all(pair in pods.match_labels for pair in pinned) or all(
        any(key == k and op == "In" and set(values) == {v} for key, op, values in pods.match_expressions)
        for k, v in pinned
    )


def _cidr(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class NetworkPolicyPeers:
    shared: tuple[str, ...] = ()
    allowed_cidrs: tuple[str, ...] = ()
    allow_dns: bool = True
    rule: str = "networkPolicyPeers"
    kinds: frozenset[str] | None = frozenset({"NetworkPolicy"})
    subresources: frozenset[str] = MAIN_ONLY
    reads_cluster = cluster_dependent  # judges with what the cluster view holds (usage, other objects)

    def validate(self, ctx: ValidationContext) -> Iterator[Violation]:
        if ctx.tenant is None:
            return
        spec = _mapping(ctx.obj.get("spec"))
        for direction in DIRECTIONS:
            rules_key, peers_key = _RULES[direction]
            word = "from" if direction == "Ingress" else "to"
            for index, rule in enumerate(_list(spec.get(rules_key))):
                rule = _mapping(rule)
                path = ("spec", rules_key, index, peers_key)
                peers = _list(rule.get(peers_key))
                if not peers:
                    yield violation(
                        ctx, self.rule,
                        f"{rules_key} rule {index} has no `{peers_key}` peers, so it allows traffic {word} every "
                        f"namespace and address; list peers within tenant {ctx.tenant.name} "
                        f"(shared namespaces: {describe(self.shared)})",
                        field=path, actual=None, required=self._required(ctx),
                    )
                    continue
                for p_index, peer in enumerate(peers):
                    if isinstance(peer, dict):
                        yield from self._peer(ctx, direction, peer, path + (p_index,))

    def _required(self, ctx: ValidationContext) -> str:
        assert ctx.tenant is not None
        shared = f" and {describe(self.shared)}" if self.shared else ""
        return f"namespaces of tenant {ctx.tenant.name}{shared}"

    def _peer(self, ctx: ValidationContext, direction: str, peer: Mapping[str, Any],
              path: tuple[str | int, ...]) -> Iterator[Violation]:
        assert ctx.tenant is not None
        tenant = ctx.tenant.name
        block = peer.get("ipBlock")
        if isinstance(block, dict):
            cidr = block.get("cidr")
            network = _cidr(cidr)
            allowed = [n for n in (_cidr(c) for c in self.allowed_cidrs) if n is not None]
            if network is None or not any(
                network.version == a.version and network.subnet_of(a) for a in allowed  # type: ignore[arg-type]
            ):
                yield violation(
                    ctx, self.rule,
                    f"{direction.lower()} ipBlock {cidr} may address other tenants' pods; tenant {tenant} "
                    f"allows ipBlock peers only inside: {describe(list(self.allowed_cidrs))} "
                    "(rules.networkIsolation.allowedCIDRs)",
                    field=path + ("ipBlock", "cidr"), actual=cidr, required=list(self.allowed_cidrs),
                )
        raw = peer.get("namespaceSelector")
        if not isinstance(raw, dict):
            return  # podSelector alone: the policy's own namespace
        if direction == "Egress" and self.allow_dns and _is_dns_peer(peer):
            return
        selector = LabelSelector.from_dict(raw)
        if selector.is_empty:
            yield violation(
                ctx, self.rule,
                f"{direction.lower()} peer has an empty namespaceSelector, which selects every namespace; tenant "
                f"{tenant} may only reach its own namespaces (shared: {describe(self.shared)})",
                field=path + ("namespaceSelector",), actual={}, required=self._required(ctx),
            )
            return
        names = _name_constraint(selector)
        if names is not None:
            outside = sorted(n for n in names if not inside_tenant(ctx, n, self.shared))
        elif ctx.tenant.match is not None and ctx.tenant.match.selector is not None \
                and _implies(selector, ctx.tenant.match.selector):
            outside = []
        else:
            outside = outside_tenant(ctx, selector, self.shared)
        if outside:
            yield violation(
                ctx, self.rule,
                f"{direction.lower()} peer namespaceSelector {_flow(dict(raw))} reaches namespaces outside tenant "
                f"{tenant}: {', '.join(outside)} (shared: {describe(self.shared)})",
                field=path + ("namespaceSelector",), actual=outside, required=self._required(ctx),
            )
