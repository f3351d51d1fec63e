"""Native Kubernetes objects from the policies: the API server's own admission as the atomic backstop.

The webhook rejects early and precisely from its usage view, but it cannot be
atomic across replicas, and while it is down (or bypassed) nothing it decides
holds. ``tenantguard render`` therefore emits objects the API server enforces
by itself, for every tenant namespace it knows:

- the namespaces a TenantPolicy names literally (whether or not they exist yet);
- with the namespaces of a cluster (``namespaces``: a name -> labels mapping,
  from ``--cluster-state`` files or read live), every namespace a tenant claims
  there by literal name, by glob or by its ``namespaceSelector`` matching the
  namespace's labels, resolved with :meth:`PolicySet.tenant_for` exactly as the
  webhook resolves it. A namespace claimed by several tenants is reported and
  left out (the webhook denies every request in it); system namespaces are
  never rendered.

Per namespace, each part selectable (:data:`PARTS`):

- ``labels``: **Namespace** labelled ``tenantguard.io/tenant: <tenant>``, the
  tenant's ``namespaceSelector.matchLabels`` (so selector tenants claim it too)
  and the Pod Security admission labels of the strictest ``podSecurity`` level
  in force (``enforce`` only when no exemption names users or groups, which
  Pod Security admission could not honour; ``warn`` and ``audit`` always). A
  namespace that exists keeps its labels: ours are merged over them (so
  ``kubectl apply`` drops neither ``kubernetes.io/metadata.name`` nor a label a
  selector tenant matches by), except that a stricter Pod Security level
  already set is kept;
- ``quota``: **ResourceQuota** ``tenantguard-quota``: per key the smallest of
  the tenant's ``quota.perNamespace``, its ``quota.hard`` and the cluster
  policies' ``quota.perNamespace``. A native quota is per namespace and cannot
  share one budget across namespaces; putting the tenant-wide ``hard`` on each
  namespace keeps it a backstop that never refuses what the webhook admits (a
  split of ``hard`` / N would refuse legitimate uneven usage), while bounding
  what any single namespace can take if the webhook is bypassed or two
  replicas race;
- ``limits``: **LimitRange** ``tenantguard-limits`` (type Container):
  ``default`` from the limit defaults and ``defaultRequest`` from the request
  defaults (the tenant's, then the cluster's for resources the tenant leaves
  out, as the mutators layer them), ``max`` from ``maxResources.perContainer``
  (``cpu`` or ``limits.cpu`` keys; the smallest of tenant and cluster); a type
  Pod item from ``maxResources.perPod``. ``requests.<res>`` maxima cannot be
  expressed (a LimitRange ``max`` bounds limits and requests together) and are
  noted;
- ``network``: only where a policy in force sets ``rules.networkIsolation``
  (the tenant's, or a ClusterPolicy's that applies to the namespace), for the
  ``defaultDeny`` directions of all of them: **NetworkPolicies**
  ``tenantguard-default-deny`` (every pod), ``tenantguard-allow-tenant``
  (from/to the tenant's rendered namespaces by ``kubernetes.io/metadata.name``,
  every namespace carrying its ``tenantguard.io/tenant`` label when it claims
  namespaces by glob, its ``namespaceSelector``, and its literally named
  ``sharedNamespaces``) and, when Egress is denied and DNS allowed,
  ``tenantguard-allow-dns`` (kube-dns in kube-system, port 53). The tenant's own
  ``networkPolicyPeers`` rule admits all of them.

Without cluster state, namespaces claimed only by globs or by the selector
cannot be rendered (their names are unknown); shared namespaces given as globs
cannot be selected by name. Both are reported as notes, never silently dropped.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from webhook.core.errors import TenantguardError
from webhook.core.plan import SYSTEM_NAMESPACES, CompiledPolicy, PolicySet, TenantConflict
from webhook.core.pod_security import LEVELS
from webhook.core.quantity import canonical, parse_quantity
from webhook.core.selectors import glob_match, is_glob
from webhook.core.validators.maxima import split_key
from webhook.core.validators.network import DNS_NAMESPACE, DNS_POD_LABELS, NAME_LABEL
from webhook.policy import schema

TENANT_LABEL = "tenantguard.io/tenant"
MANAGED_BY = ("app.kubernetes.io/managed-by", "tenantguard")
PSA_PREFIX = "pod-security.kubernetes.io/"

# What can be rendered: the Namespace objects (labels), ResourceQuota, LimitRange, NetworkPolicies.
PARTS: tuple[str, ...] = ("labels", "quota", "limits", "network")

HOW_TO_RENDER_UNKNOWN = "pass --cluster-state FILE or --kubeconfig FILE (or --in-cluster) to render them"


class RenderError(TenantguardError):
    """The policies cannot be rendered into valid objects (exit code 2)."""


@dataclass(slots=True)
class Rendered:
    objects: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def parse_parts(values: Iterable[str]) -> frozenset[str]:
    """The parts named in comma-separated ``values``; ValueError naming what is unknown or missing."""
    names = [part.strip() for value in values for part in value.split(",") if part.strip()]
    unknown = sorted({n for n in names if n not in PARTS})
    if unknown:
        raise ValueError(f"unknown part {', '.join(repr(u) for u in unknown)}; choose from {', '.join(PARTS)}")
    if not names:
        raise ValueError(f"name at least one part: {', '.join(PARTS)}")
    return frozenset(names)


def _meta(name: str, namespace: str | None, tenant: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = {MANAGED_BY[0]: MANAGED_BY[1], TENANT_LABEL: tenant}
    return meta


def _spec(policy: CompiledPolicy) -> schema.ClusterPolicySpec:
    """The policy's validated document (TenantPolicySpec extends ClusterPolicySpec)."""
    assert isinstance(policy.document, schema.ClusterPolicySpec)
    return policy.document


