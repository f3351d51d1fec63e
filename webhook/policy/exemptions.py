"""Exemptions that switch a policy off: an entry that matches every request.

An exemption entry names namespaces, users and groups; the criteria it names are ANDed
(``webhook.core.plan.Exemption.applies``). An entry is *broad* when every criterion it
names matches everyone:

- ``namespaces``: its globs together match every namespace the policy applies to (every
  namespace for a ClusterPolicy or a tenant claiming by label selector; the namespaces
  a TenantPolicy claims by name or glob otherwise): ``["*"]``, ``["?*"]``, ``["[a-z0-9]*"]``;
- ``users``: its globs together match every user name (``*``, ``**``, ``?*``), or one of
  them matches a controller that creates the pods of every Deployment, Job, StatefulSet
  or DaemonSet in the cluster (``system:serviceaccount:kube-system:*``);
- ``groups``: it names a group every caller of a kind is in (``system:authenticated``,
  ``system:serviceaccounts``, ``system:serviceaccounts:kube-system``) or every anonymous
  caller (``system:unauthenticated``).

Such an entry exempts every request (every pod a workload controller creates; every
anonymous request, for ``system:unauthenticated``): the policy does nothing for them.
An entry with one narrow criterion is not broad: in ``{namespaces: [kube-system], groups:
[system:authenticated]}`` the namespace narrows it. :func:`policy_warnings` names the file,
the policy and the field of each broad entry, and what to write instead; ``tenantguard
lint`` prints it (an error under ``--strict``) and the server logs it at load.

Glob coverage is decided exactly, not by trying names: the globs are read as automata
(``fnmatch`` syntax, as :func:`webhook.core.selectors.glob_match` matches them) and
searched together with the automaton of the names they must cover.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from webhook.core.plan import CompiledPolicy, Exemption, PolicySet
from webhook.core.selectors import glob_match

# Who creates the pods of workload objects (kube-controller-manager with --use-service-account-credentials,
# the default of kubeadm and managed clusters; otherwise the controller manager's own user).
POD_CREATING_CONTROLLERS = (
    ("system:serviceaccount:kube-system:replicaset-controller", "Deployment and ReplicaSet"),
    ("system:serviceaccount:kube-system:job-controller", "Job and CronJob"),
    ("system:serviceaccount:kube-system:statefulset-controller", "StatefulSet"),
    ("system:serviceaccount:kube-system:daemon-set-controller", "DaemonSet"),
    ("system:serviceaccount:kube-system:replication-controller", "ReplicationController"),
    ("system:kube-controller-manager", "Deployment, Job, StatefulSet and DaemonSet"),
)

# Groups the API server puts callers in by how they authenticated, not by who they are; the broadest first.
_WORKLOADS = "every Deployment, Job, StatefulSet and DaemonSet"
_SERVICE_ACCOUNTS = (f"every service account is in group system:serviceaccounts, the controllers that create the "
                     f"pods of {_WORKLOADS} included")
_CONTROLLERS = f"the controllers that create the pods of {_WORKLOADS} are in group system:serviceaccounts:kube-system"
BROAD_GROUPS = {
    "system:authenticated": ("every authenticated caller is in group system:authenticated", "all"),
    "system:serviceaccounts": (_SERVICE_ACCOUNTS, "controllers"),
    "system:serviceaccounts:kube-system": (_CONTROLLERS, "controllers"),
    "system:unauthenticated": ("every anonymous caller is in group system:unauthenticated", "anonymous"),
}

_NAMESPACE_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-"
_MAX_STEPS = 400_000  # glob steps a search may take before it gives up (and flags nothing): under a second;
# the globs of real policies take a few hundred


# --- globs as automata ---------------------------------------------------------------------

Token = tuple[str, str]  # ("*", ""), ("?", ""), ("char", c) or ("class", "[...]")


def _tokens(pattern: str) -> tuple[Token, ...]:
    """The pattern as ``fnmatch.translate`` reads it: ``*``, ``?``, ``[...]`` classes, literal characters."""
    out: list[Token] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            if not out or out[-1][0] != "*":
                out.append(("*", ""))
        elif c == "?":
            out.append(("?", ""))
        elif c == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append(("char", "["))
            else:
                out.append(("class", pattern[i - 1:j + 1]))
                i = j + 1
        else:
            out.append(("char", c))
    return tuple(out)


def _token_matches(token: Token, ch: str) -> bool:
    kind, text = token
    if kind == "?":
        return True
    if kind == "char":
        return ch == text
    return glob_match(text, ch)  # a class, matched as the glob matcher matches it


@dataclass(frozen=True)
class _Glob:
    tokens: tuple[Token, ...]

    def closure(self, states: frozenset[int]) -> frozenset[int]:
        """``states`` and every position reachable from them by letting a ``*`` match nothing."""
        out = set(states)
        todo = list(states)
        while todo:
            p = todo.pop()
            if p < len(self.tokens) and self.tokens[p][0] == "*" and p + 1 not in out:
                out.add(p + 1)
                todo.append(p + 1)
        return frozenset(out)

    def start(self) -> frozenset[int]:
        return self.closure(frozenset({0}))

    def step(self, states: frozenset[int], ch: str) -> frozenset[int]:
        nxt: set[int] = set()
        for p in states:
            if p == len(self.tokens):
                continue
            token = self.tokens[p]
            if token[0] == "*":
                nxt.add(p)
            elif _token_matches(token, ch):
                nxt.add(p + 1)
        return self.closure(frozenset(nxt))

    def accepts(self, states: frozenset[int]) -> bool:
        return len(self.tokens) in states


# --- the names a criterion must cover ------------------------------------------------------

@dataclass(frozen=True)
class _Names:
    """A set of names as a small automaton over a finite alphabet of representative characters."""

    alphabet: str
    start: str
    step: Callable[[str, str], str | None]
    accepting: frozenset[str]


def _namespace_step(state: str, ch: str) -> str | None:
    if ch == "-":
        return None if state == "start" else "dash"
    return "alnum"


# DNS-1123 labels: [a-z0-9]([-a-z0-9]*[a-z0-9])? (the 63-character bound does not change what globs cover)
_NAMESPACES = _Names(_NAMESPACE_ALPHABET, "start", _namespace_step, frozenset({"alnum"}))


def _any_name(patterns: Sequence[str]) -> _Names:
    """Every non-empty string. Its alphabet holds one character of each run of code points that no
    character of ``patterns`` bounds: every literal and class of the globs treats all of a run alike."""
    cuts = {0}
    for c in "".join(patterns):
        cuts.update((ord(c), min(ord(c) + 1, 0x10FFFF)))
    return _Names("".join(chr(c) for c in sorted(cuts)), "empty", lambda state, ch: "name", frozenset({"name"}))


def covers(patterns: Sequence[str], names: _Names, within: Sequence[str] | None = None) -> bool:
    """True when the globs ``patterns`` together match every name of ``names`` (of those matching a glob
    of ``within``, when given). Decided by a search for a name they miss; one too long to finish
    counts as not covering."""
    if not patterns:
        return False
    cover = [_Glob(_tokens(p)) for p in patterns]
    scope = [_Glob(_tokens(p)) for p in within] if within is not None else None
    State = tuple[str, tuple[frozenset[int], ...], tuple[frozenset[int], ...] | None]
    first: State = (names.start, tuple(g.start() for g in cover),
                    tuple(g.start() for g in scope) if scope is not None else None)
    seen = {first}
    todo = [first]
    budget = _MAX_STEPS
    while todo:
        name_state, cover_states, scope_states = todo.pop()
        in_scope = scope is None or (scope_states is not None and any(
            g.accepts(s) for g, s in zip(scope, scope_states)))
        if (name_state in names.accepting and in_scope
                and not any(g.accepts(s) for g, s in zip(cover, cover_states))):
            return False  # a name no pattern matches
        for ch in names.alphabet:
            nxt_name = names.step(name_state, ch)
            if nxt_name is None:
                continue
            budget -= len(cover) + len(scope or ())
            if budget < 0:
                return False
            nxt_scope = None
            if scope is not None and scope_states is not None:
                nxt_scope = tuple(g.step(s, ch) for g, s in zip(scope, scope_states))
                if not any(nxt_scope):
                    continue  # no longer a name of the scope
            state: State = (nxt_name, tuple(g.step(s, ch) for g, s in zip(cover, cover_states)), nxt_scope)
            if state not in seen:
                seen.add(state)
                todo.append(state)
    return True


# --- the findings --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Finding:
    criterion: str  # namespaces | users | groups
    field: str  # users[0], or users when only the patterns together match everyone
    why: str
    scope: str  # whose requests it exempts: "all", "controllers" or "anonymous"


def _claimed(policy: CompiledPolicy) -> list[str] | None:
    """The namespace globs a TenantPolicy's namespaces are limited to; None: any namespace."""
    match = policy.match
    if match is None or match.selector is not None:
        return None
    return [*sorted(match.names), *match.globs]


