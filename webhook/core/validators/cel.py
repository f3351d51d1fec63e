"""cel: a tenant's own rules, written in CEL as ValidatingAdmissionPolicy validations.

A rule (``spec.rules.cel[]``) names the kinds it judges and the operations, optional
``matchConditions`` (all must hold for the rule to apply), ``variables`` and
``validations``. Its findings read rule ``cel/<name>``.

Bindings, as ValidatingAdmissionPolicy gives them: ``object``, ``oldObject`` (null on
CREATE), ``request`` (uid, kind, resource, subResource, requestKind, requestResource,
requestSubResource, name, namespace, operation, userInfo {username, groups}, dryRun),
``namespaceObject`` (the request's Namespace as the cluster view knows it: apiVersion,
kind, metadata {name, labels}; null when the view does not know it) and ``variables``.

A rule naming ``Pod`` also judges the pod controllers (Deployment, StatefulSet, DaemonSet,
ReplicaSet, ReplicationController, Job, CronJob) it does not name itself, through their
pod template presented as a Pod (``apiVersion: v1``, ``kind: Pod``, the template's
metadata with the request's namespace, its spec); the finding's ``field`` then points into
the template. A kind the rule names is judged as itself, also on an UPDATE that leaves its
pod template unchanged (which the pod rules skip).

Programs are compiled once per policy load (:mod:`webhook.core.cel.program`). Per request,
the bindings are converted to CEL once (one activation shared by every CEL rule of every
policy, through ``ctx.memo``) and their sizes measured on demand: before a rule runs, each
expression's cost bound is evaluated against them, and an expression over Kubernetes'
budget is never started (a finding with status error, like any evaluation error: under
Enforce it denies, naming the rule and the error; under Warn it warns).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from cel_expr_python import cel

from webhook.core.cel.analysis import PER_CALL_LIMIT, RULE_BUDGET, Sizes, bound, polynomial
from webhook.core.cel.kinds import POD_CONTROLLERS, resource_of
from webhook.core.cel.program import Expr, RuleProgram, Validation, execution_env, runtime_error
from webhook.core.decision import Status, Violation
from webhook.core.plan import MAIN_ONLY, ValidationContext

__all__ = ["CelRule", "bindings"]

# metadata members whose value the answer cache keeps in its key (the others: name, uid, ... are dropped)
_STABLE_METADATA = frozenset({"labels", "annotations", "namespace", "generateName", "ownerReferences", "finalizers"})
_STABLE_REQUEST = frozenset({"kind", "resource", "requestKind", "requestResource", "operation", "namespace",
                             "subResource", "requestSubResource"})
_KEYS = ("&", "?")
_ERROR = cel.Type.ERROR


def _object_volatile(path: tuple[str, ...]) -> bool:
    if not path or path[0] == "*":
        return True
    if path[0] != "metadata":
        return False
    return len(path) == 1 or (path[1] not in _STABLE_METADATA and path[1] not in _KEYS)


def _request_volatile(path: tuple[str, ...]) -> bool:
    if not path:
        return True
    if path[0] in _STABLE_REQUEST:
        return False
    return not (path[0] == "userInfo" and len(path) > 1 and path[1] in ("username", "groups"))


def _format_field(parts: tuple[str, ...]) -> str:
    out = ""
    for part in parts:
        if part.isidentifier():
            out += ("." if out else "") + part
        else:
            out += f'["{part}"]'
    return out


def _gvk(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    api_version = obj.get("apiVersion")
    group, _, version = (api_version if isinstance(api_version, str) else "").rpartition("/")
    kind = obj.get("kind")
    return group, version, kind if isinstance(kind, str) else ""


def bindings(ctx: ValidationContext, as_pod: bool) -> dict[str, Any]:
    """``object``, ``oldObject``, ``request`` and ``namespaceObject`` for one request."""
    request = ctx.request
    obj = ctx.obj
    group, version, kind = _gvk(obj)
    meta = obj.get("metadata")
    name = meta.get("name", "") if isinstance(meta, dict) else ""
    gvk = {"group": group, "version": version, "kind": kind}
    gvr = {"group": group, "version": version, "resource": resource_of(kind)[2]}
    old: Any = request.old_obj
    if as_pod:
        target, old_target = ctx.target, ctx.old_target
        current: Any = _as_pod(target.root, request.namespace) if target is not None else None
        old = _as_pod(old_target.root, request.namespace) if old_target is not None else None
    else:
        current = obj
    labels = ctx.state.namespace_labels(request.namespace)
    namespace = None if labels is None else {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": request.namespace, "labels": dict(labels)}}
    return {
        "object": current,
        "oldObject": old,
        "request": {
            "uid": request.uid, "kind": gvk, "resource": gvr, "subResource": request.subresource,
            "requestKind": gvk, "requestResource": gvr, "requestSubResource": request.subresource,
            "name": name if isinstance(name, str) else "", "namespace": request.namespace,
            "operation": request.operation,
            "userInfo": {"username": request.username, "groups": list(request.groups)},
            "dryRun": request.dry_run,
        },
        "namespaceObject": namespace,
    }


def _as_pod(template: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    meta = template.get("metadata")
    metadata = dict(meta) if isinstance(meta, dict) else {}
    metadata.setdefault("namespace", namespace)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template.get("spec")}


class _Request:
    """One request's bindings as CEL sees them: the activation, the sizes, what was already decided."""

    __slots__ = ("activation", "conditions", "sizes")

    def __init__(self, data: dict[str, Any]):
        self.activation = execution_env().Activation(data)
        self.sizes = Sizes(data)
        self.conditions: dict[int, tuple[bool, list[str]]] = {}