def _rules(policy: CompiledPolicy) -> schema.Rules:
    return _spec(policy).rules


def _applies(policy: CompiledPolicy, namespace: str) -> bool:
    """A cluster policy applies to ``namespace`` unless a namespace-only exemption covers it."""
    for ex in policy.exemptions:
        if ex.namespaces and not ex.users and not ex.groups and any(glob_match(p, namespace) for p in ex.namespaces):
            return False
    return True


# --- Namespace ----------------------------------------------------------------------------------

def _pod_security(policies: list[CompiledPolicy]) -> tuple[str, str] | None:
    best: tuple[int, str, str] | None = None
    for policy in policies:
        ps = _rules(policy).podSecurity
        if ps is None:
            continue
        level, version = ps.level, ps.version
        rank = LEVELS.index(level) if level in LEVELS else 0
        if best is None or rank > best[0]:
            best = (rank, level, version)
    return (best[1], best[2]) if best is not None else None


def _rank(level: str | None) -> int:
    return LEVELS.index(level) if level in LEVELS else -1


def namespace_object(namespace: str, tenant: CompiledPolicy, cluster: list[CompiledPolicy],
                     notes: list[str], existing: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The Namespace with the tenant's labels merged over ``existing`` (its labels in the cluster, if any)."""
    where = f"tenant {tenant.name}: namespace {namespace}"
    ours = _meta(namespace, None, tenant.name)["labels"]
    selector = tenant.match.selector if tenant.match is not None else None
    if selector is not None:
        ours.update(dict(selector.match_labels))
    labels: dict[str, str] = {**(existing or {}), **ours}
    if selector is not None and selector.match_expressions and not selector.matches(labels):
        notes.append(f"{where}: namespaceSelector matchExpressions are not rendered as labels; the namespace "
                     "is claimed by name")
    active = [tenant] + cluster
    ps = _pod_security(active)
    if ps is not None and ps[0] != "privileged":
        level, version = ps
        modes = ["warn", "audit"]
        if any(ex.users or ex.groups for p in active for ex in p.exemptions):
            notes.append(f"{where}: Pod Security admission cannot exempt users or groups, so {level} is set for "
                         "warn/audit only, not enforce")
        else:
            modes.insert(0, "enforce")
        for mode in modes:
            key = f"{PSA_PREFIX}{mode}"
            if _rank(labels.get(key)) > _rank(level):
                notes.append(f"{where}: keeps its stricter {key}={labels[key]} (the policies ask for {level})")
                continue
            labels[key] = level
            labels[f"{key}-version"] = version
    meta = {"name": namespace, "labels": dict(sorted(labels.items()))}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


# --- ResourceQuota ------------------------------------------------------------------------------

Bound = tuple[Decimal, str]  # the value, and the quantity as written (printed canonically)


def _merge_min(target: dict[str, Bound], values: Mapping[str, Any]) -> None:
    for key, raw in values.items():
        value = parse_quantity(raw)
        if key not in target or value < target[key][0]:
            target[key] = (value, canonical(raw))


def quota_hard(tenant: CompiledPolicy, cluster: list[CompiledPolicy]) -> dict[str, Bound]:
    """Per key, the smallest of the tenant's perNamespace and hard and the cluster policies' perNamespace."""
    hard: dict[str, Bound] = {}
    quota = _spec(tenant).quota
    if quota is not None:
        _merge_min(hard, quota.perNamespace)
        _merge_min(hard, quota.hard)
    for policy in cluster:
        cluster_quota = _spec(policy).quota
        if cluster_quota is not None:
            _merge_min(hard, cluster_quota.perNamespace)
    return hard


def resource_quota(namespace: str, tenant: CompiledPolicy, cluster: list[CompiledPolicy]) -> dict[str, Any] | None:
    hard = quota_hard(tenant, cluster)
    if not hard:
        return None
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _meta("tenantguard-quota", namespace, tenant.name),
        "spec": {"hard": {key: text for key, (_, text) in sorted(hard.items())}},
    }


