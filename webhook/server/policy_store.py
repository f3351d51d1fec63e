"""The live policy set: loaded at start, reloaded when the files change, the last good set kept.

Change detection polls a cheap fingerprint every ``interval`` seconds (1 s by default), in a
thread (the event loop keeps answering while a thousand policy files are stat'ed):
the path, inode, size and mtime of every policy file (``stat`` follows symlinks), plus
the target of each directory's ``..data`` link. That catches an edit in place, a file
added or removed, and the atomic swap a mounted ConfigMap does (kubelet writes a new
``..2024_...`` directory, then renames the ``..data`` symlink onto it: every
``x.yaml -> ..data/x.yaml`` link now resolves to a new inode). Polling costs a few
``stat`` calls per second, needs no inotify binding and behaves the same on every
volume type (inotify misses changes on some network file systems).

A reload runs the loader in a thread (the event loop keeps answering meanwhile) and
swaps ``current`` in one assignment: a request sees the old set or the new one, never
a mix. A broken file keeps the last good set, is logged with every error (file,
document, field) and the files they are in, and counted; it is not retried until the
files change again. The failure stays visible until a reload succeeds
(:attr:`PolicyStore.last_failure`: ``/readyz`` names it while staying 200, and the
``tenantguard_policy_last_reload_success`` gauge is 0): a replica that went unready over
a typo in a policy file would be a lockout, while the last good set keeps serving.

Files are one :class:`PolicySource`; the other is the cluster (``serve --policies-from
cluster``: TenantPolicy and ClusterPolicy objects, webhook.views.policy_objects), whose
fingerprint is the revision of the objects' content. The rules above hold for both.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from webhook.core.plan import PolicySet
from webhook.policy.exemptions import policy_warnings
from webhook.inputs.yamlio import DOCUMENT_SUFFIXES
from webhook.policy.loader import PolicyError, load_policies, policy_files

log = logging.getLogger("tenantguard.policies")

Fingerprint = tuple[tuple[str, ...], ...]


class ReloadListener(Protocol):
    def policy_reloaded(self, ok: bool, policies: PolicySet | None) -> None: ...


class PolicySource(Protocol):
    """Where the policies come from: files, or the cluster's policy objects."""

    name: str  # for logs: "policy files", "the cluster"

    def fingerprint(self) -> Hashable:
        """What identifies the current content, without loading it (run in a thread)."""

    def load(self) -> PolicySet:
        """The PolicySet of the current content; raise PolicyError naming every problem (run in a thread)."""

    def named(self, errors: Iterable[str]) -> tuple[str, ...]:
        """The files or objects the error lines are about, in order."""


@dataclass(frozen=True, slots=True)
class ReloadFailure:
    """The last reload that failed (while no later one succeeded)."""

    at: float  # time.time() of the attempt
    errors: tuple[str, ...]
    files: tuple[str, ...]  # the policy files the errors are about

    def describe(self, now: float) -> str:
        """``reload failed 12s ago: trading.yaml: document 1: ...`` (the first error; how many more)."""
        first = self.errors[0] if self.errors else "unknown error"
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        return f"reload failed {max(0, int(now - self.at))}s ago: {first}{more}"


def files_named(errors: Iterable[str], paths: Iterable[str | Path]) -> tuple[str, ...]:
    """The policy files (under ``paths``) that ``errors`` lines are about, in order."""
    try:
        candidates = [str(f) for f in policy_files(paths)]
    except PolicyError:
        candidates = []
    candidates += [str(p) for p in paths]
    found: dict[str, None] = {}
    for line in errors:
        for name in sorted(candidates, key=len, reverse=True):
            if line.startswith(name + ":"):
                found[name] = None
                break
    return tuple(found)


@dataclass(frozen=True, slots=True)
class ReloadResult:
    ok: bool
    generation: str  # the generation served after this attempt
    changed: bool  # the served generation differs from before
    errors: tuple[str, ...] = ()


def _scan(directory: str, out: list[tuple[str, ...]]) -> None:
    """The policy files under ``directory`` (as ``document_files`` walks them: recursively, sorted, hidden
    entries skipped) with their inode, size and mtime, through ``os.scandir``: one system call per file,
    none of pathlib's per-path work (a thousand tenants are a thousand files, checked every second)."""
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        out.append(("unreadable", directory, exc.strerror or ""))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            if entry.is_dir():
                _scan(entry.path, out)
                continue
            if not entry.name.endswith(DOCUMENT_SUFFIXES) or not entry.is_file():
                continue
            st = entry.stat()
        except OSError as exc:
            out.append(("unreadable", entry.path, exc.strerror or ""))
            continue
        out.append((entry.path, str(st.st_ino), str(st.st_size), str(st.st_mtime_ns)))


def fingerprint(paths: Iterable[str | Path]) -> Fingerprint:
    """What identifies the current content of the policy files, without reading them."""
    out: list[tuple[str, ...]] = []
    for p in paths:
        path = str(p)
        data = os.path.join(path, "..data")
        if os.path.islink(data):
            out.append(("..data", path, os.readlink(data)))
    for p in paths:
        path = str(p)
        if os.path.isdir(path):
            _scan(path, out)
            continue
        try:
            st = os.stat(path)
        except OSError:
            return tuple(out) + (("missing", f"{path}: no such file or directory"),)
        out.append((path, str(st.st_ino), str(st.st_size), str(st.st_mtime_ns)))
    return tuple(out)


