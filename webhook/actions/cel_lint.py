"""Lint findings about CEL rules (``tenantguard lint``): what loads but cannot do what it says.

- a variable no validation, messageExpression or matchCondition reads (directly or through
  another variable): it is never evaluated;
- a validation that is always false (every object the rule matches is denied) or always
  true (it never fails), and a matchCondition that is always false (the rule never applies)
  or always true (it filters nothing): detected when the expression does not depend on the
  request at all (``false``, ``1 == 2``, ``'a' in ['b']``, ``true || x``...), when its terms
  ANDed contradict each other (``x == 'a' && x == 'b'``, ``x == 'a' && x != 'a'``,
  ``x == 'a' && x in ['b', 'c']``), or when it compares a size with a negative bound
  (``size(x) < 0`` never holds, ``size(x) >= 0`` always does).
"""

from __future__ import annotations

from webhook.core.cel.analysis import UNKNOWN
from webhook.core.plan import CompiledPolicy, PolicySet
from webhook.core.validators.cel import CelRule
from webhook.policy import schema


def _where(p: CompiledPolicy) -> str:
    return f"{p.source}: {p.kind} {p.name}"


def warnings_for(policies: PolicySet) -> list[str]:
    out: list[str] = []
    for policy in policies.cluster + policies.tenants:
        spec = policy.document
        if not isinstance(spec, schema.ClusterPolicySpec):
            continue
        index = {rule.name: i for i, rule in enumerate(spec.rules.cel)}
        for validator in policy.validators:
            if not isinstance(validator, CelRule):
                continue
            i = index.get(validator.name)
            base = f"{_where(policy)}: spec.rules.cel[{i}]"
            program = validator.program
            names = [name for name, _ in program.variables]
            for name in program.unused_variables:
                out.append(f"{base}.variables[{names.index(name)}]: variable {name} is never used (no validation, "
                           "messageExpression or matchCondition reads it)")
            kinds = ", ".join(sorted(validator.named))
            for name, expr in program.match_conditions:
                if expr.constant is False:
                    out.append(f"{base}.{expr.field}: matchCondition {name} is always false: the rule never applies")
                elif expr.constant is True:
                    out.append(f"{base}.{expr.field}: matchCondition {name} is always true: it filters nothing")
            for validation in program.validations:
                value = validation.expr.constant
                if value is UNKNOWN:
                    continue
                if value is False:
                    out.append(f"{base}.{validation.expr.field}: is always false: every {kinds} the rule matches is "
                               "denied")
                elif value is True:
                    out.append(f"{base}.{validation.expr.field}: is always true: the validation never fails")
    return out