# --- LimitRange ---------------------------------------------------------------------------------

def _defaults(policies: list[CompiledPolicy], section: str) -> dict[str, str]:
    """Resource defaults as the mutators layer them: the first policy that sets a resource wins."""
    out: dict[str, str] = {}
    for policy in policies:
        resources = _spec(policy).defaults.resources
        if resources is None:
            continue
        values = resources.requests if section == "requests" else resources.limits
        for name, value in values.items():
            out.setdefault(name, value)
    return out


def _maxima(policies: list[CompiledPolicy], scope: str, where: str, notes: list[str]) -> dict[str, Bound]:
    out: dict[str, Bound] = {}
    for policy in policies:
        maxima = _rules(policy).maxResources
        if maxima is None:
            continue
        bounds = maxima.perContainer if scope == "perContainer" else maxima.perPod
        for key, raw in bounds.items():
            sections, resource = split_key(key)
            if "limits" not in sections:
                notes.append(f"{where}: maxResources.{scope}.{key} ({policy.name}) bounds requests only, which a "
                             "LimitRange cannot express; left to the webhook")
                continue
            _merge_min(out, {resource: raw})
    return out


def limit_range(namespace: str, tenant: CompiledPolicy, cluster: list[CompiledPolicy],
                notes: list[str]) -> dict[str, Any] | None:
    ordered = [tenant] + cluster  # the tenant's defaults first: the most specific wins
    where = f"tenant {tenant.name}: namespace {namespace}"
    default = _defaults(ordered, "limits")
    default_request = _defaults(ordered, "requests")
    max_container = _maxima(ordered, "perContainer", where, notes)
    max_pod = _maxima(ordered, "perPod", where, notes)
    problems = []
    for name, request in default_request.items():
        limit = default.get(name)
        if limit is not None and parse_quantity(request) > parse_quantity(limit):
            problems.append(f"default request {name} {request} is above the default limit {limit} "
                            "(tenant and cluster defaults layered)")
    for name, (bound, text) in max_container.items():
        for label, values in (("default limit", default), ("default request", default_request)):
            if name in values and parse_quantity(values[name]) > bound:
                problems.append(f"{label} {name} {values[name]} is above maxResources.perContainer {text}")
    if problems:
        raise RenderError(f"{where}: LimitRange would be invalid: " + "; ".join(problems))
    items: list[dict[str, Any]] = []
    container: dict[str, Any] = {"type": "Container"}
    if default:
        container["default"] = {k: canonical(v) for k, v in sorted(default.items())}
    if default_request:
        container["defaultRequest"] = {k: canonical(v) for k, v in sorted(default_request.items())}
    if max_container:
        container["max"] = {k: text for k, (_, text) in sorted(max_container.items())}
    if len(container) > 1:
        items.append(container)
    if max_pod:
        items.append({"type": "Pod", "max": {k: text for k, (_, text) in sorted(max_pod.items())}})
    if not items:
        return None
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": _meta("tenantguard-limits", namespace, tenant.name),
        "spec": {"limits": items},
    }


