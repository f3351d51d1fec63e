"""The engine: one request, the compiled policies, the cluster view -> one Decision.

Fixed step order for every request (as Kyverno's engine fixes it for every rule):

1. skip what is not ours: DELETE/CONNECT, the system namespaces, subresources
   other than ``pods/ephemeralcontainers`` and ``pods/resize`` (each rule lists
   the subresources it judges: a resize can change only resources, so only the
   resources rules and quota run on it, on the new values);
2. resolve the tenant (namespace name, globs, namespace labels);
3. drop the policies whose exemptions match (per policy);
4. mutate a copy (tenant defaults first, so the most specific default wins,
   then the cluster baseline fills what remains); Audit-mode policies only
   report what they would set; a resize is never mutated;
5. validate the mutated object (cluster policies first, then the tenant's);
   each finding is routed by its policy's enforcement: Enforce denies, Warn
   warns, Audit annotates. A tenant cannot loosen a cluster rule because the
   cluster policy's own validators always run with its own enforcement.

What is not judged says why in ``decision.skipped`` (allowed all the same): the operation,
the system namespace, the subresource, every policy's exemption (which entry, its reason), no
policy applying, or, after validation, an object with no pod (template) for the defaults that
no validator judged (a ConfigMap; a Rollout whose template no ``spec.podTemplates`` entry
locates). That last one is derived from what ran, not from a list of kinds: a NetworkPolicy
judged by ``networkPolicyPeers`` or a Service named by a CEL rule is not skipped.

Every rule run leaves a RuleResult (pass, fail, warn, error, skip: webhook.core.decision).
Mutators fail open (a crash skips that default, with a warning and status ``error``);
validators fail closed (a crash is a finding with status ``error`` naming the rule, routed
by its policy's mode like any finding: under Enforce it denies, saying the rule failed).
Given a ``timer`` (the server passes ``time.perf_counter``; the core reads no clock), each
rule's evaluation time is recorded in its result.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from webhook.core.cluster_state import ClusterState
from webhook.core.decision import Decision, RuleResult, Status, Violation
from webhook.core.mutation import MutationContext, working_copy
from webhook.core.patch import PatchRecorder
from webhook.core.plan import (
    SYSTEM_NAMESPACES,
    WITH_EPHEMERAL,
    WITH_RESIZE,
    CompiledPolicy,
    Enforcement,
    Exemption,
    PolicySet,
    TenantConflict,
    ValidationContext,
    Validator,
)
from webhook.core.quantity import QuantityError
from webhook.core.request import AdmissionRequest
from webhook.core.workloads import PodTarget, PodTemplatePath, describe_kind, locate_pod, why_no_pod

JUDGED_SUBRESOURCES = WITH_EPHEMERAL | WITH_RESIZE


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unchanged(target: PodTarget | None, old: PodTarget | None) -> bool:
    """An UPDATE that leaves the pod (template) spec and annotations as they were."""
    if target is None or old is None:
        return False
    return target.spec == old.spec and target.metadata.get("annotations") == old.metadata.get("annotations")


class _TenantCache:
    """namespace -> tenant name, memoised for one evaluation."""

    __slots__ = ("_cache", "_policies", "_state", "index")

    def __init__(self, policies: PolicySet, state: ClusterState):
        self._policies = policies
        self.index = policies.index
        self._state = state
        self._cache: dict[str, str | None] = {}

    def __call__(self, namespace: str) -> str | None:
        if namespace not in self._cache:
            try:
                tenant = self._policies.tenant_for(namespace, self._state.namespace_labels(namespace))
            except TenantConflict:
                tenant = None
            self._cache[namespace] = tenant.name if tenant else None
        return self._cache[namespace]


Timer = Callable[[], float]


def _mutate(request: AdmissionRequest, policies: list[CompiledPolicy], working: dict[str, Any],
            decision: Decision, templates: tuple[PodTemplatePath, ...] = ()) -> None:
    target = locate_pod(working, templates)
    if target is None:
        return
    pod_update = target.kind == "Pod" and request.operation == "UPDATE"
    if pod_update and request.subresource != "ephemeralcontainers":
        return  # a running pod's spec is immutable: defaults apply at creation
    recorder = PatchRecorder()
    ctx = MutationContext(request=request, target=target, recorder=recorder, warnings=decision.notes)
    # the tenant's defaults first (most specific wins), then the cluster baseline
    ordered = [p for p in policies if p.is_tenant] + [p for p in policies if not p.is_tenant]
    for policy in ordered:
        if not policy.mutators:
            continue
        if policy.enforcement is Enforcement.AUDIT:
            _report_audit_mutations(request, policy, working, decision, templates)
            continue
        for mutator in policy.mutators:
            if request.subresource not in mutator.subresources:
                continue
            recorder.policy, recorder.rule = policy.name, mutator.rule
            try:
                mutator.mutate(ctx)
            except Exception as exc:  # noqa: BLE001 - fail open, say so
                decision.notes.append(f"[{policy.name}/{mutator.rule}] default not applied: {exc}")
                decision.results.append(RuleResult(policy.name, mutator.rule, Status.ERROR))
    decision.patch = recorder.ops


def _report_audit_mutations(request: AdmissionRequest, policy: CompiledPolicy, working: dict[str, Any],
                            decision: Decision, templates: tuple[PodTemplatePath, ...] = ()) -> None:
    scratch = working_copy(working, templates)
    target = locate_pod(scratch, templates)
    assert target is not None
    recorder = PatchRecorder(policy=policy.name)
    ctx = MutationContext(request=request, target=target, recorder=recorder, warnings=[])
    for mutator in policy.mutators:
        if request.subresource not in mutator.subresources:
            continue
        recorder.rule = mutator.rule
        try:
            mutator.mutate(ctx)
        except Exception as exc:  # noqa: BLE001 - reported, like any default that cannot be evaluated
            decision.notes.append(f"[{policy.name}/{mutator.rule}] (Audit) default could not be evaluated: {exc}")
            decision.results.append(RuleResult(policy.name, mutator.rule, Status.ERROR))
    for op in recorder.ops:
        decision.notes.append(f"[{policy.name}/{op.rule}] (Audit) would set {op.path} = {_short(op.value)}")


def _same_finding(a: Violation, b: Violation) -> bool:
    return a.rule == b.rule and a.check == b.check and a.message == b.message and a.field == b.field


def _route(policy: CompiledPolicy, found: Violation, decision: Decision) -> Enforcement:
    """File ``found`` under its policy's mode; return the mode it was filed under."""
    mode = policy.enforcement
    if mode is Enforcement.ENFORCE and found.enforcement == Enforcement.WARN.value:
        mode = Enforcement.WARN  # an advisory finding (a rule that lacked the data to judge) never denies
    if mode is Enforcement.ENFORCE:
        # a tenant rule tightening a cluster rule finds the cluster's findings again: say each once
        if not (policy.is_tenant and any(_same_finding(found, v) for v in decision.violations)):
            decision.violations.append(found)
    elif mode is Enforcement.WARN:
        decision.warned.append(found)
    else:
        decision.audit.append(found)
    return mode


