"""Compiling a validated policy document into the core's plan (mutators + validators).

Order is fixed here, once: mutators run labels -> annotations -> resources ->
probes -> securityContext -> affinity -> tolerations -> nodeSelector ->
priorityClassName -> topologySpreadConstraints; validators run podSecurity ->
resources -> probes -> QoS -> maxima -> boundaries -> network isolation -> quota -> CEL rules
(in the order the policy lists them; their programs are compiled here, once per load).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from webhook.core.errors import TenantguardError
from webhook.core.mutators.affinity import AffinityMutator
from webhook.core.mutators.metadata import MetadataMapMutator
from webhook.core.mutators.probes import ProbesMutator
from webhook.core.mutators.resources import ResourcesMutator
from webhook.core.mutators.scheduling import NodeSelectorMutator, PriorityClassMutator, TopologySpreadMutator
from webhook.core.mutators.security_context import SecurityContextMutator
from webhook.core.mutators.security_preset import RestrictedPreset
from webhook.core.mutators.tolerations import TolerationsMutator
from webhook.core.plan import CompiledPolicy, Enforcement, Exemption, Mutator, NamespaceMatch, Validator
from webhook.core.quantity import parse_quantity
from webhook.core.selectors import LabelSelector
from webhook.core.validators.boundaries import (
    AffinityNamespaces,
    AllowedPriorityClasses,
    AllowedRegistries,
    AllowedTolerations,
    NodeSelection,
)
from webhook.core.validators.maxima import MaxResources
from webhook.core.validators.network import NetworkPolicyPeers, RequireDefaultDeny
from webhook.core.validators.pod_security import PodSecurityValidator
from webhook.core.validators.probes import RequireProbes
from webhook.core.validators.qos import QosClassRule
from webhook.core.validators.quota import TenantQuota
from webhook.core.validators.resources import RequireResources
from webhook.policy import schema


def _plain(model: Any) -> Any:
    """A pydantic model (or None) as the plain dict Kubernetes would see, unset fields omitted."""
    if model is None:
        return None
    return model.model_dump(mode="json", exclude_none=True, exclude_unset=True)


def frozen_map(values: Mapping[str, str]) -> Mapping[str, str]:
    """A read-only copy: a plan is shared by every request and never written to (the mutation context
    copies what it puts into an object)."""
    return MappingProxyType(dict(values))


def _quantities(values: dict[str, str]) -> dict[str, Decimal]:
    return {k: parse_quantity(v) for k, v in values.items()}


def compile_mutators(defaults: schema.Defaults) -> list[Mutator]:
    out: list[Mutator] = []
    if defaults.labels:
        out.append(MetadataMapMutator("labels", frozen_map(defaults.labels)))
    if defaults.annotations:
        out.append(MetadataMapMutator("annotations", frozen_map(defaults.annotations)))
    if defaults.resources and (defaults.resources.requests or defaults.resources.limits):
        out.append(ResourcesMutator(frozen_map(defaults.resources.requests), frozen_map(defaults.resources.limits)))
    if defaults.probes:
        probes = {k: v for k, v in _plain(defaults.probes).items() if v}
        if probes:
            out.append(ProbesMutator(probes))
    sc = defaults.securityContext
    if sc is not None:
        if sc.preset == "restricted":
            out.append(RestrictedPreset())
        pod, container = _plain(sc.pod), _plain(sc.container)
        if pod or container:
            out.append(SecurityContextMutator(pod, container))
    if defaults.affinity is not None:
        affinity = {k: v for k, v in _plain(defaults.affinity).items() if v}
        if affinity:
            out.append(AffinityMutator(affinity))
    if defaults.tolerations:
        out.append(TolerationsMutator(tuple(_plain(t) for t in defaults.tolerations)))
    if defaults.nodeSelector:
        out.append(NodeSelectorMutator(frozen_map(defaults.nodeSelector)))
    if defaults.priorityClassName:
        out.append(PriorityClassMutator(defaults.priorityClassName))
    if defaults.topologySpreadConstraints:
        out.append(TopologySpreadMutator(tuple(_plain(c) for c in defaults.topologySpreadConstraints)))
    return out


def compile_validators(spec: schema.ClusterPolicySpec, is_tenant: bool) -> list[Validator]:
    rules = spec.rules
    out: list[Validator] = []
    if rules.podSecurity is not None and rules.podSecurity.level != "privileged":
        out.append(PodSecurityValidator(rules.podSecurity.level, rules.podSecurity.version))
    if rules.requireRequests:
        out.append(RequireResources("requests", tuple(rules.requireRequests)))
    if rules.requireLimits:
        out.append(RequireResources("limits", tuple(rules.requireLimits)))
    if rules.requireProbes:
        out.append(RequireProbes(tuple(rules.requireProbes)))
    if rules.qosClass is not None and rules.qosClass != "BestEffort":
        out.append(QosClassRule(rules.qosClass))
    if rules.maxResources is not None and (rules.maxResources.perContainer or rules.maxResources.perPod):
        out.append(MaxResources(_quantities(rules.maxResources.perContainer),
                                _quantities(rules.maxResources.perPod)))
    if rules.allowedNodeLabels or rules.requiredNodeLabels:
        out.append(NodeSelection({k: tuple(v) for k, v in rules.allowedNodeLabels.items()},
                                 tuple(rules.requiredNodeLabels)))
    if rules.allowedTolerations is not None:
        out.append(AllowedTolerations(tuple(_plain(t) for t in rules.allowedTolerations)))
    if rules.allowedPriorityClasses is not None:
        out.append(AllowedPriorityClasses(tuple(rules.allowedPriorityClasses)))
    if rules.allowedRegistries is not None:
        out.append(AllowedRegistries(tuple(rules.allowedRegistries)))
    if is_tenant:
        out.append(AffinityNamespaces(tuple(rules.sharedNamespaces)))
    isolation = rules.networkIsolation
    if isolation is not None:
        if isolation.defaultDeny:
            out.append(RequireDefaultDeny(tuple(isolation.defaultDeny)))
        if is_tenant:
            out.append(NetworkPolicyPeers(tuple(rules.sharedNamespaces), tuple(isolation.allowedCIDRs),
                                          isolation.allowDNS))
    if spec.quota is not None and (spec.quota.hard or spec.quota.perNamespace):
        out.append(TenantQuota(_quantities(spec.quota.hard), _quantities(spec.quota.perNamespace)))
    if rules.cel:
        out.extend(compile_cel_rules(rules.cel))
    return out


class PolicyCompileError(TenantguardError):
    """Fields of a valid document that cannot be compiled (a CEL expression); ``problems``: (field path, message)."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("; ".join(f"{f}: {m}" for f, m in problems))
        self.problems = problems


