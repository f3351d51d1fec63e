"""Native Kubernetes objects from the policies: the API server's own admission as the atomic backstop.

The webhook rejects early and precisely from its usage view, but it cannot be
atomic across replicas (DESIGN section 5). ``tenantguard render`` therefore
emits, for every tenant namespace a TenantPolicy names literally:

- **Namespace** labelled ``tenantguard.io/tenant: <tenant>``, the tenant's
  ``namespaceSelector.matchLabels`` (so selector tenants claim it too) and the
  Pod Security admission labels of the strictest ``podSecurity`` level in
  force (``enforce`` only when no exemption names users or groups, which
  Pod Security admission could not honour; ``warn`` and ``audit`` always);
- **ResourceQuota** ``tenantguard-quota``: per key the smallest of the
  tenant's ``quota.perNamespace``, its ``quota.hard`` and the cluster policies'
  ``quota.perNamespace``. A native quota is per namespace and cannot share one
  budget across namespaces; putting the tenant-wide ``hard`` on each namespace
  keeps it a backstop that never refuses what the webhook admits (a split of
  ``hard`` / N would refuse legitimate uneven usage), while bounding what any
  single namespace can take if the webhook is bypassed or two replicas race;
- **LimitRange** ``tenantguard-limits`` (type Container): ``default`` from the
  limit defaults and ``defaultRequest`` from the request defaults (the
  tenant's, then the cluster's for resources the tenant leaves out, as the
  mutators layer them), ``max`` from ``maxResources.perContainer`` (``cpu`` or
  ``limits.cpu`` keys; the smallest of tenant and cluster); a type Pod item
  from ``maxResources.perPod``. ``requests.<res>`` maxima cannot be expressed
  (a LimitRange ``max`` bounds limits and requests together) and are noted;
- **NetworkPolicies**: ``tenantguard-default-deny`` (every pod, the
  ``networkIsolation.defaultDeny`` directions, Ingress when the tenant sets no
  ``networkIsolation``), ``tenantguard-allow-tenant`` (from/to the tenant's
  named namespaces by ``kubernetes.io/metadata.name``, its
  ``namespaceSelector``, and its literally named ``sharedNamespaces``) and,
  when Egress is denied and DNS allowed, ``tenantguard-allow-dns`` (kube-dns in
  kube-system, port 53). The tenant's own ``networkPolicyPeers`` rule admits
  all of them.

Namespaces claimed only by globs or by the selector cannot be rendered (their
names are unknown); shared namespaces given as globs cannot be selected by
name. Both are reported as notes, never silently dropped.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from webhook.core.plan import CompiledPolicy, PolicySet
from webhook.core.pod_security import LEVELS
from webhook.core.quantity import canonical, parse_quantity
from webhook.core.selectors import glob_match, is_glob
from webhook.core.validators.maxima import split_key
from webhook.core.validators.network import DNS_NAMESPACE, DNS_POD_LABELS, NAME_LABEL

TENANT_LABEL = "tenantguard.io/tenant"
MANAGED_BY = ("app.kubernetes.io/managed-by", "tenantguard")
PSA_PREFIX = "pod-security.kubernetes.io/"


class RenderError(Exception):
    """The policies cannot be rendered into valid objects (exit code 2)."""


@dataclass(slots=True)
class Rendered:
    objects: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _meta(name: str, namespace: str | None, tenant: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = {MANAGED_BY[0]: MANAGED_BY[1], TENANT_LABEL: tenant}
    return meta


def _spec(policy: CompiledPolicy) -> Mapping[str, Any]:
    return policy.spec or {}


def _rules(policy: CompiledPolicy) -> Mapping[str, Any]:
    return _spec(policy).get("rules") or {}


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
        ps = _rules(policy).get("podSecurity")
        if not isinstance(ps, Mapping):
            continue
        level, version = str(ps.get("level")), str(ps.get("version", "latest"))
        rank = LEVELS.index(level) if level in LEVELS else 0
        if best is None or rank > best[0]:
            best = (rank, level, version)
    return (best[1], best[2]) if best is not None else None


def namespace_object(namespace: str, tenant: CompiledPolicy, cluster: list[CompiledPolicy],
                     notes: list[str]) -> dict[str, Any]:
    meta = _meta(namespace, None, tenant.name)
    selector = tenant.match.selector if tenant.match is not None else None
    if selector is not None:
        meta["labels"].update(dict(selector.match_labels))
        if selector.match_expressions:
            notes.append(f"tenant {tenant.name}: namespace {namespace}: namespaceSelector matchExpressions are not "
                         "rendered as labels; the namespace is claimed by name")
    active = [tenant] + cluster
    ps = _pod_security(active)
    if ps is not None and ps[0] != "privileged":
        level, version = ps
        modes = ["warn", "audit"]
        if any(ex.users or ex.groups for p in active for ex in p.exemptions):
            notes.append(f"tenant {tenant.name}: namespace {namespace}: Pod Security admission cannot exempt "
                         f"users or groups, so {level} is set for warn/audit only, not enforce")
        else:
            modes.insert(0, "enforce")
        for mode in modes:
            meta["labels"][f"{PSA_PREFIX}{mode}"] = level
            meta["labels"][f"{PSA_PREFIX}{mode}-version"] = version
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
    quota = _spec(tenant).get("quota") or {}
    _merge_min(hard, quota.get("perNamespace") or {})
    _merge_min(hard, quota.get("hard") or {})
    for policy in cluster:
        _merge_min(hard, (_spec(policy).get("quota") or {}).get("perNamespace") or {})
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
        resources = (_spec(policy).get("defaults") or {}).get("resources") or {}
        for name, value in (resources.get(section) or {}).items():
            out.setdefault(name, value)
    return out


def _maxima(policies: list[CompiledPolicy], scope: str, where: str, notes: list[str]) -> dict[str, Bound]:
    out: dict[str, Bound] = {}
    for policy in policies:
        bounds = (_rules(policy).get("maxResources") or {}).get(scope) or {}
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

def _isolation(tenant: CompiledPolicy) -> Mapping[str, Any]:
    iso = _rules(tenant).get("networkIsolation")
    return iso if isinstance(iso, Mapping) else {}


def _directions(tenant: CompiledPolicy) -> list[str]:
    iso = _rules(tenant).get("networkIsolation")
    if isinstance(iso, Mapping) and iso.get("defaultDeny"):
        return [d for d in ("Ingress", "Egress") if d in iso["defaultDeny"]]
    return ["Ingress"]


def _names_peer(names: Iterable[str]) -> dict[str, Any]:
    return {"namespaceSelector": {"matchExpressions": [
        {"key": NAME_LABEL, "operator": "In", "values": sorted(set(names))}]}}


def tenant_peers(tenant: CompiledPolicy, where: str, notes: list[str]) -> list[dict[str, Any]]:
    peers: list[dict[str, Any]] = []
    names = sorted(tenant.match.names) if tenant.match is not None else []
    if names:
        peers.append(_names_peer(names))
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
    if tenant.match is not None and tenant.match.globs:
        how = "only through its namespaceSelector" if selector is not None else "by no rendered peer"
        notes.append(f"{where}: namespaces matched by {', '.join(tenant.match.globs)} are not rendered and are "
                     f"reached {how}; name them in spec.namespaces to render them")
    return peers


def network_policies(namespace: str, tenant: CompiledPolicy, notes: list[str],
                     peers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    directions = _directions(tenant)
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
    if "Egress" in directions and _isolation(tenant).get("allowDNS", True):
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

def render(policies: PolicySet, tenants: Iterable[str] = ()) -> Rendered:
    """Objects for every tenant namespace named literally (only the ``tenants`` named, when given)."""
    wanted = set(tenants)
    unknown = wanted - {t.name for t in policies.tenants}
    if unknown:
        raise RenderError(f"no TenantPolicy named {', '.join(sorted(unknown))}")
    result = Rendered()
    for tenant in policies.tenants:
        if wanted and tenant.name not in wanted:
            continue
        names = sorted(tenant.match.names) if tenant.match is not None else []
        if not names:
            result.notes.append(f"tenant {tenant.name}: claims no namespace by name (globs or selector only); "
                                "nothing rendered")
            continue
        peers = tenant_peers(tenant, f"tenant {tenant.name}", result.notes)
        for namespace in names:
            cluster = [p for p in policies.cluster if _applies(p, namespace)]
            result.objects.append(namespace_object(namespace, tenant, cluster, result.notes))
            quota = resource_quota(namespace, tenant, cluster)
            if quota is not None:
                result.objects.append(quota)
            limits = limit_range(namespace, tenant, cluster, result.notes)
            if limits is not None:
                result.objects.append(limits)
            result.objects.extend(network_policies(namespace, tenant, result.notes, peers))
    result.notes = list(dict.fromkeys(result.notes))
    return result