@dataclass(frozen=True, slots=True)
class CelRule:
    name: str
    program: RuleProgram = field(compare=False, repr=False)
    named: frozenset[str] = frozenset({"Pod"})  # the kinds the rule names
    operations: frozenset[str] = frozenset({"CREATE", "UPDATE"})
    rule: str = ""
    kinds: frozenset[str] | None = None
    whole_object_kinds: frozenset[str] = frozenset()  # judged as themselves, also when their template is unchanged
    subresources: frozenset[str] = MAIN_ONLY
    object_volatile: bool = False  # reads what the answer cache leaves out of its key (the object's name, ...)
    request_volatile: bool = False
    dynamic_costs: tuple[tuple[Any, str], ...] = field(default=(), compare=False, repr=False)

    @classmethod
    def build(cls, name: str, kinds: frozenset[str], operations: frozenset[str], program: RuleProgram) -> CelRule:
        judged = set(kinds)
        if "Pod" in kinds:
            judged.update(POD_CONTROLLERS)
        fields = [e.field for _, e in program.match_conditions] + [v.expr.field for v in program.validations] + \
            [v.message_expr.field for v in program.validations if v.message_expr is not None]
        # the bounds that depend on the request's sizes (the others were checked at load); "" is the rule's total
        checks = list(zip(program.costs, fields))
        if len(checks) * PER_CALL_LIMIT > RULE_BUDGET:  # else the per-expression limits imply the rule's budget
            checks.append((program.total_cost, ""))
        costs = [(p, f) for p, f in ((polynomial(c), f) for c, f in checks) if any(factors for _, factors in p)]
        return cls(
            name=name, program=program, named=kinds, operations=operations, rule=f"cel/{name}",
            kinds=frozenset(judged), whole_object_kinds=frozenset(kinds - {"Pod"}),
            object_volatile=any(root == "object" and _object_volatile(p) for root, p in program.reads),
            request_volatile=any(root == "request" and _request_volatile(p) for root, p in program.reads),
            dynamic_costs=tuple(costs),
        )

    def _as_pod(self, kind: str) -> bool:
        return kind not in self.named and kind in POD_CONTROLLERS

    def reads_cluster(self, obj: Mapping[str, Any]) -> bool:
        """A verdict that may not be reused for an identical-looking request: the rule reads what the answer
        cache leaves out of its key (the object's name or uid, the request's uid or dryRun, ...)."""
        kind = obj.get("kind")
        return self.request_volatile or (self.object_volatile and not self._as_pod(kind if isinstance(kind, str)
                                                                                     else ""))

    # -- evaluation --

    def _state(self, ctx: ValidationContext) -> _Request:
        kind = ctx.obj.get("kind")
        as_pod = self._as_pod(kind if isinstance(kind, str) else "")
        key = ("cel", as_pod)
        state = ctx.memo.get(key)
        if state is None:
            state = ctx.memo[key] = _Request(bindings(ctx, as_pod))
        assert isinstance(state, _Request)
        return state

    def _over_budget(self, state: _Request) -> str | None:
        for cost, where in self.dynamic_costs:
            value = bound(cost, state.sizes)
            if where:
                if value > PER_CALL_LIMIT:
                    return (f"{where}: estimated cost {value:,.0f} on this object exceeds the limit of "
                            f"{PER_CALL_LIMIT:,} per expression; not evaluated")
            elif value > RULE_BUDGET:
                return f"estimated cost {value:,.0f} on this object exceeds the rule's budget of {RULE_BUDGET:,}; " \
                       "not evaluated"
        return None

    @staticmethod
    def _eval(expr: Expr, state: _Request) -> tuple[Any, str | None]:
        result = expr.program.eval(state.activation)
        if result.type() == _ERROR:
            return None, runtime_error(result.value())
        return result.value(), None

    def _conditions(self, state: _Request) -> tuple[bool, list[str]]:
        """(every condition held or none was false, the errors met)"""
        key = id(self.program)
        found = state.conditions.get(key)
        if found is None:
            errors: list[str] = []
            matched = True
            for name, expr in self.program.match_conditions:
                value, error = self._eval(expr, state)
                if error is None and not isinstance(value, bool):
                    error = f"must evaluate to bool, got {type(value).__name__}"
                if error is not None:
                    errors.append(f"{expr.field} ({name}) could not be evaluated: {error}")
                elif value is False:
                    matched = False
                    break
            found = state.conditions[key] = (matched, [] if not matched else errors)
        return found

    def applies(self, ctx: ValidationContext) -> bool:
        """False when the operation is not named or a matchCondition is false (the rule is skipped)."""
        if ctx.request.operation not in self.operations:
            return False
        if not self.program.match_conditions:
            return True
        state = self._state(ctx)
        if self._over_budget(state) is not None:
            return True  # validate reports it
        return self._conditions(state)[0]

    def _error(self, ctx: ValidationContext, message: str, path: str | None) -> Violation:
        return Violation(ctx.policy.name, self.rule, message, field=path, enforcement=ctx.policy.enforcement.value,
                         status=Status.ERROR)

    def _field(self, ctx: ValidationContext, validation: Validation | None) -> str | None:
        target = ctx.target
        prefix = target.prefix if target is not None and self._as_pod(target.kind) else ()
        parts = validation.field_path if validation is not None and validation.field_path else ()
        return _format_field((*prefix, *parts)) or None

    def validate(self, ctx: ValidationContext) -> Iterator[Violation]:
        if ctx.request.operation not in self.operations:
            return
        state = self._state(ctx)
        over = self._over_budget(state)
        if over is not None:
            yield self._error(ctx, over, self._field(ctx, None))
            return
        matched, errors = self._conditions(state)
        if not matched:
            return
        if errors:
            for message in errors:
                yield self._error(ctx, message, self._field(ctx, None))
            return
        for validation in self.program.validations:
            value, error = self._eval(validation.expr, state)
            if error is None and not isinstance(value, bool):
                error = f"must evaluate to bool, got {type(value).__name__}"
            if error is not None:
                yield self._error(ctx, f"{validation.expr.field} could not be evaluated: {error}",
                                  self._field(ctx, validation))
                continue
            if value:
                continue
            yield Violation(ctx.policy.name, self.rule, self._message(validation, state),
                            field=self._field(ctx, validation), enforcement=ctx.policy.enforcement.value)

    def _message(self, validation: Validation, state: _Request) -> str:
        fallback = validation.message or f"failed expression: {validation.expr.text.strip()}"
        if validation.message_expr is None:
            return fallback
        value, error = self._eval(validation.message_expr, state)
        if error is not None:
            return f"{fallback} ({validation.message_expr.field} could not be evaluated: {error})"
        if not isinstance(value, str) or not value.strip() or "\n" in value:
            return fallback  # as Kubernetes: an empty or multi-line message falls back to message
        return value