def _namespaces_finding(ex: Exemption, policy: CompiledPolicy) -> _Finding | None:
    within = _claimed(policy)
    whom = "every namespace" if within is None else f"every namespace {policy.kind} {policy.name} claims"
    for i, pattern in enumerate(ex.namespaces):
        if covers([pattern], _NAMESPACES, within):
            return _Finding("namespaces", f"namespaces[{i}]", f"{pattern!r} matches {whom}", "all")
    if covers(list(ex.namespaces), _NAMESPACES, within):
        return _Finding("namespaces", "namespaces", f"{list(ex.namespaces)} together match {whom}", "all")
    return None


def _users_finding(ex: Exemption) -> _Finding | None:
    for i, pattern in enumerate(ex.users):
        if covers([pattern], _any_name([pattern])):
            return _Finding("users", f"users[{i}]", f"{pattern!r} matches every user", "all")
    if len(ex.users) > 1 and covers(list(ex.users), _any_name(ex.users)):
        return _Finding("users", "users", f"{list(ex.users)} together match every user", "all")
    for i, pattern in enumerate(ex.users):
        for user, kinds in POD_CREATING_CONTROLLERS:
            if glob_match(pattern, user):
                who = repr(pattern) if pattern == user else f"{pattern!r} matches {user}, which"
                return _Finding("users", f"users[{i}]", f"{who} creates the pods of every {kinds}", "controllers")
    return None


