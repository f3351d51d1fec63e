"""ValidatingAdmissionPolicies from the policies' CEL rules (``tenantguard render --vap``).

Each CEL rule becomes ValidatingAdmissionPolicy + ValidatingAdmissionPolicyBinding pairs
(``admissionregistration.k8s.io/v1``) that the API server evaluates in-process: the same
expressions, enforced even while the webhook is down, bypassed or not yet installed.

- **Names**: ``tenantguard-<policy>-<rule>``, plus ``-controllers`` and ``-cronjobs`` for the
  pod-controller variants. Annotations ``tenantguard.io/policy`` and ``tenantguard.io/rule``
  say where each came from.
- **Kinds**: ``matchConstraints.resourceRules`` lists the kinds the rule names (``Pod`` as
  ``pods``). A rule naming ``Pod`` also judges the pod controllers it does not name, as the
  webhook does, through their template: one policy for Deployments, StatefulSets,
  DaemonSets, ReplicaSets, ReplicationControllers and Jobs whose expressions read
  ``object.spec.template`` where the rule reads ``object`` (and ``oldObject.spec.template``,
  null on CREATE), one for CronJobs (``object.spec.jobTemplate.spec.template``): the way
  Kubernetes users write pod-controller variants of a pod rule. The template carries no
  ``apiVersion``/``kind`` and usually no namespace, where the webhook presents it as a
  namespaced Pod.
- **Where**: a TenantPolicy's binding selects the namespaces labelled
  ``tenantguard.io/tenant: <tenant>``, the label ``tenantguard render`` (``labels`` part)
  puts on every tenant namespace; a ClusterPolicy's every namespace but ``kube-system``.
  Exemptions become a matchCondition (``tenantguard-exemptions``): namespaces and users
  (globs as RE2 patterns), groups, ANDed within an entry as the webhook does. An expired
  entry is left out; one with an expiry date is rendered with a note (a policy has no clock).
- **Mode**: ``validationActions`` Enforce -> [Deny], Warn -> [Warn], Audit -> [Audit];
  ``failurePolicy: Fail``, so an evaluation error is enforced by the same actions (under
  Enforce it denies, as in the webhook).
- **Updates**: like the webhook, a Pod (or pod template) UPDATE that leaves the spec and
  annotations unchanged is not judged (matchCondition ``tenantguard-spec-changed``).

What differs from the webhook: the API server meters cost while evaluating (the webhook
bounds it before evaluating), and its ``namespaceObject`` is the whole Namespace.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from webhook.actions.render import MANAGED_BY, TENANT_LABEL, RenderError, Rendered
from webhook.core.cel.kinds import KINDS, POD_CONTROLLERS
from webhook.core.cel.rewrite import replace_roots
from webhook.core.cluster_state import NAME_LABEL
from webhook.core.plan import SYSTEM_NAMESPACES, CompiledPolicy, Enforcement, PolicySet
from webhook.core.selectors import is_glob
from webhook.core.workloads import template_prefix
from webhook.policy import schema

__all__ = ["ACTIONS", "extra_kinds", "render_vap"]

API_VERSION = "admissionregistration.k8s.io/v1"
ACTIONS = {Enforcement.ENFORCE: ["Deny"], Enforcement.WARN: ["Warn"], Enforcement.AUDIT: ["Audit"]}
POLICY_ANNOTATION = "tenantguard.io/policy"
RULE_ANNOTATION = "tenantguard.io/rule"
# what the chart's webhooks intercept without webhooks.extraKinds
INTERCEPTED = frozenset({"Pod", *POD_CONTROLLERS, "NetworkPolicy"})


def _cel_string(value: str) -> str:
    return json.dumps(value)


def _cel_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(_cel_string(v) for v in values) + "]"


def glob_regex(pattern: str) -> str:
    """A shell glob (``*``, ``?``, ``[...]``, ``[!...]``) as an anchored RE2 pattern."""
    out, i = ["^"], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[" and (end := pattern.find("]", i + 2 if pattern[i + 1:i + 2] in ("!", "]") else i + 1)) != -1:
            body = pattern[i + 1:end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            body = body.replace("\\", "\\\\").replace("]", "\\]").replace("[", "\\[")
            out.append("[" + ("^" if negate else "") + body + "]")
            i = end
        else:
            out.append("\\" + c if not (c.isalnum() or c in "-_/:@") else c)
        i += 1
    out.append("$")
    return "".join(out)


def _match(value: str, patterns: Sequence[str]) -> str:
    literal = [p for p in patterns if not is_glob(p)]
    globs = [p for p in patterns if is_glob(p)]
    parts = []
    if literal:
        parts.append(f"{value} in {_cel_list(literal)}")
    parts += [f"{value}.matches({_cel_string(glob_regex(p))})" for p in globs]
    return parts[0] if len(parts) == 1 else "(" + " || ".join(parts) + ")"


def exemptions_condition(policy: CompiledPolicy, today: date | None, notes: list[str]) -> dict[str, str] | None:
    """The matchCondition that is false for the requests ``policy`` exempts (None when it exempts none)."""
    entries = []
    for i, ex in enumerate(policy.exemptions):
        where = f"{policy.kind} {policy.name}: spec.exemptions[{i}]"
        if ex.expires is not None:
            if today is not None and today > ex.expires:
                notes.append(f"{where}: expired on {ex.expires}; not rendered")
                continue
            notes.append(f"{where}: expires on {ex.expires}, which a ValidatingAdmissionPolicy cannot express; "
                         "render again after that date")
        terms = []
        if ex.namespaces:
            terms.append(_match("request.namespace", ex.namespaces))
        if ex.users:
            terms.append(_match("request.userInfo.username", ex.users))
        if ex.groups:
            terms.append(f"(has(request.userInfo.groups) && request.userInfo.groups.exists(g, g in "
                         f"{_cel_list(ex.groups)}))")
        if terms:
            entries.append(terms[0] if len(terms) == 1 else "(" + " && ".join(terms) + ")")
    if not entries:
        return None
    return {"name": "tenantguard-exemptions", "expression": "!(" + " || ".join(entries) + ")"}


def _spec_changed(prefix: tuple[str, ...], pods_only: bool) -> dict[str, str]:
    """The webhook does not judge again a pod (template) UPDATE that leaves spec and annotations as they were."""
    def at(root: str) -> str:
        return ".".join((root, *prefix))

    annotations = (f"{at('object')}.metadata.?annotations.orValue({{}}) != "
                   f"{at('oldObject')}.metadata.?annotations.orValue({{}})")
    expression = (f"request.operation != 'UPDATE' || " + ("request.kind.kind != 'Pod' || " if pods_only else "")
                  + f"{at('object')}.spec != {at('oldObject')}.spec || {annotations}")
    return {"name": "tenantguard-spec-changed", "expression": expression}


def _resource_rules(kinds: Iterable[str], operations: list[str]) -> list[dict[str, Any]]:
    grouped: dict[tuple[str, str], list[str]] = {}
    for kind in kinds:
        group, version, resource = KINDS[kind]
        grouped.setdefault((group, version), []).append(resource)
    return [{"apiGroups": [group], "apiVersions": [version], "operations": list(operations),
             "resources": resources, "scope": "Namespaced"}
            for (group, version), resources in grouped.items()]


def _name(*parts: str) -> str:
    name = "-".join(("tenantguard", *parts))
    if len(name) <= 253:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return name[:242] + "-" + digest


def _expressions(rule: schema.CelRule, roots: dict[str, str] | None) -> dict[str, Any]:
    def fix(text: str) -> str:
        return replace_roots(text, roots) if roots else text

    out: dict[str, Any] = {}
    if rule.variables:
        out["variables"] = [{"name": v.name, "expression": fix(v.expression)} for v in rule.variables]
    validations = []
    for v in rule.validations:
        item: dict[str, Any] = {"expression": fix(v.expression)}
        if v.message is not None:
            item["message"] = v.message
        if v.messageExpression is not None:
            item["messageExpression"] = fix(v.messageExpression)
        if v.reason is not None:
            item["reason"] = v.reason
        validations.append(item)
    out["validations"] = validations
    return out


def _binding_selector(policy: CompiledPolicy) -> dict[str, Any]:
    if policy.is_tenant:
        return {"matchLabels": {TENANT_LABEL: policy.name}}
    return {"matchExpressions": [{"key": NAME_LABEL, "operator": "NotIn", "values": sorted(SYSTEM_NAMESPACES)}]}


def _pair(policy: CompiledPolicy, rule: schema.CelRule, suffix: str, kinds: list[str],
          conditions: list[dict[str, str]], roots: dict[str, str] | None) -> list[dict[str, Any]]:
    name = _name(policy.name, rule.name, *([suffix] if suffix else []))
    meta: dict[str, Any] = {
        "name": name,
        "labels": {MANAGED_BY[0]: MANAGED_BY[1]},
        "annotations": {POLICY_ANNOTATION: f"{policy.kind}/{policy.name}", RULE_ANNOTATION: f"cel/{rule.name}"},
    }
    user_conditions = [{"name": c.name, "expression": replace_roots(c.expression, roots) if roots else c.expression}
                       for c in rule.matchConditions]
    spec: dict[str, Any] = {
        "failurePolicy": "Fail",
        "matchConstraints": {"matchPolicy": "Equivalent",
                             "resourceRules": _resource_rules(kinds, list(rule.match.operations))},
    }
    if conditions or user_conditions:
        spec["matchConditions"] = conditions + user_conditions
    spec.update(_expressions(rule, roots))
    vap = {"apiVersion": API_VERSION, "kind": "ValidatingAdmissionPolicy", "metadata": meta, "spec": spec}
    binding = {
        "apiVersion": API_VERSION,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {**meta, "labels": dict(meta["labels"]), "annotations": dict(meta["annotations"])},
        "spec": {
            "policyName": name,
            "validationActions": list(ACTIONS[policy.enforcement]),
            "matchResources": {"namespaceSelector": _binding_selector(policy)},
        },
    }
    return [vap, binding]


def _variant_roots(kind: str) -> dict[str, str]:
    prefix = template_prefix(kind)
    assert prefix is not None
    path = ".".join(prefix)
    return {"object": f"object.{path}", "oldObject": f"oldObject == null ? null : oldObject.{path}"}


def _rule_objects(policy: CompiledPolicy, rule: schema.CelRule, exemptions: dict[str, str] | None) -> \
        list[dict[str, Any]]:
    named = list(rule.match.kinds)
    base = [exemptions] if exemptions else []
    out = _pair(policy, rule, "", named, base + ([_spec_changed((), True)] if "Pod" in named else []), None)
    if "Pod" not in named:
        return out
    variants: dict[tuple[str, ...], list[str]] = {}
    for kind in POD_CONTROLLERS:
        if kind not in named:
            prefix = template_prefix(kind)
            assert prefix is not None
            variants.setdefault(prefix, []).append(kind)
    for prefix, kinds in variants.items():
        suffix = "cronjobs" if kinds == ["CronJob"] else "controllers"
        out += _pair(policy, rule, suffix, kinds, base + [_spec_changed(prefix, False)], _variant_roots(kinds[0]))
    return out


def extra_kinds(policies: PolicySet) -> list[dict[str, Any]]:
    """``webhooks.extraKinds`` entries for the kinds the CEL rules name that the chart does not intercept."""
    kinds = sorted({k for p in policies.cluster + policies.tenants if isinstance(p.document, schema.ClusterPolicySpec)
                    for rule in p.document.rules.cel for k in rule.match.kinds if k not in INTERCEPTED})
    grouped: dict[tuple[str, str], list[str]] = {}
    for kind in kinds:
        group, version, resource = KINDS[kind]
        grouped.setdefault((group, version), []).append(resource)
    return [{"apiGroups": [group], "apiVersions": [version], "resources": resources}
            for (group, version), resources in sorted(grouped.items())]


def render_vap(policies: PolicySet, tenants: Iterable[str] = (), *, today: date | None = None) -> Rendered:
    """The policy/binding pairs of every CEL rule (of the ``tenants`` named, when given: their TenantPolicies)."""
    wanted = set(tenants)
    unknown = wanted - {t.name for t in policies.tenants}
    if unknown:
        raise RenderError(f"no TenantPolicy named {', '.join(sorted(unknown))}")
    result = Rendered()
    selected = [p for p in policies.tenants if p.name in wanted] if wanted else \
        list(policies.cluster) + list(policies.tenants)
    for policy in selected:
        spec = policy.document
        if not isinstance(spec, schema.ClusterPolicySpec) or not spec.rules.cel:
            continue
        exemptions = exemptions_condition(policy, today, result.notes)
        for rule in spec.rules.cel:
            result.objects.extend(_rule_objects(policy, rule, exemptions))
        if policy.is_tenant:
            result.notes.append(f"TenantPolicy {policy.name}: the bindings select namespaces labelled "
                                f"{TENANT_LABEL}={policy.name} (tenantguard render --only labels puts it on them)")
    if not result.objects:
        result.notes.append("no CEL rule (spec.rules.cel) in the policies" + (" of these tenants" if wanted else ""))
    extra = extra_kinds(policies)
    if extra:
        result.notes.append("the CEL rules name kinds the chart's webhook does not intercept by default; for the "
                            "webhook to judge them too, set webhooks.extraKinds: " + json.dumps(extra))
    result.notes = list(dict.fromkeys(result.notes))
    return result