# --- NetworkPolicies ----------------------------------------------------------------------------

def isolations(tenant: CompiledPolicy, cluster: list[CompiledPolicy]) -> list[schema.NetworkIsolationRule]:
    """The ``rules.networkIsolation`` of every policy in force in a namespace of ``tenant`` (tenant first)."""
    out = []
    for policy in [tenant] + cluster:
        iso = _rules(policy).networkIsolation
        if iso is not None:
            out.append(iso)
    return out


def _directions(isolation: list[schema.NetworkIsolationRule]) -> list[str]:
    wanted = {d for iso in isolation for d in iso.defaultDeny}
    return [d for d in ("Ingress", "Egress") if d in wanted]


def _names_peer(names: Iterable[str]) -> dict[str, Any]:
    return {"namespaceSelector": {"matchExpressions": [
        {"key": NAME_LABEL, "operator": "In", "values": sorted(set(names))}]}}


def tenant_peers(tenant: CompiledPolicy, names: Collection[str], where: str,
                 notes: list[str]) -> list[dict[str, Any]]:
    """The peers of the tenant's allow policy: its rendered ``names``, every namespace carrying its tenant label
    (when it claims namespaces by glob), its namespaceSelector and its literally named shared namespaces."""
    peers: list[dict[str, Any]] = []
    if names:
        peers.append(_names_peer(names))
    if tenant.match is not None and tenant.match.globs:
        peers.append({"namespaceSelector": {"matchLabels": {TENANT_LABEL: tenant.name}}})
    selector = tenant.match.selector if tenant.match is not None else None
    if selector is not None and not selector.is_empty:
        peers.append({"namespaceSelector": selector.as_dict()})
    shared = list(tenant.shared_namespaces)
    literal = [s for s in shared if not is_glob(s)]
    for pattern in shared:
        if is_glob(pattern):
            notes.append(f"{where}: shared namespace pattern {pattern} cannot be selected by name; not rendered")
    if literal:
        peers.append(_names_peer(literal))
    return peers


