"""The compiled policy plan the engine evaluates.

The policy loader (``webhook.policy``) turns YAML into these frozen objects once
per load; the engine only reads them. Mutators and validators are small objects
behind two protocols, one module per kind under ``core/mutators`` and
``core/validators``, each with a stable rule id used in reports, patches and
metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from webhook.core.errors import TenantguardError
from webhook.core.selectors import LabelSelector, glob_match, glob_start, is_glob

if TYPE_CHECKING:
    from webhook.core.cluster_state import ClusterState
    from webhook.core.decision import Violation
    from webhook.core.mutation import MutationContext
    from webhook.core.request import AdmissionRequest
    from webhook.core.workloads import PodTarget, PodTemplatePath


class Enforcement(StrEnum):
    ENFORCE = "Enforce"  # violations deny
    WARN = "Warn"  # allow; violations become kubectl warnings
    AUDIT = "Audit"  # allow; violations become auditAnnotations; mutations are only reported


# Namespaces the engine never touches, whatever the policies say: the control plane's own.
SYSTEM_NAMESPACES = frozenset({"kube-system"})

# The subresources a mutator or validator acts on (its ``subresources``; the main resource when it has none).
EPHEMERAL_CONTAINERS = "ephemeralcontainers"  # pods/ephemeralcontainers: `kubectl debug` adds a container
# pods/resize: in-place resize of a running pod's container (and pod-level) resources; the UPDATE carries the
# whole Pod (object: with the new resources, oldObject: as it was), and only resources may differ
RESIZE = "resize"
MAIN_ONLY = frozenset({""})
WITH_EPHEMERAL = frozenset({"", EPHEMERAL_CONTAINERS})
WITH_RESIZE = frozenset({"", RESIZE})  # the resources rules: what a resize changes is judged again


@dataclass(frozen=True, slots=True)
class Exemption:
    """One exemption entry: every criterion it names must hold (AND); entries are ORed."""

    namespaces: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    reason: str = ""
    expires: date | None = None

    def applies(self, request: AdmissionRequest) -> bool:
        if self.expires is not None and request.today is not None and request.today > self.expires:
            return False
        if not (self.namespaces or self.users or self.groups):
            return False
        if self.namespaces and not any(glob_match(p, request.namespace) for p in self.namespaces):
            return False
        if self.users and not any(glob_match(u, request.username) for u in self.users):
            return False
        return not self.groups or any(g in request.groups for g in self.groups)


@dataclass(frozen=True, slots=True)
class NamespaceMatch:
    """Which namespaces a TenantPolicy claims: literal names, shell globs, or a label selector."""

    names: frozenset[str] = frozenset()
    globs: tuple[str, ...] = ()
    selector: LabelSelector | None = None

    @classmethod
    def build(cls, patterns: Iterable[str], selector: LabelSelector | None) -> NamespaceMatch:
        pats = list(patterns)
        return cls(
            names=frozenset(p for p in pats if not is_glob(p)),
            globs=tuple(p for p in pats if is_glob(p)),
            selector=selector,
        )

    def matches(self, namespace: str, labels: Mapping[str, str] | None) -> bool:
        if namespace in self.names:
            return True
        if any(glob_match(g, namespace) for g in self.globs):
            return True
        if self.selector is not None and labels is not None:
            return self.selector.matches(labels)
        return False


class Mutator(Protocol):
    """Fills what the pod left out. Must be deterministic and idempotent.

    ``rule`` names it in patches, warnings and metrics (``defaults.resources``); ``subresources``
    are the ones it acts on (``MAIN_ONLY``: the object itself). Implementations are frozen
    dataclasses: compiled once per policy load, shared by every request.
    """

    @property
    def rule(self) -> str: ...

    @property
    def subresources(self) -> frozenset[str]: ...

    def mutate(self, ctx: MutationContext) -> None: ...


class Validator(Protocol):
    """Judges the object; yields one Violation per broken requirement.

    ``kinds`` is None for validators of pods and pod templates; a validator of other objects
    (e.g. NetworkPolicy) lists the kinds it judges. ``subresources``: as for mutators.

    Two optional members, read by the engine when present (a CEL rule has both):
    ``applies(ctx) -> bool`` (False: the rule does not apply to this request and is recorded
    as skipped) and ``whole_object_kinds`` (kinds it judges as a whole: those are judged even
    on an UPDATE that leaves the pod template unchanged, which the pod rules skip).
    """

    @property
    def rule(self) -> str: ...

    @property
    def kinds(self) -> frozenset[str] | None: ...

    @property
    def subresources(self) -> frozenset[str]: ...

    def reads_cluster(self, obj: Mapping[str, Any]) -> bool:
        """True when its verdict on ``obj`` depends on the cluster view (usage, NetworkPolicies, other
        namespaces), not only on the request: such a verdict is never reused for another request."""
        ...

    def validate(self, ctx: ValidationContext) -> Iterable[Violation]: ...


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    name: str
    kind: str  # "ClusterPolicy" | "TenantPolicy"
    source: str  # file it came from, for messages
    enforcement: Enforcement = Enforcement.ENFORCE
    match: NamespaceMatch | None = None  # None for ClusterPolicy
    mutators: tuple[Mutator, ...] = ()
    validators: tuple[Validator, ...] = ()
    exemptions: tuple[Exemption, ...] = ()
    shared_namespaces: tuple[str, ...] = ()  # outside the tenant, reachable by affinity / network peers
    # spec.podTemplates: where other kinds keep their pod template, (API group, kind, path parts)
    pod_templates: tuple[PodTemplatePath, ...] = ()
    # the validated policy document it was compiled from (webhook.policy.schema), opaque to the core: what
    # render and lint read, typed, instead of re-reading the YAML
    document: object = field(default=None, compare=False)

    @property
    def is_tenant(self) -> bool:
        return self.kind == "TenantPolicy"

    def reads_cluster(self, obj: Mapping[str, Any]) -> bool:
        """Some validator of this policy judges ``obj`` with what the cluster view holds."""
        kind = obj.get("kind")
        return any(v.reads_cluster(obj) for v in self.validators if v.kinds is None or kind in v.kinds)

    def exempts(self, request: AdmissionRequest) -> Exemption | None:
        for ex in self.exemptions:
            if ex.applies(request):
                return ex
        return None


class TenantConflict(TenantguardError):
    """A namespace is claimed by more than one TenantPolicy (only possible at run time through labels)."""

    def __init__(self, namespace: str, tenants: list[str]):
        super().__init__(f"namespace {namespace} is claimed by several tenants: {', '.join(tenants)}")
        self.namespace = namespace
        self.tenants = tenants


# namespaces whose tenant a TenantIndex remembers (cleared when full)
RESOLVED_CACHE = 65536

class TenantIndex:
    """Which TenantPolicy claims a namespace: the tenants' literal names in a dict, then their globs and
    selectors, remembered per namespace.

    The one mutable part of a policy set, and only a cache: a namespace's tenant depends only on its name
    and labels, and cluster views replace a namespace's label mapping when its labels change (never change
    it in place: ``ClusterState.namespace_labels``), so an identical mapping object means an identical
    answer. The quota and isolation rules resolve every namespace a tenant may hold, per request.
    """

    __slots__ = ("_by_name", "_globs", "_members", "_order", "_resolved", "_selecting")

    def __init__(self, tenants: Iterable[CompiledPolicy]):
        self._by_name: dict[str, list[CompiledPolicy]] = {}
        self._globs: dict[str, list[tuple[str, CompiledPolicy]]] = {}  # literal start -> (glob, tenant)
        self._selecting: list[CompiledPolicy] = []  # tenants with a namespaceSelector
        self._order: dict[str, int] = {}
        for tenant in tenants:
            self._order[tenant.name] = len(self._order)
            if tenant.match is None:
                continue
            for name in tenant.match.names:
                self._by_name.setdefault(name, []).append(tenant)
            for pattern in tenant.match.globs:
                self._globs.setdefault(glob_start(pattern), []).append((pattern, tenant))
            if tenant.match.selector is not None:
                self._selecting.append(tenant)
        self._resolved: dict[str, tuple[Mapping[str, str] | None, CompiledPolicy | tuple[str, ...] | None]] = {}
        # the view and its namespaces revision the members were computed for, and tenant -> its namespaces
        self._members: tuple[object, int, dict[str, frozenset[str]]] | None = None

    def members(self, tenant: str, state: ClusterState) -> frozenset[str]:
        """The namespaces ``state`` knows that ``tenant`` claims; computed once per namespaces revision."""
        revision = state.namespaces_revision()
        cached = self._members
        if cached is None or cached[0] is not state or cached[1] != revision:
            lists: dict[str, list[str]] = {}
            for namespace in state.namespaces():
                try:
                    owner = self.tenant_for(namespace, state.namespace_labels(namespace))
                except TenantConflict:
                    continue
                if owner is not None:
                    lists.setdefault(owner.name, []).append(namespace)
            cached = self._members = (state, revision, {k: frozenset(v) for k, v in lists.items()})
        return cached[2].get(tenant, frozenset())

    def tenant_for(self, namespace: str, labels: Mapping[str, str] | None) -> CompiledPolicy | None:
        """The TenantPolicy claiming ``namespace``; raises TenantConflict if several do."""
        cached = self._resolved.get(namespace)
        if cached is not None and cached[0] is labels:
            found = cached[1]
        else:
            claimants = list(self._by_name.get(namespace, ()))
            # a glob can match only names that begin with its literal start: look those up, prefix by prefix
            for end in range(len(namespace) + 1):
                for pattern, tenant in self._globs.get(namespace[:end], ()):
                    if tenant not in claimants and glob_match(pattern, namespace):
                        claimants.append(tenant)
            for tenant in self._selecting:
                selector = tenant.match.selector if tenant.match is not None else None
                if tenant not in claimants and selector is not None and labels is not None and \
                        selector.matches(labels):
                    claimants.append(tenant)
            claimants.sort(key=lambda t: self._order.get(t.name, 0))
            found = tuple(t.name for t in claimants) if len(claimants) > 1 else (claimants[0] if claimants else None)
            if len(self._resolved) >= RESOLVED_CACHE:
                self._resolved.clear()
            self._resolved[namespace] = (labels, found)
        if isinstance(found, tuple):
            raise TenantConflict(namespace, list(found))
        return found


@dataclass(frozen=True, slots=True)
class PolicySet:
    """Every loaded policy, immutable; ``generation`` identifies this set (a content hash).

    ``index`` (a :class:`TenantIndex`, built with the set) answers which tenant claims a namespace.
    ``pod_templates`` is where other kinds keep their pod template: the union of every policy's
    ``spec.podTemplates`` (cluster policies first, then the tenants', each location once), for every
    namespace alike (a Rollout is a Rollout whichever tenant owns it).
    """

    cluster: tuple[CompiledPolicy, ...] = ()
    tenants: tuple[CompiledPolicy, ...] = ()
    generation: str = ""
    index: TenantIndex = field(init=False, compare=False, repr=False)
    pod_templates: tuple[PodTemplatePath, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", TenantIndex(self.tenants))
        union = dict.fromkeys(t for p in (*self.cluster, *self.tenants) for t in p.pod_templates)
        object.__setattr__(self, "pod_templates", tuple(union))

    def tenant_for(self, namespace: str, labels: Mapping[str, str] | None) -> CompiledPolicy | None:
        """The TenantPolicy claiming ``namespace``; raises TenantConflict if several do."""
        return self.index.tenant_for(namespace, labels)


@dataclass(slots=True)
class ValidationContext:
    """Everything a validator may look at, read-only."""

    request: AdmissionRequest
    obj: Mapping[str, Any]  # the mutated object
    target: PodTarget | None  # its pod (template); None for non-pod kinds
    old_target: PodTarget | None
    policy: CompiledPolicy
    tenant: CompiledPolicy | None
    state: ClusterState
    tenant_of: Callable[[str], str | None]  # namespace -> tenant name (None: no tenant)
    tenants: TenantIndex = field(default_factory=lambda: TenantIndex(()))  # the policy set's tenant index
    # shared by the contexts of one evaluation (the object does not change between policies): what a
    # validator computed about it that another policy's validator may reuse (e.g. Pod Security checks)
    memo: dict[Any, Any] = field(default_factory=dict)

    def tenant_namespaces(self) -> frozenset[str]:
        """Known namespaces (from the cluster view, plus the request's) that belong to this tenant: the same
        set object for as long as the view's namespaces do not change (views keep its usage summed)."""
        if self.tenant is None:
            return frozenset((self.request.namespace,))
        members = self.tenants.members(self.tenant.name, self.state)
        extra = {self.request.namespace} | (self.tenant.match.names if self.tenant.match is not None else set())
        return members if extra <= members else members | extra
