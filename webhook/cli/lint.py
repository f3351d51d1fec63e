"""`tenantguard lint PATH...`: check policy files.

Errors (exit 2) name file, document and field. Warnings (exit 0 unless
``--strict``) point at policies that load but probably do not do what their
author meant: an exemption without a reason or already expired, a tenant rule
that tries to loosen a cluster rule (it has no effect: both are enforced).
"""

from __future__ import annotations

import argparse
from datetime import date

from webhook.cli.common import load_policy_set
from webhook.core.plan import CompiledPolicy, PolicySet
from webhook.core.pod_security import LEVELS
from webhook.core.validators.qos import RANK as QOS_RANK

NAME = "lint"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="policy files or directories")
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors (exit 2)")


def _where(p: CompiledPolicy) -> str:
    return f"{p.source}: {p.kind} {p.name}"


def warnings_for(policies: PolicySet, today: date) -> list[str]:
    out: list[str] = []
    for p in policies.cluster + policies.tenants:
        for i, ex in enumerate(p.exemptions):
            if not ex.reason:
                out.append(f"{_where(p)}: spec.exemptions[{i}]: no reason given")
            if ex.expires is not None and ex.expires < today:
                out.append(f"{_where(p)}: spec.exemptions[{i}]: expired on {ex.expires}; it no longer applies")
    for t in policies.tenants:
        t_rules = t.spec.get("rules", {})
        for c in policies.cluster:
            c_rules = c.spec.get("rules", {})
            tps, cps = t_rules.get("podSecurity"), c_rules.get("podSecurity")
            if tps and cps and LEVELS.index(tps["level"]) < LEVELS.index(cps["level"]):
                out.append(f"{_where(t)}: spec.rules.podSecurity: {tps['level']} is looser than {cps['level']} in "
                           f"ClusterPolicy {c.name}; the cluster rule still applies")
            tq, cq = t_rules.get("qosClass"), c_rules.get("qosClass")
            if tq and cq and QOS_RANK[tq] < QOS_RANK[cq]:
                out.append(f"{_where(t)}: spec.rules.qosClass: {tq} is looser than {cq} in ClusterPolicy {c.name}; "
                           "the cluster rule still applies")
    return out


def run(args: argparse.Namespace) -> int:
    policies = load_policy_set(args.paths)
    warnings = warnings_for(policies, date.today())
    for w in warnings:
        print(f"warning: {w}")
    n = len(policies.cluster) + len(policies.tenants)
    print(f"{n} polic{'y' if n == 1 else 'ies'} ({len(policies.cluster)} cluster, {len(policies.tenants)} tenant): "
          f"{'ok' if not warnings else f'{len(warnings)} warning(s)'}")
    return 2 if (warnings and args.strict) else 0