def _run(validator: Validator, ctx: ValidationContext, policy: CompiledPolicy) -> list[Violation]:
    """The validator's findings; a crash is one finding with status error, naming the rule and the error."""
    try:
        return list(validator.validate(ctx))
    except QuantityError as exc:  # the object holds a quantity the API server would refuse: a failure
        return [Violation(policy.name, validator.rule, f"invalid quantity: {exc}",
                          enforcement=policy.enforcement.value)]
    except Exception as exc:  # noqa: BLE001 - fail closed, name the rule
        return [Violation(policy.name, validator.rule,
                          f"rule could not be evaluated ({type(exc).__name__}: {exc})",
                          enforcement=policy.enforcement.value, status=Status.ERROR)]


def _applies(validator: Validator, ctx: ValidationContext) -> bool:
    """A validator may say it does not apply to this request (``applies(ctx)``, optional); when that check
    itself fails, the validator runs and reports the failure."""
    applies = getattr(validator, "applies", None)
    if applies is None:
        return True
    try:
        return bool(applies(ctx))
    except Exception:  # noqa: BLE001 - validate() meets the same failure and reports it
        return True


def _status(found: list[Violation], modes: set[Enforcement]) -> Status:
    if not found:
        return Status.PASS
    if any(v.status is Status.ERROR for v in found):
        return Status.ERROR
    return Status.WARN if modes == {Enforcement.WARN} else Status.FAIL


def _judges(validator: Validator, kind: str, target: PodTarget | None, subresource: str) -> bool:
    """``validator`` judges this kind of object (a pod or pod template when it names no kinds) and subresource."""
    kinds = validator.kinds
    return (target is not None if kinds is None else kind in kinds) and subresource in validator.subresources