def network_policies(namespace: str, tenant: CompiledPolicy, isolation: list[schema.NetworkIsolationRule],
                     peers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Default-deny, allow-tenant and (Egress denied, DNS allowed) allow-dns; nothing without isolation."""
    directions = _directions(isolation)
    if not directions:
        return []
    out = [{
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta("tenantguard-default-deny", namespace, tenant.name),
        "spec": {"podSelector": {}, "policyTypes": list(directions)},
    }]
    allow: dict[str, Any] = {"podSelector": {}, "policyTypes": list(directions)}
    if "Ingress" in directions:
        allow["ingress"] = [{"from": copy.deepcopy(peers)}]
    if "Egress" in directions:
        allow["egress"] = [{"to": copy.deepcopy(peers)}]
    out.append({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta("tenantguard-allow-tenant", namespace, tenant.name),
        "spec": allow,
    })
    if "Egress" in directions and all(iso.allowDNS for iso in isolation):
        out.append({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta("tenantguard-allow-dns", namespace, tenant.name),
            "spec": {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [{
                    "to": [{
                        "namespaceSelector": {"matchLabels": {NAME_LABEL: DNS_NAMESPACE}},
                        "podSelector": {"matchLabels": dict(DNS_POD_LABELS)},
                    }],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                }],
            },
        })
    return out


# --- everything ---------------------------------------------------------------------------------

def _claimed_in_state(policies: PolicySet, namespaces: Mapping[str, Mapping[str, str]], wanted: set[str],
                      notes: list[str]) -> tuple[dict[str, list[str]], set[str]]:
    """Tenant name -> the namespaces of the state it claims (sorted), and the namespaces several tenants claim."""
    found: dict[str, list[str]] = {}
    conflicts: set[str] = set()
    for namespace in sorted(namespaces):
        if namespace in SYSTEM_NAMESPACES:
            continue
        try:
            owner = policies.tenant_for(namespace, namespaces[namespace])
        except TenantConflict as exc:
            conflicts.add(namespace)
            if not wanted or wanted & set(exc.tenants):
                notes.append(f"{exc} (the webhook denies every request in it); nothing rendered for it")
            continue
        if owner is not None:
            found.setdefault(owner.name, []).append(namespace)
    return found, conflicts


def _patterns(tenant: CompiledPolicy) -> str:
    """How the tenant claims namespaces other than by name ("" when it does not)."""
    if tenant.match is None:
        return ""
    ways = list(tenant.match.globs)
    if tenant.match.selector is not None:
        ways.append("its namespaceSelector")
    return " or ".join(ways)


def _check_claim(policies: PolicySet, tenant: CompiledPolicy, namespace: str, labels: Mapping[str, str],
                 notes: list[str]) -> None:
    """Note when the rendered labels would make another tenant claim the namespace too."""
    try:
        owner = policies.tenant_for(namespace, labels)
    except TenantConflict as exc:
        notes.append(f"tenant {tenant.name}: namespace {namespace}: with the rendered labels, {exc}")
        return
    if owner is None or owner.name != tenant.name:
        other = owner.name if owner is not None else "no tenant"
        notes.append(f"tenant {tenant.name}: namespace {namespace}: with the rendered labels it resolves to {other}")


def render(policies: PolicySet, tenants: Iterable[str] = (), *,
           namespaces: Mapping[str, Mapping[str, str]] | None = None,
           parts: Iterable[str] = PARTS) -> Rendered:
    """Objects for every tenant namespace: those named literally and, given the cluster's ``namespaces``
    (name -> labels), every one a tenant claims there. Only the ``tenants`` named, when given; only ``parts``."""
    wanted = set(tenants)
    unknown = wanted - {t.name for t in policies.tenants}
    if unknown:
        raise RenderError(f"no TenantPolicy named {', '.join(sorted(unknown))}")
    selected = frozenset(parts)
    if not selected or not selected <= set(PARTS):
        raise RenderError(f"parts must be a non-empty subset of {', '.join(PARTS)}")
    result = Rendered()
    found, conflicts = ({}, set()) if namespaces is None else \
        _claimed_in_state(policies, namespaces, wanted, result.notes)
    for tenant in policies.tenants:
        if wanted and tenant.name not in wanted:
            continue
        literal = set(tenant.match.names) if tenant.match is not None else set()
        names = sorted((literal - conflicts) | set(found.get(tenant.name, ())))
        patterns = _patterns(tenant)
        if namespaces is None and patterns:
            if names:
                result.notes.append(f"tenant {tenant.name}: namespaces matched by {patterns} are not rendered "
                                    f"(their names are unknown without cluster state); {HOW_TO_RENDER_UNKNOWN}")
            else:
                result.notes.append(f"tenant {tenant.name}: claims namespaces only by {patterns}, whose names are "
                                    f"unknown without cluster state, so nothing is rendered; {HOW_TO_RENDER_UNKNOWN}")
        elif not names:
            result.notes.append(f"tenant {tenant.name}: no namespace of the cluster state is claimed by "
                                f"{patterns or 'it'}; nothing rendered")
        if not names:
            continue
        peers: list[dict[str, Any]] | None = None  # computed for the first namespace that is isolated
        for namespace in names:
            cluster = [p for p in policies.cluster if _applies(p, namespace)]
            existing = namespaces.get(namespace) if namespaces is not None else None
            if "labels" in selected:
                ns_object = namespace_object(namespace, tenant, cluster, result.notes, existing)
                _check_claim(policies, tenant, namespace, ns_object["metadata"]["labels"], result.notes)
                result.objects.append(ns_object)
            if "quota" in selected:
                quota = resource_quota(namespace, tenant, cluster)
                if quota is not None:
                    result.objects.append(quota)
            if "limits" in selected:
                limits = limit_range(namespace, tenant, cluster, result.notes)
                if limits is not None:
                    result.objects.append(limits)
            if "network" in selected:
                isolation = isolations(tenant, cluster)
                if isolation and not _directions(isolation):
                    result.notes.append(f"tenant {tenant.name}: namespace {namespace}: networkIsolation denies "
                                        "no direction (defaultDeny is empty); no NetworkPolicy rendered")
                if _directions(isolation) and peers is None:
                    peers = tenant_peers(tenant, names, f"tenant {tenant.name}", result.notes)
                result.objects.extend(network_policies(namespace, tenant, isolation, peers or []))
    result.notes = list(dict.fromkeys(result.notes))
    return result
