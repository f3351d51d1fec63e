"""Policies that load but cannot work as written: defaults that break the rules they live under.

A ClusterPolicy's defaults and rules apply under every TenantPolicy. Defaults are layered as
the engine applies them: the tenant's first, then each ClusterPolicy's in load order, each
filling only what is still unset (so the most specific default wins, field by field);
Audit-mode policies only report their defaults and fill nothing. Each tenant is checked with
the cluster layers under it, and the cluster layers are checked alone (the namespaces no
tenant claims). A pod that relies on the defaults (a container that sets no resources, a pod
without nodeSelector, tolerations or priorityClassName of its own) is then judged by every
rule of the same layers:

- a resource default above a ``maxResources`` maximum (per container, or per pod for a pod of
  one container);
- ``qosClass: Guaranteed`` while the cpu or memory defaults give a container a request that
  differs from its limit, or a request and no limit (Burstable);
- a default nodeSelector value, or a default required node affinity expression, that
  ``allowedNodeLabels`` does not allow;
- a default toleration outside ``allowedTolerations`` (it is added to every pod that does not
  tolerate it already, so every pod is denied);
- a default ``priorityClassName`` outside ``allowedPriorityClasses``.

These are errors, and so are ``allowedRegistries`` entries that can never match an image (a
URL, a tag or digest, a host that cannot be a registry host). Pod Security versions that no
Kubernetes release with Pod Security admission enforced (before v1.22), or newer than the
newest version known here, are warnings.

Each finding is reported where it is fixed: at the default when the default's own policy can
change it (the same policy, or a tenant's default under a cluster rule); at the tenant when a
cluster default breaks a tenant rule (the tenant's own default would win).

Probe defaults on ports the rules refuse are found by judging pods, not by reading the rules
(any rule may refuse a port, a CEL rule most often): webhook.actions.lint.probe_port_findings.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from webhook.core.mutators.tolerations import covers
from webhook.core.pod_security.registry import NEWEST_MINOR, NEWEST_VERSION
from webhook.core.quantity import parse_quantity
from webhook.core.selectors import is_glob
from webhook.core.validators.boundaries import SYSTEM_TOLERATION_PREFIX, toleration_allowed
from webhook.core.validators.maxima import split_key
from webhook.policy import schema
from webhook.policy.loader import format_loc

Severity = Literal["error", "warning"]

FIRST_PSA_MINOR = 22  # Kubernetes v1.22: the first release with the PodSecurity admission plugin
_REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
_VERB = {"Enforce": "denied", "Warn": "warned about", "Audit": "reported (Audit)"}


@dataclass(frozen=True, slots=True)
class Layer:
    """One policy document as lint sees it: what it is, where it is, what it says."""

    kind: str  # ClusterPolicy | TenantPolicy
    name: str
    where: str  # "policies/x.yaml: document 1"
    spec: schema.ClusterPolicySpec  # a TenantPolicySpec for a tenant

    @property
    def is_tenant(self) -> bool:
        return self.kind == "TenantPolicy"

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"

    @property
    def verb(self) -> str:
        return _VERB.get(self.spec.enforcement, "denied")


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Severity
    where: str
    field: str
    message: str

    def line(self) -> str:
        return f"{self.where}: {self.field}: {self.message}"


def _of(layer: Layer, here: Layer) -> str:
    """`` of ClusterPolicy base (policies/base.yaml: document 1)`` when ``layer`` is not the one reported on."""
    return "" if layer is here else f" of {layer.label} ({layer.where})"


def _fix_here(default: Layer, here: Layer) -> str:
    return "" if default is here else " in this policy (the tenant's default wins)"


def _flow(values: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in values.items()) + "}"


def _q(value: str) -> Decimal:
    return parse_quantity(value)


# --- the defaults a pod ends up with, and which policy gave each ---

@dataclass(frozen=True, slots=True)
class Filled:
    """One resource value a container that sets none gets: from which layer and field."""

    value: str
    layer: Layer
    section: str  # the field it is written in: requests | limits
    res: str
    copied: bool = False  # a request copied from the limit default (no request default for it)

    @property
    def field(self) -> str:
        return format_loc(("spec", "defaults", "resources", self.section, self.res))

    def subject(self, here: Layer) -> str:
        word = "request" if self.section == "requests" else "limit"
        copied = " (a container without a request takes it as its request too)" if self.copied else ""
        return f"default {self.res} {word} {self.value}{_of(self.layer, here)}{copied}"


def fill_resources(layers: Sequence[Layer]) -> tuple[dict[str, Filled], dict[str, Filled]]:
    """Requests and limits of a container that sets none, layer after layer as ``defaults.resources`` fills them
    (webhook.core.mutators.resources): a limit only where none is set and not below the request already set;
    a request from the layer's request default, else copied from the limit it just filled."""
    requests: dict[str, Filled] = {}
    limits: dict[str, Filled] = {}
    for layer in layers:
        defaults = layer.spec.defaults.resources
        if defaults is None:
            continue
        added: dict[str, Filled] = {}
        for res, value in defaults.limits.items():
            have = requests.get(res)
            if res in limits or (have is not None and _q(value) < _q(have.value)):
                continue
            added[res] = Filled(value, layer, "limits", res)
        limits.update(added)
        for res in list(defaults.requests) + [r for r in added if r not in defaults.requests]:
            if res in requests:
                continue
            if res in defaults.requests:
                requests[res] = Filled(defaults.requests[res], layer, "requests", res)
            else:
                requests[res] = Filled(added[res].value, layer, "limits", res, copied=True)
    return requests, limits


