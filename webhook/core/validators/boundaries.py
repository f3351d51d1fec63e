"""Tenant boundaries: where a tenant's pods may run, what they may tolerate, use and reach.

- ``allowedNodeLabels`` / ``requiredNodeLabels``: node labels a pod may select
  (nodeSelector and required nodeAffinity), and the ones it must pin;
  ``spec.nodeName`` (which bypasses the scheduler) is refused when either is set;
- ``allowedTolerations``: every toleration must match an allowed entry
  (``node.kubernetes.io/*`` tolerations the API server and DaemonSet controller
  add are always allowed);
- ``allowedPriorityClasses``;
- ``allowedRegistries``: every image (app, init and ephemeral containers) is
  read as the container runtime reads it (Docker's reference grammar, see
  :func:`parse_image`) and must match an entry ``HOST[/PATH]``: the host part
  is matched against the image's registry host (``host[:port]``), a glob
  matching within that host only, and the path, if any, is matched component
  by component against the start of the repository path (a glob never spans a
  ``/``). An image whose name does not follow the grammar is refused;
- affinity namespaces (always on for tenants): pod (anti-)affinity terms may
  only reach the tenant's own namespaces and its ``sharedNamespaces``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from webhook.core.decision import Violation
from webhook.core.plan import ValidationContext
from webhook.core.selectors import LabelSelector, glob_match
from webhook.core.validators._base import (
    MAIN_ONLY,
    WITH_EPHEMERAL,
    describe,
    inside_tenant,
    outside_tenant,
    request_only,
    violation,
)
from webhook.core.workloads import ALL_CONTAINERS, PREFERRED, REQUIRED, iter_containers, locate_pod

SYSTEM_TOLERATION_PREFIX = "node.kubernetes.io/"


def _required_terms(spec: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    affinity = spec.get("affinity")
    node = affinity.get("nodeAffinity") if isinstance(affinity, dict) else None
    required = node.get(REQUIRED) if isinstance(node, dict) else None
    terms = required.get("nodeSelectorTerms") if isinstance(required, dict) else None
    if not isinstance(terms, list):
        return None
    return [t for t in terms if isinstance(t, dict)]


def _expressions(term: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    exprs = term.get("matchExpressions")
    return [e for e in exprs if isinstance(e, dict)] if isinstance(exprs, list) else []


@dataclass(frozen=True, slots=True)
class NodeSelection:
    allowed: Mapping[str, tuple[str, ...]]
    required: tuple[str, ...]
    rule: str = "allowedNodeLabels"
    kinds: frozenset[str] | None = None
    subresources: frozenset[str] = MAIN_ONLY
    reads_cluster = request_only  # the request alone decides (its verdict may be reused for an identical one)

    def validate(self, ctx: ValidationContext) -> Iterator[Violation]:
        assert ctx.target is not None
        spec = ctx.target.spec
        raw_selector = spec.get("nodeSelector")
        selector: dict[str, Any] = raw_selector if isinstance(raw_selector, dict) else {}
        for key, allowed in self.allowed.items():
            if key in selector and selector[key] not in allowed:
                yield violation(
                    ctx, self.rule, f"nodeSelector {key}={selector[key]} is not allowed (allowed {key}: "
                    f"{describe(allowed)})", field=("spec", "nodeSelector", key),
                    actual=selector[key], required=list(allowed),
                )
        terms = _required_terms(spec)
        for t_index, term in enumerate(terms or ()):
            for e_index, expr in enumerate(_expressions(term)):
                expr_key = expr.get("key")
                if not isinstance(expr_key, str) or expr_key not in self.allowed:
                    continue
                key, allowed = expr_key, self.allowed[expr_key]
                op = expr.get("operator")
                values = [str(v) for v in expr.get("values") or ()]
                bad = [v for v in values if v not in allowed] if op == "In" else None
                if op == "In" and not bad:
                    continue
                shown = f"{key} In [{', '.join(bad or [])}]" if op == "In" else f"{key} {op} {values or ''}".rstrip()
                yield violation(
                    ctx, self.rule, f"required nodeAffinity term {t_index} selects {shown}: only {key} In "
                    f"[{describe(allowed)}] is allowed",
                    field=("spec", "affinity", "nodeAffinity", REQUIRED, "nodeSelectorTerms", t_index,
                           "matchExpressions", e_index),
                    actual=f"{op} {values}", required=list(allowed),
                )
        for key in self.required:
            if self._pinned(spec, key, terms):
                continue
            pinned = self.allowed.get(key)
            hint = f" to one of: {describe(pinned)}" if pinned else ""
            yield violation(
                ctx, "requiredNodeLabels",
                f"pod does not pin node label {key}{hint}: set nodeSelector {key} or an `{key} In [...]` "
                "expression in every required nodeAffinity term",
                field=("spec", "nodeSelector", key), actual=None, required=list(allowed) if allowed else key,
            )
        if (self.allowed or self.required) and spec.get("nodeName"):
            yield violation(
                ctx, self.rule, f"spec.nodeName {spec['nodeName']} bypasses the scheduler and the tenant's node "
                "constraints; leave it unset", field=("spec", "nodeName"), actual=spec["nodeName"], required=None,
            )

    def _pinned(self, spec: Mapping[str, Any], key: str, terms: list[Mapping[str, Any]] | None) -> bool:
        selector = spec.get("nodeSelector")
        if isinstance(selector, dict) and key in selector:
            return True
        if not terms:
            return False
        return all(any(e.get("key") == key and e.get("operator") == "In" and e.get("values")
                       for e in _expressions(term)) for term in terms)


def toleration_allowed(toleration: Mapping[str, Any], allowed: Mapping[str, Any]) -> bool:
    if not glob_match(str(allowed.get("key", "*")), str(toleration.get("key") or "")):
        return False
    for field, default in (("operator", "Equal"), ("value", ""), ("effect", "")):
        if field in allowed and allowed[field] is not None:
            have = toleration.get(field) or default
            if str(have) != str(allowed[field]):
                return False
    return True


@dataclass(frozen=True, slots=True)
class AllowedTolerations:
    allowed: tuple[Mapping[str, Any], ...]
    rule: str = "allowedTolerations"
    kinds: frozenset[str] | None = None
    subresources: frozenset[str] = MAIN_ONLY
    reads_cluster = request_only  # the request alone decides (its verdict may be reused for an identical one)

    def validate(self, ctx: ValidationContext) -> Iterator[Violation]:
        assert ctx.target is not None
        tolerations = ctx.target.spec.get("tolerations")
        for index, tol in enumerate(tolerations if isinstance(tolerations, list) else ()):
            if not isinstance(tol, dict):
                continue
            if str(tol.get("key") or "").startswith(SYSTEM_TOLERATION_PREFIX):
                continue
            if any(toleration_allowed(tol, a) for a in self.allowed):
                continue
            shown = ", ".join(f"{k}={tol[k]}" for k in ("key", "operator", "value", "effect") if tol.get(k))
            yield violation(
                ctx, self.rule,
                f"toleration {{{shown or 'tolerate everything'}}} is not allowed for this tenant "
                f"(allowed: {describe([_show(a) for a in self.allowed])})",
                field=("spec", "tolerations", index), actual=dict(tol), required=[dict(a) for a in self.allowed],
            )


def _show(allowed: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in allowed.items()) + "}"


@dataclass(frozen=True, slots=True)
class AllowedPriorityClasses:
    names: tuple[str, ...]
    rule: str = "allowedPriorityClasses"
    kinds: frozenset[str] | None = None
    subresources: frozenset[str] = MAIN_ONLY
    reads_cluster = request_only  # the request alone decides (its verdict may be reused for an identical one)

    def validate(self, ctx: ValidationContext) -> Iterator[Violation]:
        assert ctx.target is not None
        name = ctx.target.spec.get("priorityClassName")
        if name and name not in self.names:
            yield violation(
                ctx, self.rule, f"priorityClassName {name} is not allowed (allowed: {describe(self.names)})",
                field=("spec", "priorityClassName"), actual=name, required=list(self.names),
            )


DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io"})
_OFFICIAL_REPO_PREFIX = "library/"
_NAME_TOTAL_LENGTH_MAX = 255

# distribution/reference regexp.go, spelled in Python (ASCII classes, as Go's)
_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = _ALPHANUMERIC + r"(?:" + _SEPARATOR + _ALPHANUMERIC + r")*"
_REMOTE_NAME = re.compile(_PATH_COMPONENT + r"(?:/" + _PATH_COMPONENT + r")*")
_DOMAIN_NAME_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = _DOMAIN_NAME_COMPONENT + r"(?:\." + _DOMAIN_NAME_COMPONENT + r")*"
_IPV6_ADDRESS = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN_AND_PORT = re.compile(r"(?:" + _DOMAIN_NAME + r"|" + _IPV6_ADDRESS + r")(?::[0-9]+)?")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# the grammar wants at least 32 hex digits; a shorter digest cannot be pulled, but it cannot change the
# registry either, so it is not what this rule judges
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]+")
_IDENTIFIER = re.compile(r"[a-f0-9]{64}")


class InvalidImage(ValueError):
    """An image reference the container runtime cannot parse."""


@dataclass(frozen=True, slots=True)
class ImageName:
    """Where an image comes from: its registry host (``host[:port]``, host lower-cased) and repository path."""

    registry: str
    path: str

    @property
    def repository(self) -> str:
        return f"{self.registry}/{self.path}"


def parse_image(image: str) -> ImageName:
    """Registry and repository of an image, as the container runtime resolves them
    (distribution/reference ``ParseNormalizedNamed``, used by the kubelet and containerd).

    The part before the first ``/`` is the registry host when it contains a ``.`` or a ``:``, is
    ``localhost`` or has an upper-case letter; otherwise the image is on Docker Hub (``docker.io``,
    ``index.docker.io`` being its legacy name), where a one-component name is an official image
    (``library/``). Tag and digest are split off. Host names are compared without case (DNS),
    repository paths must be lower case. Raises :class:`InvalidImage` when the name does not
    follow the grammar (such an image cannot be pulled).
    """
    if _IDENTIFIER.fullmatch(image):
        raise InvalidImage("a 64-character hexadecimal image ID is not a repository name")
    name, at, digest = image.partition("@")
    if at and not _DIGEST.fullmatch(digest):
        raise InvalidImage(f"invalid digest {digest!r}")
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name, tag = name[:colon], name[colon + 1:]
        if not _TAG.fullmatch(tag):
            raise InvalidImage(f"invalid tag {tag!r}")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        registry, path = first, rest
        if not _DOMAIN_AND_PORT.fullmatch(registry):
            raise InvalidImage(f"invalid registry host {registry!r}")
        registry = registry.lower()
    else:
        registry, path = DOCKER_HUB, name
    if not _REMOTE_NAME.fullmatch(path):
        raise InvalidImage(f"invalid repository path {path!r} (lower-case components separated by /)")
    if registry in _DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
        if "/" not in path:
            path = _OFFICIAL_REPO_PREFIX + path
    parsed = ImageName(registry, path)
    if len(parsed.repository) > _NAME_TOTAL_LENGTH_MAX:
        raise InvalidImage(f"repository name longer than {_NAME_TOTAL_LENGTH_MAX} characters")
    return parsed


def normalize_image(image: str) -> str:
    """Repository with registry, without tag or digest, as the container runtime resolves it:
    ``nginx:1`` and ``docker.io/nginx`` -> ``docker.io/library/nginx``; ``index.docker.io/x/y`` ->
    ``docker.io/x/y``. Raises :class:`InvalidImage` (see :func:`parse_image`)."""
    return parse_image(image).repository


def registry_allows(entry: str, image: ImageName) -> bool:
    """Whether the ``allowedRegistries`` entry ``HOST[/PATH]`` admits ``image``.

    The host part (a glob, without case) must match the image's whole registry host: a ``*`` there
    matches within the host only (``*.mirror.example.com`` admits ``a.mirror.example.com/x``, never
    ``evil.io/a.mirror.example.com``). A port is part of the host: ``registry.example.com`` does not admit
    ``registry.example.com:5000/x``. The path part, when given, must match the first components of the
    repository path, one glob per component: ``registry.example.com/team`` admits
    ``registry.example.com/team`` and ``registry.example.com/team/app``, not ``.../team-evil/app``.
    ``*`` alone admits every registry.
    """
    host, _, path = entry.strip().strip("/").partition("/")
    host = host.lower()
    if host in _DOCKER_HUB_ALIASES:
        host = DOCKER_HUB
    if not host or not (host == image.registry or glob_match(host, image.registry)):  # "[::1]:5000" is no glob
        return False
    if not path:
        return True
    wanted, have = path.split("/"), image.path.split("/")
    return len(wanted) <= len(have) and all(glob_match(w, h) for w, h in zip(wanted, have))


@dataclass(frozen=True, slots=True)
class AllowedRegistries:
    registries: tuple[str, ...]
    rule: str = "allowedRegistries"
    kinds: frozenset[str] | None = None
    subresources: frozenset[str] = WITH_EPHEMERAL
    reads_cluster = request_only  # the request alone decides (its verdict may be reused for an identical one)

    def validate(self, ctx: ValidationContext) -> Iterator[Violation]:
        assert ctx.target is not None
        for list_name, index, container in iter_containers(ctx.target.spec, ALL_CONTAINERS):
            image = container.get("image")
            name = str(container.get("name", index))
            if not isinstance(image, str) or not image:
                continue
            try:
                parsed = parse_image(image)
            except InvalidImage as exc:
                yield violation(
                    ctx, self.rule,
                    f'container "{name}" image {image!r} is not a valid image reference ({exc}), so its registry '
                    f"cannot be told (allowed: {describe(self.registries)})",
                    container=name, field=("spec", list_name, index, "image"), actual=image,
                    required=list(self.registries),
                )
                continue
            if any(registry_allows(entry, parsed) for entry in self.registries):
                continue
            yield violation(
                ctx, self.rule,
                f'container "{name}" image {image} ({parsed.repository}) is not from an allowed registry '
                f"(allowed: {describe(self.registries)})",
                container=name, field=("spec", list_name, index, "image"), actual=image,
                required=list(self.registries),
            )


def _affinity_terms(spec: Mapping[str, Any]) -> Iterator[tuple[str, tuple[str | int, ...], Mapping[str, Any]]]:
    affinity = spec.get("affinity")
    if not isinstance(affinity, dict):
        return
    for kind in ("podAffinity", "podAntiAffinity"):
        block = affinity.get(kind)
        if not isinstance(block, dict):
            continue
        for index, term in enumerate(block.get(REQUIRED) or ()):
            if isinstance(term, dict):
                yield kind, ("spec", "affinity", kind, REQUIRED, index), term
        for index, weighted in enumerate(block.get(PREFERRED) or ()):
            term = weighted.get("podAffinityTerm") if isinstance(weighted, dict) else None
            if isinstance(term, dict):
                yield kind, ("spec", "affinity", kind, PREFERRED, index, "podAffinityTerm"), term


@dataclass(frozen=True, slots=True)
class AffinityNamespaces:
    """Pod (anti-)affinity terms may only select the tenant's namespaces and its shared ones."""

    shared: tuple[str, ...]
    rule: str = "affinityNamespaces"
    kinds: frozenset[str] | None = None
    subresources: frozenset[str] = MAIN_ONLY

    def reads_cluster(self, obj: Mapping[str, Any]) -> bool:
        """Only pod (anti-)affinity terms naming namespaces or selecting them are judged with the view."""
        target = locate_pod(obj)
        return target is not None and any(
            bool(term.get("namespaces")) or "namespaceSelector" in term for _, _, term in _affinity_terms(target.spec))

    def validate(self, ctx: ValidationContext) -> Iterator[Violation]:
        assert ctx.target is not None
        if ctx.tenant is None:
            return
        tenant = ctx.tenant.name
        for kind, path, term in _affinity_terms(ctx.target.spec):
            for ns in term.get("namespaces") or ():
                if isinstance(ns, str) and not inside_tenant(ctx, ns, self.shared):
                    yield violation(
                        ctx, self.rule, f"{kind} term selects pods in namespace {ns}, outside tenant {tenant} "
                        f"(shared namespaces: {describe(self.shared)})",
                        field=path + ("namespaces",), actual=ns, required=f"namespaces of tenant {tenant}",
                    )
            selector = term.get("namespaceSelector")
            if not isinstance(selector, dict):
                continue
            parsed = LabelSelector.from_dict(selector)
            if parsed.is_empty:
                yield violation(
                    ctx, self.rule, f"{kind} term has an empty namespaceSelector, which selects every namespace; "
                    f"tenant {tenant} may only reach its own namespaces",
                    field=path + ("namespaceSelector",), actual={}, required=f"namespaces of tenant {tenant}",
                )
                continue
            outside = outside_tenant(ctx, parsed, self.shared)
            if outside:
                yield violation(
                    ctx, self.rule, f"{kind} term namespaceSelector reaches namespaces outside tenant {tenant}: "
                    f"{', '.join(outside)}", field=path + ("namespaceSelector",), actual=outside,
                    required=f"namespaces of tenant {tenant}",
                )