def _groups_finding(ex: Exemption) -> _Finding | None:
    for group, (why, scope) in BROAD_GROUPS.items():  # the broadest first: the groups of an entry are ORed
        if group in ex.groups:
            return _Finding("groups", f"groups[{ex.groups.index(group)}]", why, scope)
    return None


_EFFECT = {
    "all": "this exemption turns the policy off for every request",
    "controllers": "this exemption turns the policy off for every pod these controllers create, most pods of "
                   "the cluster",
    "anonymous": "this exemption turns the policy off for every anonymous request",
}
_INSTEAD_CLUSTER = ("list the namespaces to exempt by name (namespaces: [kube-system]); to switch the policy off, "
                    "delete it or set enforcement: Audit")
_INSTEAD = {
    "namespaces": "list by name the few namespaces to exempt, not every one the tenant claims; to switch the policy "
                  "off, delete it or set enforcement: Audit",
    "users": "name the users to exempt (users: [ci-deployer]), or add namespaces: [...] to this entry to narrow it",
    "groups": "name a group only trusted callers are in (groups: [platform-admins]), or add namespaces: [...] to "
              "this entry to narrow it",
}


def exemption_warning(policy: CompiledPolicy, index: int) -> str | None:
    """The warning for ``spec.exemptions[index]`` of ``policy`` when every criterion it names matches everyone."""
    ex = policy.exemptions[index]
    findings: list[_Finding] = []
    for named, find in (
        (ex.namespaces, lambda: _namespaces_finding(ex, policy)),
        (ex.users, lambda: _users_finding(ex)),
        (ex.groups, lambda: _groups_finding(ex)),
    ):
        if not named:
            continue
        found = find()
        if found is None:
            return None  # this criterion narrows the entry (the criteria of an entry are ANDed)
        findings.append(found)
    scopes = {f.scope for f in findings} - {"all"}
    if not findings or len(scopes) > 1:
        return None  # nothing named, or criteria no request meets together (controllers that are anonymous)
    effect = _EFFECT[scopes.pop() if scopes else "all"]
    where = f"{policy.source}: {policy.kind} {policy.name}: spec.exemptions[{index}]"
    if len(findings) == 1:
        [f] = findings
        instead = _INSTEAD_CLUSTER if f.criterion == "namespaces" and not policy.is_tenant else _INSTEAD[f.criterion]
        return f"{where}.{f.field}: {f.why}, so {effect}; {instead}"
    whys = "; ".join(f"{f.field}: {f.why}" for f in findings)
    return (f"{where}: every criterion of this entry matches everyone ({whys}), so {effect}; name whom to exempt: "
            "namespaces by name (namespaces: [kube-system]), users (users: [ci-deployer]) or a group only trusted "
            "callers are in (groups: [platform-admins])")


def policy_warnings(policies: PolicySet) -> list[str]:
    """Warnings about policies that load but do nothing: each exemption entry that matches every request
    (file, policy, field, and what to write instead). The server logs them at load; ``tenantguard lint``
    prints them, as errors under ``--strict``."""
    out: list[str] = []
    for policy in (*policies.cluster, *policies.tenants):
        for index in range(len(policy.exemptions)):
            warning = exemption_warning(policy, index)
            if warning is not None:
                out.append(warning)
    return out