@dataclass(slots=True)
class Scope:
    """The layers that apply together: a tenant and the cluster policies, or the cluster policies alone."""

    tenant: Layer | None
    layers: list[Layer]
    defaults: list[Layer] = field(init=False)  # the layers whose defaults are applied, in order

    def __post_init__(self) -> None:
        self.defaults = [p for p in self.layers if p.spec.enforcement != "Audit"]


def _scopes(cluster: Sequence[Layer], tenants: Sequence[Layer]) -> list[Scope]:
    return [Scope(None, list(cluster))] + [Scope(t, [t, *cluster]) for t in tenants]


def _placed(default: Layer, rule: Layer) -> Layer:
    """Where a finding about ``default`` breaking ``rule`` is fixed: a cluster default under a tenant rule is
    overridden in the tenant; anything else is changed where the default is written."""
    return rule if rule.is_tenant and not default.is_tenant else default


# --- resources: maxima and QoS ---

def _maxima(scope: Scope, requests: dict[str, Filled], limits: dict[str, Filled]) -> Iterator[Finding]:
    filled = {"requests": requests, "limits": limits}
    for rule in scope.layers:
        maxima = rule.spec.rules.maxResources
        if maxima is None:
            continue
        for per, bounds in (("perContainer", maxima.perContainer), ("perPod", maxima.perPod)):
            for key, bound in bounds.items():
                sections, res = split_key(key)
                reported: set[str] = set()  # a limit default is also the request copied from it: reported once
                for section in reversed(sections):
                    got = filled[section].get(res)
                    if got is None or _q(got.value) <= _q(bound) or got.field in reported:
                        continue
                    reported.add(got.field)
                    yield _over_maximum(got, rule, per, key, bound, section)


def _over_maximum(got: Filled, rule: Layer, per: str, key: str, bound: str, section: str) -> Finding:
    here = _placed(got.layer, rule)
    word = "request" if section == "requests" else "limit"
    who = ("a container that sets no " if per == "perContainer" else "a pod whose one container sets no ")
    if got.copied and section == "requests":
        fix = f"add requests: {{{got.res}: {bound}}} or less next to it"
    else:
        fix = f"write {got.section}: {{{got.res}: {bound}}} or less"
    return Finding(
        "error", here.where, got.field,
        f"{got.subject(here)} is above the maximum {bound} of spec.rules.maxResources.{per}.{key}"
        f"{_of(rule, here)}: {who}{got.res} {word} of its own gets {got.value} and is {rule.verb}; "
        f"{fix}{_fix_here(got.layer, here)}, or raise the maximum")


