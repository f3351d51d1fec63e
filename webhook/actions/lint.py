"""Findings about policy files beyond their schema (``tenantguard lint``).

A set that loads may still not do what its author meant: an exemption that matches every
request and so switches the policy off (webhook.policy.exemptions, which the server logs
too), an exemption without a reason or already expired, a tenant rule that tries to loosen
a cluster rule (it has no effect: both are enforced). Each finding names the file, the
policy and the field; under ``--strict`` every finding is an error.
"""

from __future__ import annotations

from datetime import date

from webhook.core.plan import CompiledPolicy, PolicySet
from webhook.core.pod_security import LEVELS
from webhook.core.validators.qos import RANK as QOS_RANK
from webhook.policy import schema
from webhook.policy.exemptions import exemption_warning


def _where(p: CompiledPolicy) -> str:
    return f"{p.source}: {p.kind} {p.name}"


def _spec(p: CompiledPolicy) -> schema.ClusterPolicySpec:
    assert isinstance(p.document, schema.ClusterPolicySpec)  # a TenantPolicySpec is one too
    return p.document


def warnings_for(policies: PolicySet, today: date) -> list[str]:
    out: list[str] = []
    for p in policies.cluster + policies.tenants:
        for i, ex in enumerate(p.exemptions):
            broad = exemption_warning(p, i)
            if broad is not None:
                out.append(broad)
            if not ex.reason:
                out.append(f"{_where(p)}: spec.exemptions[{i}]: no reason given")
            if ex.expires is not None and ex.expires < today:
                out.append(f"{_where(p)}: spec.exemptions[{i}]: expired on {ex.expires}; it no longer applies")
    for t in policies.tenants:
        t_rules = _spec(t).rules
        for c in policies.cluster:
            c_rules = _spec(c).rules
            tps, cps = t_rules.podSecurity, c_rules.podSecurity
            if tps and cps and LEVELS.index(tps.level) < LEVELS.index(cps.level):
                out.append(f"{_where(t)}: spec.rules.podSecurity: {tps.level} is looser than {cps.level} in "
                           f"ClusterPolicy {c.name}; the cluster rule still applies")
            tq, cq = t_rules.qosClass, c_rules.qosClass
            if tq and cq and QOS_RANK[tq] < QOS_RANK[cq]:
                out.append(f"{_where(t)}: spec.rules.qosClass: {tq} is looser than {cq} in ClusterPolicy {c.name}; "
                           "the cluster rule still applies")
    return out