def _validate(request: AdmissionRequest, policies: list[CompiledPolicy], tenant: CompiledPolicy | None,
              working: dict[str, Any], state: ClusterState, tenant_of: _TenantCache, decision: Decision,
              timer: Timer | None, templates: tuple[PodTemplatePath, ...] = ()) -> None:
    kind = working.get("kind")
    kind = kind if isinstance(kind, str) else ""  # a malformed kind judges like an unknown one
    target = locate_pod(working, templates)
    old_target = locate_pod(request.old_obj, templates) if isinstance(request.old_obj, dict) else None
    only: set[int] | None = None
    if request.operation == "UPDATE" and request.subresource == "" and _unchanged(target, old_target):
        # an UPDATE that leaves the pod (template) as it was is not judged again, except by the rules that judge
        # the object as a whole (a CEL rule naming Deployment judges a scale-up)
        only = {id(v) for p in policies for v in p.validators if kind in getattr(v, "whole_object_kinds", ())}
        if not only:
            return
    memo: dict[Any, Any] = {}
    for policy in policies:
        ctx = ValidationContext(
            request=request, obj=working, target=target, old_target=old_target, policy=policy, tenant=tenant,
            state=state, tenant_of=tenant_of, tenants=tenant_of.index, memo=memo,
        )
        for validator in policy.validators:
            if only is not None and id(validator) not in only:
                continue
            if not _judges(validator, kind, target, request.subresource):
                decision.results.append(RuleResult(policy.name, validator.rule, Status.SKIP))
                continue
            started = timer() if timer is not None else 0.0
            if not _applies(validator, ctx):  # e.g. a CEL rule whose matchConditions do not hold
                seconds = timer() - started if timer is not None else None
                decision.results.append(RuleResult(policy.name, validator.rule, Status.SKIP, seconds))
                continue
            found = _run(validator, ctx, policy)
            seconds = timer() - started if timer is not None else None
            modes = {_route(policy, v, decision) for v in found}
            decision.results.append(RuleResult(policy.name, validator.rule, _status(found, modes), seconds,
                                               len(found)))


def evaluate(request: AdmissionRequest, policies: PolicySet, state: ClusterState, *,
             mutate: bool = True, validate: bool = True, timer: Timer | None = None) -> Decision:
    """Evaluate one request. ``mutate``/``validate`` select the phases (the webhook's two endpoints);
    ``timer`` (e.g. ``time.perf_counter``) times each rule."""
    decision = Decision()
    obj = request.obj
    if request.operation not in ("CREATE", "UPDATE") or not isinstance(obj, dict):
        decision.skipped = f"operation {request.operation} is not judged"
        return decision
    if request.namespace in SYSTEM_NAMESPACES:
        decision.skipped = f"namespace {request.namespace} is a system namespace"
        return decision
    if request.subresource not in JUDGED_SUBRESOURCES:
        decision.skipped = f"subresource {request.subresource} is not judged"
        return decision
    try:
        tenant = policies.tenant_for(request.namespace, state.namespace_labels(request.namespace))
    except TenantConflict as exc:
        decision.allowed = False
        decision.violations.append(Violation("tenantguard", "tenantResolution", str(exc)))
        return decision
    decision.tenant = tenant.name if tenant else None
    candidates = list(policies.cluster) + ([tenant] if tenant else [])
    exempted = [(p, p.exempts(request)) for p in candidates]
    active = [p for p, exemption in exempted if exemption is None]
    decision.policies = tuple(p.name for p in active)
    if not active:
        decision.skipped = _exempt(exempted) if candidates else \
            f"no policy applies in namespace {request.namespace or '(cluster scope)'}"
        return decision
    templates = policies.pod_templates
    # only mutation writes, into a copy unless the caller handed the object over; validation alone
    # judges the object as received, without a copy
    working = working_copy(obj, templates) if mutate and not request.writable else obj
    if mutate:
        _mutate(request, active, working, decision, templates)
    decision.mutated = working
    if validate:
        _validate(request, active, tenant, working, state, _TenantCache(policies, state), decision, timer,
                  templates)
        if all(r.status is Status.SKIP for r in decision.results) and locate_pod(working, templates) is None:
            decision.skipped = _not_judged(working, active, request.subresource, templates)
    decision.allowed = not decision.violations
    return decision


def _exempt(exempted: list[tuple[CompiledPolicy, Exemption | None]]) -> str:
    """Which exemption of each policy matched: ``exempt: cluster-baseline spec.exemptions[0] (system components)``."""
    parts = []
    for policy, exemption in exempted:
        if exemption is None:
            continue
        index = policy.exemptions.index(exemption)
        parts.append(f"{policy.name} spec.exemptions[{index}] ({exemption.reason or 'no reason given'})")
    return "exempt: " + "; ".join(parts)


def _not_judged(obj: dict[str, Any], active: list[CompiledPolicy], subresource: str,
                templates: tuple[PodTemplatePath, ...]) -> str:
    """Why no rule judged ``obj``, which holds no pod (template) for the defaults: no rule names its kind, or
    those that do did not apply (e.g. a CEL rule's matchConditions)."""
    kind = obj.get("kind")
    kind = kind if isinstance(kind, str) else ""
    named = [f"{p.name}/{v.rule}" for p in active for v in p.validators if _judges(v, kind, None, subresource)]
    if named:
        return f"{describe_kind(obj)}: no rule applied ({', '.join(named)} did not match this object)"
    return why_no_pod(obj, templates)