def compile_cel_rules(rules: list[schema.CelRule]) -> list[Validator]:
    """One validator per CEL rule, programs compiled now; every expression that does not compile is reported,
    with its field path (``spec.rules.cel[0].validations[1].expression``) and its line and column."""
    # imported here: loading the CEL library takes about 0.1 s, which policies without CEL rules never pay
    from webhook.core.cel.program import CelCompileError, compile_rule
    from webhook.core.validators.cel import CelRule

    out: list[Validator] = []
    problems: list[tuple[str, str]] = []
    for i, rule in enumerate(rules):
        try:
            program = compile_rule(
                [(v.name, v.expression) for v in rule.variables],
                [(c.name, c.expression) for c in rule.matchConditions],
                [(v.expression, v.message, v.messageExpression, v.reason) for v in rule.validations],
            )
        except CelCompileError as exc:
            problems.extend((f"spec.rules.cel[{i}].{where}", message) for where, message in exc.problems)
            continue
        out.append(CelRule.build(rule.name, frozenset(rule.match.kinds), frozenset(rule.match.operations), program))
    if problems:
        raise PolicyCompileError(problems)
    return out


def compile_policy(doc: schema.PolicyDoc, source: str) -> CompiledPolicy:
    spec = doc.spec
    is_tenant = isinstance(doc, schema.TenantPolicyDoc)
    match = None
    if isinstance(doc, schema.TenantPolicyDoc):
        selector = doc.spec.namespaceSelector
        match = NamespaceMatch.build(
            doc.spec.namespaces,
            LabelSelector.from_dict(_plain(selector)) if selector is not None else None,
        )
    return CompiledPolicy(
        name=doc.metadata.name,
        kind=doc.kind,
        source=source,
        enforcement=Enforcement(spec.enforcement),
        match=match,
        mutators=tuple(compile_mutators(spec.defaults)),
        validators=tuple(compile_validators(spec, is_tenant)),
        exemptions=tuple(
            Exemption(tuple(e.namespaces), tuple(e.users), tuple(e.groups), e.reason, e.expires)
            for e in spec.exemptions
        ),
        shared_namespaces=tuple(spec.rules.sharedNamespaces),
        pod_templates=tuple(dict.fromkeys((t.group, t.kind, t.parts()) for t in spec.podTemplates)),
        document=spec,
    )
