"""Findings about policy files beyond their schema (``tenantguard lint``).

A set that loads may still not do what its author meant: an exemption that matches every
request and so switches the policy off (webhook.policy.exemptions, which the server logs
too), an exemption without a reason or already expired, a tenant rule that tries to loosen
a cluster rule (it has no effect: both are enforced), a CEL variable nothing reads or a CEL
expression that is always false or true (webhook.actions.cel_lint), defaults that contradict the rules
(webhook.policy.contradictions; probe defaults on ports the rules refuse: :func:`probe_port_findings`).
Each finding names the file, the policy and the field; under ``--strict`` every finding is an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path
from typing import Any

from webhook.actions.cel_lint import warnings_for as cel_warnings
from webhook.actions.dry_run import findings
from webhook.core.decision import Violation
from webhook.core.mutators.probes import probe_port
from webhook.core.pipeline import judge
from webhook.core.plan import CompiledPolicy, PolicySet
from webhook.core.pod_security import LEVELS
from webhook.core.request import from_manifest
from webhook.core.validators.qos import RANK as QOS_RANK
from webhook.core.workloads import PROBE_FIELDS
from webhook.policy import schema
from webhook.policy.contradictions import Finding, Layer, contradictions
from webhook.policy.exemptions import exemption_warning
from webhook.policy.loader import read_documents
from webhook.views.memory import InMemoryClusterState


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
    out.extend(cel_warnings(policies))
    return out


def contradiction_findings(policies: PolicySet, paths: Iterable[str | Path]) -> list[Finding]:
    """Policies that cannot work as written (webhook.policy.contradictions): defaults that break the rules of
    their own or the other layer, registries that match no image (errors), unusual Pod Security versions
    (warnings); each named by file and document, read again from ``paths``."""
    located: dict[tuple[str, str], str] = {}
    docs, _ = read_documents(paths)
    for doc in docs:
        raw = doc.raw if isinstance(doc.raw, dict) else {}
        meta = raw.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        located.setdefault((str(raw.get("kind")), str(name)), f"{doc.source}: document {doc.index}")

    def where(p: CompiledPolicy) -> str:
        return located.get((p.kind, p.name), _where(p))

    def layer(p: CompiledPolicy) -> Layer:
        return Layer(p.kind, p.name, where(p), _spec(p))

    found = contradictions([layer(p) for p in policies.cluster], [layer(p) for p in policies.tenants])
    for finding in probe_port_findings(policies, where):
        if finding not in found:
            found.append(finding)
    return found


# --- probe defaults on ports the rules refuse: judged, not read ---
#
# A probe default is added only to containers that declare its port (webhook.core.mutators.probes). Whether a
# rule refuses that port (a CEL rule, or anything else a policy can say) is not read from the rules: two pods
# are judged, exactly as a dry-run judges them, in a namespace of the scope, both with one container and no
# resources of its own, one declaring the probe's port, the other no port. What only the first one is found
# guilty of (the port, or the probe the default adds because of it) is what the default runs into: it is added
# only to pods that are then refused.

_SAMPLE_LABEL_VALUE = "tenantguard-lint"


def _sample_namespace(policies: PolicySet, tenant: CompiledPolicy | None) -> tuple[str, dict[str, str]] | None:
    """A namespace (name, labels) that ``tenant`` claims (None: that no tenant claims); None when none can be
    made up from its names, globs and selector."""
    candidates: list[tuple[str, dict[str, str]]] = []
    if tenant is None:
        candidates.append(("tenantguard-lint-unclaimed", {}))
    elif tenant.match is not None:
        candidates += [(name, {}) for name in sorted(tenant.match.names)]
        candidates += [(re.sub(r"\[[^]]*\]|[*?]", "x", glob), {}) for glob in tenant.match.globs]
        selector = tenant.match.selector
        if selector is not None:
            labels = dict(selector.match_labels)
            for key, op, values in selector.match_expressions:
                if op == "In" and values:
                    labels.setdefault(key, values[0])
                elif op == "Exists":
                    labels.setdefault(key, _SAMPLE_LABEL_VALUE)
            candidates.append((f"{tenant.name}-lint"[:63], labels))
    for name, labels in candidates:
        if policies.tenant_for(name, labels) is tenant:
            return name, labels
    return None


_NEUTRAL_PROBE = {"exec": {"command": ["true"]}}


def _probe_pod(namespace: str, port: int | str | None, others: Iterable[str] = ()) -> dict[str, Any]:
    """The pod of one side: its container declares ``port`` (None: no port) and carries an exec probe of each
    kind of ``others`` already (so that only the default under test is added)."""
    container: dict[str, Any] = {"name": "app", "image": "app:1"}
    container.update((PROBE_FIELDS[kind], dict(_NEUTRAL_PROBE)) for kind in others)
    if port is not None:
        number = int(port) if isinstance(port, int) or str(port).isdigit() else None
        container["ports"] = [{"containerPort": number} if number is not None else
                              {"name": str(port), "containerPort": 8080}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lint-probe", "namespace": namespace},
            "spec": {"containers": [container]}}


def _judged(pod: dict[str, Any], namespace: str, labels: dict[str, str], policies: PolicySet,
            today: date) -> list[Violation]:
    state = InMemoryClusterState()
    state.add_namespace(namespace, labels)
    return findings(judge(from_manifest(pod, default_namespace=namespace, today=today), policies, state))


def _finding_key(v: Violation) -> tuple[Any, ...]:
    return (v.policy, v.rule, v.check, v.enforcement, v.message)


def probe_port_findings(policies: PolicySet, where: Callable[[CompiledPolicy], str], *,
                        today: date | None = None) -> list[Finding]:
    """Probe defaults a pod only gets by declaring a port the rules then refuse (errors under Enforce, warnings
    under Warn and Audit), reported at the default, once per policy, probe and rule."""
    today = today or date.today()
    out: list[Finding] = []
    scopes: list[tuple[CompiledPolicy | None, list[CompiledPolicy]]] = [(None, list(policies.cluster))]
    scopes += [(t, [t, *policies.cluster]) for t in policies.tenants]
    for tenant, layers in scopes:
        chosen: dict[str, tuple[CompiledPolicy, dict[str, Any]]] = {}  # probe kind -> the default that wins
        for p in layers:
            probes = _spec(p).defaults.probes
            if p.enforcement.value == "Audit" or probes is None:
                continue
            for kind in PROBE_FIELDS:
                probe = getattr(probes, kind)
                if probe is not None and kind not in chosen:
                    chosen[kind] = (p, probe.model_dump(mode="json", exclude_none=True))
        ported = {kind: (p, port) for kind, (p, probe) in chosen.items() if (port := probe_port(probe)) is not None}
        sample = _sample_namespace(policies, tenant) if ported else None
        if sample is None:
            continue
        namespace, labels = sample
        for kind, (p, port) in ported.items():
            others = [k for k in PROBE_FIELDS if k != kind]  # already set: only this default can be added
            without = {_finding_key(v) for v in
                       _judged(_probe_pod(namespace, None, others), namespace, labels, policies, today)}
            with_port = _judged(_probe_pod(namespace, port, others), namespace, labels, policies, today)
            out.extend(_probe_finding(p, where(p), tenant, namespace, kind, port, v)
                       for v in with_port if _finding_key(v) not in without)
    return list(dict.fromkeys(out))


def _probe_finding(p: CompiledPolicy, at: str, tenant: CompiledPolicy | None, namespace: str, kind: str,
                   port: int | str, v: Violation) -> Finding:
    verb = {"Enforce": "denied", "Warn": "warned about", "Audit": "reported (Audit)"}[v.enforcement]
    declares = f"declare port {port}" if isinstance(port, int) or str(port).isdigit() else f"name a port {port}"
    scope = f"in namespaces of TenantPolicy {tenant.name} ({namespace})" if tenant is not None else \
        "in namespaces no tenant claims"
    override = f", give TenantPolicy {tenant.name} a {kind} probe default of its own (the tenant's wins)" \
        if tenant is not None and tenant is not p else ""
    return Finding(
        "error" if v.enforcement == "Enforce" else "warning", at, f"spec.defaults.probes.{kind}",
        f"the default {kind} probe on port {port} is added only to containers that {declares}, and {scope} a pod "
        f"whose container does is {verb}: {v.summary()}; write a probe the rules allow (on the port your apps "
        f"serve health checks on){override}, or change the rule")