class FileSource:
    """Policy files and directories, reloaded when their fingerprint changes."""

    name = "policy files"

    def __init__(self, paths: Iterable[str | Path],
                 loader: Callable[[list[str | Path]], PolicySet] = load_policies) -> None:
        self.paths: list[str | Path] = list(paths)
        self._loader = loader

    def fingerprint(self) -> Fingerprint:
        return fingerprint(self.paths)

    def load(self) -> PolicySet:
        return self._loader(self.paths)

    def named(self, errors: Iterable[str]) -> tuple[str, ...]:
        return files_named(errors, self.paths)


class PolicyStore:
    """Holds the PolicySet every request reads (``current``)."""

    def __init__(self, paths: Iterable[str | Path] = (), *, listener: ReloadListener | None = None,
                 loader: Callable[[list[str | Path]], PolicySet] = load_policies,
                 source: PolicySource | None = None):
        self.source: PolicySource = source if source is not None else FileSource(paths, loader)
        self._listener = listener
        self._current: PolicySet | None = None
        self._fingerprint: Hashable | None = None
        self.loaded_at = 0.0
        self.last_errors: tuple[str, ...] = ()
        self.last_failure: ReloadFailure | None = None
        self.attempts = 0
        self._attempted: asyncio.Condition | None = None

    @classmethod
    def from_policy_set(cls, policies: PolicySet) -> PolicyStore:
        """A store serving a fixed set (tests, benchmarks): nothing to watch."""
        store = cls([])
        store._current = policies
        store.loaded_at = time.time()
        return store

    @property
    def current(self) -> PolicySet:
        if self._current is None:
            raise RuntimeError("PolicyStore.load() was not called")
        return self._current

    @property
    def loaded(self) -> bool:
        return self._current is not None

    @property
    def generation(self) -> str:
        return self._current.generation if self._current is not None else ""

    def load(self) -> PolicySet:
        """The first load, synchronous: raise PolicyError (the server refuses to start without policies)."""
        fp = self.source.fingerprint()
        policies = self.source.load()
        self._install(policies, fp)
        return policies

    def _install(self, policies: PolicySet, fp: Hashable) -> None:
        self._current = policies
        self._fingerprint = fp
        self.loaded_at = time.time()
        self.last_errors = ()
        self.last_failure = None
        for warning in policy_warnings(policies):  # loads, but turns a policy off (an exemption matching all)
            log.warning("%s", warning, extra={"event": "policy_warning", "generation": policies.generation})
        if self._listener is not None:
            self._listener.policy_reloaded(True, policies)

    async def reload_if_changed(self) -> ReloadResult | None:
        """Reload when the source changed since the last attempt; None when it did not."""
        if isinstance(self.source, FileSource) and not self.source.paths:
            return None
        # a stat per policy file: a thousand tenants are a thousand files, so never on the event loop
        fp = await asyncio.to_thread(self.source.fingerprint)
        if fp == self._fingerprint:
            return None
        return await self._reload(fp)

    async def reload(self) -> ReloadResult:
        """Reload now, changed or not."""
        return await self._reload(await asyncio.to_thread(self.source.fingerprint))

    async def _reload(self, fp: Hashable) -> ReloadResult:
        before = self.generation
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            policies = await loop.run_in_executor(None, self.source.load)
        except PolicyError as exc:
            result = self._failed(fp, tuple(exc.errors), before)
        except Exception as exc:  # noqa: BLE001 - a loader crash must not take the server down
            result = self._failed(fp, (f"{type(exc).__name__}: {exc}",), before)
        else:
            self._install(policies, fp)
            result = ReloadResult(True, policies.generation, policies.generation != before)
            log.info("policies reloaded", extra={
                "event": "policy_reload", "result": "success", "generation": policies.generation,
                "previous_generation": before, "changed": result.changed,
                "policies": [p.name for p in (*policies.cluster, *policies.tenants)],
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            })
        await self._note_attempt()
        return result

    def _failed(self, fp: Hashable, errors: tuple[str, ...], before: str) -> ReloadResult:
        self._fingerprint = fp  # not retried until the files change again
        self.last_errors = errors
        files = self.source.named(errors)
        self.last_failure = ReloadFailure(time.time(), errors, files)
        if self._listener is not None:
            self._listener.policy_reloaded(False, None)
        log.error("policy reload failed (%s); still serving the last good set", ", ".join(files) or self.source.name,
                  extra={"event": "policy_reload", "result": "failure", "generation": before,
                         "files": list(files), "errors": list(errors)})
        return ReloadResult(False, before, False, errors)

    async def _note_attempt(self) -> None:
        self.attempts += 1
        if self._attempted is None:
            self._attempted = asyncio.Condition()
        async with self._attempted:
            self._attempted.notify_all()

    async def wait_for_attempts(self, count: int) -> None:
        """Until ``count`` reload attempts have finished (for tests and the watcher's callers)."""
        if self._attempted is None:
            self._attempted = asyncio.Condition()
        async with self._attempted:
            await self._attempted.wait_for(lambda: self.attempts >= count)