def _qos(scope: Scope, requests: dict[str, Filled], limits: dict[str, Filled]) -> Iterator[Finding]:
    for rule in scope.layers:
        if rule.spec.rules.qosClass != "Guaranteed":
            continue
        for res in ("cpu", "memory"):
            req, lim = requests.get(res), limits.get(res)
            if req is None or (lim is not None and _q(req.value) == _q(lim.value)):
                continue  # no default for it (the pod must bring its own), or request == limit
            yield _not_guaranteed(rule, res, req, lim, _container_cap(scope, res))


def _container_cap(scope: Scope, res: str) -> str | None:
    """The lowest per-container maximum of ``res`` in the scope (what a suggested default must not pass)."""
    bounds = [bound for layer in scope.layers if layer.spec.rules.maxResources is not None
              for key, bound in layer.spec.rules.maxResources.perContainer.items() if split_key(key)[1] == res]
    return min(bounds, key=_q) if bounds else None


def _not_guaranteed(rule: Layer, res: str, req: Filled, lim: Filled | None, cap: str | None) -> Finding:
    sources = [req.layer] + ([lim.layer] if lim is not None else [])
    here = next((s for s in sources if s.is_tenant), rule if rule.is_tenant else req.layer)
    if lim is None:
        what = f"{req.subject(here)} comes with no {res} limit default"
        value = req.value
    elif lim.layer is req.layer:
        what = f"default {res} request {req.value} and limit {lim.value}{_of(req.layer, here)} differ"
        value = lim.value
    else:
        what = f"{req.subject(here)} differs from the default {res} limit {lim.value}{_of(lim.layer, here)}"
        value = lim.value
    if cap is not None and _q(cap) < _q(value):
        value = cap
    if req.layer is here:
        field_path = req.field if lim is not None else format_loc(("spec", "defaults", "resources", "limits", res))
    elif lim is not None and lim.layer is here:
        field_path = lim.field
    else:
        field_path = "spec.defaults.resources"
    in_here = "" if any(s is here for s in sources) else " in this policy, whose defaults win"
    return Finding(
        "error", here.where, field_path,
        f"{what}: a container that sets no {res} resources of its own is Burstable and is {rule.verb} by "
        f"spec.rules.qosClass: Guaranteed{_of(rule, here)}; write the same value for both{in_here}: requests: "
        f"{{{res}: {value}}}, limits: {{{res}: {value}}} (or only the limit: the request copies it)")


# --- scheduling: node labels, tolerations, priority class ---

def _node_defaults(layers: Sequence[Layer]) -> tuple[dict[str, tuple[str, Layer]],
                                                     dict[str, tuple[Mapping[str, Any], int, Layer]]]:
    """The nodeSelector and required node affinity expressions a pod without its own gets, per key (the first
    layer to set a key wins, as the defaults fill only what is unset)."""
    selector: dict[str, tuple[str, Layer]] = {}
    expressions: dict[str, tuple[Mapping[str, Any], int, Layer]] = {}
    for layer in layers:
        for key, value in layer.spec.defaults.nodeSelector.items():
            selector.setdefault(key, (value, layer))
        affinity = layer.spec.defaults.affinity
        node = affinity.nodeAffinity if affinity is not None else None
        required = node.get(_REQUIRED) if isinstance(node, dict) else None
        terms = required.get("nodeSelectorTerms") if isinstance(required, dict) else None
        if not isinstance(terms, list) or not terms or not isinstance(terms[0], dict):
            continue
        for index, expr in enumerate(terms[0].get("matchExpressions") or ()):
            if isinstance(expr, dict) and isinstance(expr.get("key"), str):
                expressions.setdefault(expr["key"], (expr, index, layer))
    return selector, expressions


