"""Build the PodSecurity conformance corpus from ``fixtures.yaml`` (next to this file).

Reproduces what k8s.io/pod-security-admission's ``test/fixtures_test.go`` writes to
``test/testdata/{baseline,restricted}/v1.N/{pass,fail}/<checkid-lowercase><i>.yaml``:
for every level and every version, the minimal valid pod(s) (``base``, and for restricted
``base_linux`` / ``base_windows``), then for every check that exists at that level and version
(its first revision is at or below the version; restricted also takes every baseline check,
overridden or not) the pass and fail variants of the newest fixture generator registered at
or below that version, applied to the minimal valid pod for the level and version.

Standard library plus PyYAML; no dependency on the engine under test. Used by
``tests/test_pod_security_conformance.py`` and ``bench/psa_conformance.py``.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

DATA = Path(__file__).with_name("fixtures.yaml")
LEVELS = ("baseline", "restricted")

_TOKEN = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\["([^"]*)"\]')


def parse_path(path: str) -> list[str | int]:
    """``spec.containers[0].securityContext`` / ``metadata.annotations["a/b"]`` -> segments."""
    out: list[str | int] = []
    pos = 0
    while pos < len(path):
        match = _TOKEN.match(path, pos)
        if match is None:
            raise ValueError(f"bad path {path!r} at {pos}")
        name, index, key = match.groups()
        out.append(int(index) if index is not None else (name if name is not None else key))
        pos = match.end()
    return out


def _set(pod: dict[str, Any], path: str, value: Any) -> None:
    segments = parse_path(path)
    node: Any = pod
    for seg, nxt in itertools.pairwise(segments):
        if isinstance(seg, int):
            node = node[seg]
            continue
        child = node.get(seg)
        if child is None:
            if value is None:
                return  # deleting under an absent parent: nothing to do
            child = [] if isinstance(nxt, int) else {}
            node[seg] = child
        node = child
    last = segments[-1]
    if value is None:
        if isinstance(last, int):
            raise ValueError(f"cannot delete list element in {path!r}")
        node.pop(last, None)
    else:
        node[last] = copy.deepcopy(value)


def get_path(pod: dict[str, Any], path: str) -> Any:
    node: Any = pod
    for seg in parse_path(path):
        if isinstance(seg, int):
            if not isinstance(node, list) or seg >= len(node):
                return None
            node = node[seg]
        else:
            if not isinstance(node, dict):
                return None
            node = node.get(seg)
        if node is None:
            return None
    return node


def _containers(pod: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = pod.setdefault("spec", {})
    for key in ("containers", "initContainers"):
        yield from spec.get(key) or []


def _ensure(pod: dict[str, Any], what: str) -> None:
    spec = pod.setdefault("spec", {})
    if what == "annotations":
        pod.setdefault("metadata", {})
        if pod["metadata"].get("annotations") is None:
            pod["metadata"]["annotations"] = {}
        return
    if what in ("podSecurityContext", "securityContext", "capabilities", "seLinuxOptions", "windowsOptions"):
        if spec.get("securityContext") is None:
            spec["securityContext"] = {}
        if what == "podSecurityContext":
            return
        for container in _containers(pod):
            if container.get("securityContext") is None:
                container["securityContext"] = {}
        if what == "capabilities":
            for container in _containers(pod):
                if container["securityContext"].get("capabilities") is None:
                    container["securityContext"]["capabilities"] = {}
        elif what == "seLinuxOptions":
            if spec["securityContext"].get("seLinuxOptions") is None:
                spec["securityContext"]["seLinuxOptions"] = {}
            for container in _containers(pod):
                if container["securityContext"].get("seLinuxOptions") is None:
                    container["securityContext"]["seLinuxOptions"] = {}
        elif what == "windowsOptions":
            targets = [spec["securityContext"], spec["containers"][0]["securityContext"],
                       spec["initContainers"][0]["securityContext"]]
            for target in targets:
                if target.get("windowsOptions") is None:
                    target["windowsOptions"] = {}
        return
    raise ValueError(f"unknown ensure {what!r}")


def apply(pod: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """A tweaked deep copy of ``pod`` (upstream's ``tweak``)."""
    out = copy.deepcopy(pod)
    for op in ops or []:
        if "set" in op:
            for path, value in op["set"].items():
                _set(out, path, value)
        elif "ensure" in op:
            _ensure(out, op["ensure"])
        else:
            raise ValueError(f"unknown tweak {op!r}")
    # an emptied annotations map is omitted on the wire (omitempty)
    meta = out.get("metadata")
    if isinstance(meta, dict) and meta.get("annotations") == {}:
        del meta["annotations"]
    return out


@dataclass(frozen=True)
class CheckDef:
    id: str
    level: str
    versions: tuple[int, ...]
    overrides: dict[int, tuple[str, ...]]

    def revision_at(self, minor: int) -> int | None:
        found = None
        for since in self.versions:
            if since <= minor:
                found = since
        return found


@dataclass
class Generator:
    check: str
    level: str
    since: int
    expect: str
    pass_prepare: list[dict[str, Any]]
    fail_prepare: list[dict[str, Any]]
    passes: list[Any]
    fails: list[Any]
    skip_pass_if: list[dict[str, Any]] = field(default_factory=list)
    extra: bool = False
    until: int | None = None


@dataclass(frozen=True)
class Case:
    """One corpus pod: evaluate ``pod`` at ``level``/``version``; ``kind`` is pass or fail."""

    level: str
    minor: int
    kind: str
    check: str          # the check id whose fixture this is ("base" for the minimal valid pods)
    name: str           # the upstream file stem, e.g. ``runasnonroot0`` (``x-`` prefix for ours)
    expect: str         # substring the denial message must contain (fail cases)
    pod: dict[str, Any]
    extra: bool = False

    @property
    def version(self) -> str:
        return f"v1.{self.minor}"

    @property
    def id(self) -> str:
        return f"{self.level}-{self.version}-{self.kind}-{self.name}"


class Corpus:
    def __init__(self, path: Path = DATA) -> None:
        raw = yaml.safe_load(path.read_text())
        self.newest_minor: int = raw["newest_minor_to_generate"]
        self.checks: list[CheckDef] = [
            CheckDef(c["id"], c["level"], tuple(c["versions"]),
                     {int(k): tuple(v) for k, v in (c.get("overrides") or {}).items()})
            for c in raw["checks"]
        ]
        self._minimal_raw: dict[str, list[dict[str, Any]]] = raw["minimal_pods"]
        self._minimal: dict[tuple[str, int], dict[str, Any]] = {}
        self.generators: list[Generator] = [
            Generator(
                check=g["check"], level=g["level"], since=g["since"], expect=g.get("expect") or g["check"],
                pass_prepare=g.get("pass_prepare") or [], fail_prepare=g.get("fail_prepare") or [],
                passes=g.get("pass") or [], fails=g.get("fail") or [], skip_pass_if=g.get("skip_pass_if") or [],
                extra=bool(g.get("extra")), until=g.get("until"),
            )
            for g in raw["generators"]
        ]
        self._validate()

    # -- structure ---------------------------------------------------------------------------------

    def _validate(self) -> None:
        ids = {c.id for c in self.checks}
        seen: set[tuple[str, str, int]] = set()
        for g in self.generators:
            if g.check not in ids:
                raise ValueError(f"generator for unknown check {g.check}")
            if g.extra:
                continue
            # registerFixtureGenerator: one generator per key; a baseline key also takes the restricted key
            for level in (("baseline", "restricted") if g.level == "baseline" else ("restricted",)):
                key = (level, g.check, g.since)
                if key in seen:
                    raise ValueError(f"fixture generator already registered for {key}")
                seen.add(key)
            if not g.fails:
                raise ValueError(f"generateFail for {g.check}@{g.since} must return at least one pod")

    def minimal_pod(self, kind: str, minor: int) -> dict[str, Any]:
        """GetMinimalValidPod / ...LinuxPod / ...WindowsPod: the newest definition at or below ``minor``."""
        entries = [e for e in self._minimal_raw[kind] if e["since"] <= minor]
        if not entries:
            raise ValueError(f"no minimal {kind} pod at v1.{minor}")
        return copy.deepcopy(self._build_minimal(kind, entries[-1]["since"]))

    def _build_minimal(self, kind: str, since: int) -> dict[str, Any]:
        key = (kind, since)
        if key not in self._minimal:
            entries = self._minimal_raw[kind]
            index = next(i for i, e in enumerate(entries) if e["since"] == since)
            entry = entries[index]
            if "pod" in entry:
                pod = copy.deepcopy(entry["pod"])
            else:
                base_kind, base_since = entry.get("base") or (kind, entries[index - 1]["since"])
                pod = self._build_minimal(base_kind, base_since)
            self._minimal[key] = apply(pod, entry.get("tweak") or [])
        return self._minimal[key]

    def checks_for(self, level: str, minor: int) -> list[CheckDef]:
        """checksForLevelAndVersion: every check of the level (restricted: of both levels) existing at ``minor``."""
        return [c for c in self.checks
                if c.versions[0] <= minor and (c.level == level or level == "restricted")]

    def overriders(self, level: str, minor: int, check_id: str) -> set[str]:
        """Restricted checks whose revision in force at ``minor`` overrides ``check_id``."""
        if level != "restricted":
            return set()
        out = set()
        for c in self.checks:
            since = c.revision_at(min(minor, self.policy_max()))
            if c.level == "restricted" and since is not None and check_id in c.overrides.get(since, ()):
                out.add(c.id)
        return out

    def policy_max(self) -> int:
        return max(v for c in self.checks for v in c.versions)

    def generator(self, level: str, check: str, minor: int) -> Generator | None:
        """getFixtures: the newest upstream generator for (level, check) registered at or below ``minor``."""
        levels = ("baseline", "restricted") if level == "restricted" else ("baseline",)
        found = None
        for g in self.generators:
            if g.extra or g.check != check or g.level not in levels or g.since > minor:
                continue
            if found is None or g.since > found.since:
                found = g
        return found

    def extras(self, level: str, check: str, minor: int) -> list[Generator]:
        levels = ("baseline", "restricted") if level == "restricted" else ("baseline",)
        return [g for g in self.generators
                if g.extra and g.check == check and g.level in levels and g.since <= minor
                and (g.until is None or minor <= g.until)]

    # -- generation --------------------------------------------------------------------------------

    @staticmethod
    def _skip_pass(g: Generator, pod: dict[str, Any]) -> bool:
        for cond in g.skip_pass_if:
            value = get_path(pod, cond["path"])
            if "equals" in cond and value == cond["equals"]:
                return True
            if "contains" in cond and isinstance(value, list) and cond["contains"] in value:
                return True
        return False

    @staticmethod
    def _variants(g: Generator, kind: str, level: str) -> list[list[dict[str, Any]]]:
        out = []
        for variant in (g.passes if kind == "pass" else g.fails):
            if isinstance(variant, dict):  # {levels: [...], tweak: [...]}
                if level not in variant.get("levels", LEVELS):
                    continue
                out.append(variant.get("tweak") or [])
            else:
                out.append(variant or [])
        return out

    def cases(self, *, extras: bool = True, newest_minor: int | None = None) -> Iterator[Case]:
        top = self.newest_minor if newest_minor is None else newest_minor
        for level in LEVELS:
            for minor in range(top + 1):
                yield from self.cases_at(level, minor, extras=extras)

    def cases_at(self, level: str, minor: int, *, extras: bool = True) -> Iterator[Case]:
        base = self.minimal_pod(level, minor)
        yield Case(level, minor, "pass", "base", "base", "", base)
        if level == "restricted":
            yield Case(level, minor, "pass", "base", "base_linux", "", self.minimal_pod("restricted_linux", minor))
            yield Case(level, minor, "pass", "base", "base_windows", "",
                       self.minimal_pod("restricted_windows", minor))
        for check in self.checks_for(level, minor):
            g = self.generator(level, check.id, minor)
            if g is None:
                raise ValueError(f"no fixture generator for {level}/{check.id}@v1.{minor}")
            yield from self._generate(g, level, minor, base, check.id.lower())
            if extras:
                for x in self.extras(level, check.id, minor):
                    yield from self._generate(x, level, minor, base, f"x-{check.id.lower()}-{x.since}-")

    def _generate(self, g: Generator, level: str, minor: int, base: dict[str, Any], stem: str) -> Iterator[Case]:
        if not self._skip_pass(g, base):
            prepared = apply(base, g.pass_prepare)
            for i, ops in enumerate(self._variants(g, "pass", level)):
                yield Case(level, minor, "pass", g.check, f"{stem}{i}", g.expect, apply(prepared, ops), g.extra)
        prepared = apply(base, g.fail_prepare)
        for i, ops in enumerate(self._variants(g, "fail", level)):
            yield Case(level, minor, "fail", g.check, f"{stem}{i}", g.expect, apply(prepared, ops), g.extra)

    def write(self, root: Path, *, extras: bool = False) -> int:
        """Lay the corpus out like upstream's testdata; returns the number of files written."""
        count = 0
        for case in self.cases(extras=extras):
            directory = root / case.level / case.version / case.kind
            directory.mkdir(parents=True, exist_ok=True)
            metadata: dict[str, Any] = {"name": case.name, **(case.pod.get("metadata") or {})}
            doc = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": case.pod.get("spec") or {}}
            (directory / f"{case.name}.yaml").write_text(yaml.safe_dump(doc, sort_keys=True))
            count += 1
        return count