def _node_labels(scope: Scope) -> Iterator[Finding]:
    selector, expressions = _node_defaults(scope.defaults)
    for rule in scope.layers:
        allowed_labels = rule.spec.rules.allowedNodeLabels
        for key, allowed in allowed_labels.items():
            shown = ", ".join(allowed)
            rule_ref = format_loc(("spec", "rules", "allowedNodeLabels", key))
            if key in selector and selector[key][0] not in allowed:
                value, layer = selector[key]
                here = _placed(layer, rule)
                yield Finding(
                    "error", here.where, format_loc(("spec", "defaults", "nodeSelector", key)),
                    f"default nodeSelector {key}={value}{_of(layer, here)} is not allowed by {rule_ref}"
                    f"{_of(rule, here)} (allowed: {shown}): a pod that sets no {key} of its own gets it and is "
                    f"{rule.verb}; write one of: {shown}{_fix_here(layer, here)}")
            if key in expressions:
                expr, index, layer = expressions[key]
                op = expr.get("operator")
                values = [str(v) for v in expr.get("values") or ()]
                bad = [v for v in values if v not in allowed]
                if op == "In" and values and not bad:
                    continue
                here = _placed(layer, rule)
                path = ("spec", "defaults", "affinity", "nodeAffinity", _REQUIRED, "nodeSelectorTerms", 0,
                        "matchExpressions", index)
                written = f"{key} {op} [{', '.join(values)}]" if values else f"{key} {op}"
                why = f"selects {', '.join(bad)}, which" if op == "In" and bad else f"uses {op}, which"
                yield Finding(
                    "error", here.where,
                    format_loc(path) if layer is here else "spec.defaults.affinity.nodeAffinity",
                    f"default required node affinity {written}{_of(layer, here)} {why} {rule_ref}{_of(rule, here)} "
                    f"does not allow (allowed: {key} In [{shown}]): a pod that does not constrain {key} itself gets "
                    f"it and is {rule.verb}; write {{key: {key}, operator: In, values: [{shown}]}} or a subset"
                    f"{_fix_here(layer, here)}")


def _show_toleration(tol: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}={tol[k]}" for k in ("key", "operator", "value", "effect") if tol.get(k)) + "}"


def _tolerations(scope: Scope) -> Iterator[Finding]:
    added: list[tuple[dict[str, Any], int, Layer]] = []
    for layer in scope.defaults:
        for index, tol in enumerate(layer.spec.defaults.tolerations):
            plain = tol.model_dump(mode="json", exclude_none=True)
            if not any(covers(have, plain) for have, _, _ in added):
                added.append((plain, index, layer))
    for rule in scope.layers:
        patterns = rule.spec.rules.allowedTolerations
        if patterns is None:
            continue
        allowed = [p.model_dump(mode="json", exclude_none=True) for p in patterns]
        shown_allowed = ", ".join(_show_toleration(a) for a in allowed) or "none"
        for default, index, layer in added:
            if str(default.get("key") or "").startswith(SYSTEM_TOLERATION_PREFIX):
                continue
            if any(toleration_allowed(default, a) for a in allowed):
                continue
            here = _placed(layer, rule)
            entry = _flow({"key": default["key"]}) if default.get("key") else "{operator: Exists}"
            if layer is here:
                where_field = format_loc(("spec", "defaults", "tolerations", index))
                fix = (f"allow it (add {entry} to spec.rules.allowedTolerations{_of(rule, here)}) or remove the "
                       "default")
            else:
                where_field = "spec.rules.allowedTolerations"
                fix = f"add {entry} here"
            yield Finding(
                "error", here.where, where_field,
                f"default toleration {_show_toleration(default)}{_of(layer, here)} is not allowed by "
                f"spec.rules.allowedTolerations{_of(rule, here)} (allowed: {shown_allowed}): it is added to every "
                f"pod that does not tolerate it already, so every pod is {rule.verb}; {fix}")


def _priority_class(scope: Scope) -> Iterator[Finding]:
    chosen = next(((p.spec.defaults.priorityClassName, p) for p in scope.defaults if p.spec.defaults.priorityClassName),
                  None)
    if chosen is None:
        return
    name, layer = chosen
    for rule in scope.layers:
        allowed = rule.spec.rules.allowedPriorityClasses
        if allowed is None or name in allowed:
            continue
        here = _placed(layer, rule)
        shown = ", ".join(allowed) or "none"
        fix = f"write one of: {', '.join(allowed)}" if allowed else "remove the default"
        yield Finding(
            "error", here.where, "spec.defaults.priorityClassName",
            f"default priorityClassName {name}{_of(layer, here)} is not in spec.rules.allowedPriorityClasses"
            f"{_of(rule, here)} (allowed: {shown}): a pod that sets none gets it and is {rule.verb}; "
            f"{fix}{_fix_here(layer, here)}")


# --- one policy at a time: registries, Pod Security versions ---

def registry_entry_problem(entry: str) -> tuple[str, str] | None:
    """Why an ``allowedRegistries`` entry can never match an image, and what to write instead; None when it can."""
    text = entry.strip()
    scheme, sep, rest = text.partition("://")
    if sep:
        fixed = rest.strip("/")
        return (f"{scheme}:// makes it a URL, and image names never carry a scheme, so it matches no image",
                fixed or "the registry's host name")
    host, slash, path = text.strip("/").partition("/")
    name, colon, port = host.rpartition(":")
    if not slash and colon and name and not port.isdigit() and not host.startswith("[") and not is_glob(host):
        image = name if "." in name or "/" in name else f"library/{name}"
        return ("it names a tag of a Docker Hub image, but entries are matched against the registry host and "
                "repository path only, so it matches no image", f"docker.io/{image}")
    if "@" in path or ":" in path:
        fixed = host + "/" + path.split("@", 1)[0].rsplit(":", 1)[0]
        return ("it names a tag or digest, but entries are matched against the registry host and repository path "
                "only, so it matches no image", fixed)
    if host and not is_glob(host) and "." not in host and ":" not in host and host != "localhost" \
            and host == host.lower():
        return (f"{host} is read as a registry host, and a name without '.' or ':' (other than localhost) never is "
                f"one: {host}/app is Docker Hub's docker.io/{host}/app, so it matches no image",
                f"docker.io/{text.strip('/')}")
    return None


def _registries(layer: Layer) -> Iterator[Finding]:
    for index, entry in enumerate(layer.spec.rules.allowedRegistries or ()):
        problem = registry_entry_problem(entry)
        if problem is not None:
            why, fixed = problem
            yield Finding("error", layer.where, format_loc(("spec", "rules", "allowedRegistries", index)),
                          f"{entry!r}: {why}; write {fixed}")


def _pod_security_version(layer: Layer) -> Iterator[Finding]:
    rule = layer.spec.rules.podSecurity
    if rule is None or rule.level == "privileged" or rule.version == "latest":
        return
    minor = int(rule.version.split(".", 1)[1])
    if minor < FIRST_PSA_MINOR:
        yield Finding(
            "warning", layer.where, "spec.rules.podSecurity",
            f"version {rule.version} is older than v1.{FIRST_PSA_MINOR}, the first Kubernetes release with Pod "
            f"Security admission, so no cluster ever enforced it; write latest, or the version of your oldest "
            f"cluster (v1.{FIRST_PSA_MINOR} or later): {rule.level}:v1.{FIRST_PSA_MINOR}")
    elif minor > NEWEST_MINOR:
        yield Finding(
            "warning", layer.where, "spec.rules.podSecurity",
            f"version {rule.version} is newer than {NEWEST_VERSION}, the newest Pod Security version this "
            f"tenantguard knows: it is checked as {NEWEST_VERSION}, and what {rule.version} adds is not checked; "
            f"write {rule.level}:{NEWEST_VERSION} (or latest), or upgrade tenantguard")


def contradictions(cluster: Sequence[Layer], tenants: Sequence[Layer]) -> list[Finding]:
    """Every finding, errors and warnings, each once, in a stable order (scope by scope, then per policy)."""
    found: list[Finding] = []
    for scope in _scopes(cluster, tenants):
        requests, limits = fill_resources(scope.defaults)
        found.extend(_maxima(scope, requests, limits))
        found.extend(_qos(scope, requests, limits))
        found.extend(_node_labels(scope))
        found.extend(_tolerations(scope))
        found.extend(_priority_class(scope))
    for layer in [*cluster, *tenants]:
        found.extend(_registries(layer))
        found.extend(_pod_security_version(layer))
    seen: dict[tuple[str, str], Finding] = {}
    for finding in found:
        seen.setdefault((finding.where, finding.field + "\0" + finding.message), finding)
    return list(seen.values())
