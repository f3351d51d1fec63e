"""The status of each TenantPolicy and ClusterPolicy object, written by the elected replica.

With ``--policies-from cluster`` every replica loads the objects; the one holding the Lease
(webhook.server.leader) also writes what the load made of each object to its ``status``
subresource:

- ``Ready`` ``True`` / ``Loaded``: this generation is part of the set the webhook enforces;
- ``Ready`` ``False`` / ``Invalid``: this generation has errors; the message names each
  field and why (the lines ``tenantguard lint`` prints); the last good set is enforced;
- ``Ready`` ``False`` / ``Blocked``: this generation is valid, but another object's error
  keeps the whole set from loading (a reload is all or nothing, as with files);
- ``observedGeneration``: the ``metadata.generation`` the condition is about;
- ``audit``: the counts of the last background audit (live pods, denied, drift), when it runs.

A status says nothing that changes when *another* policy changes (not the generation of the
whole set): an edit of one policy writes that policy's status, not every policy's.

Bounded writes: a status is written only when it differs from the stored one (a
condition's ``lastTransitionTime`` moves only when its status flips, audit counts only when
they change), each write takes a token of the shared :class:`WriteBudget`, and a write the
API server refuses (the object changed meanwhile) is simply redone from the next event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from webhook.core.audit import PolicyCounts
from webhook.policy.resources import GROUP, PLURALS, VERSION, object_name
from webhook.policy.status import BLOCKED, INVALID, LOADED, READY, AuditCounts, Condition, PolicyStatus
from webhook.server.background import BackgroundLoop
from webhook.server.leader import LeaderElector
from webhook.server.policy_store import PolicyStore
from webhook.server.writes import WriteBudget
from webhook.views.policy_objects import ClusterPolicySource, WatchedPolicies, version_of
from webhook.views.snapshot import why

log = logging.getLogger("tenantguard.status")
MESSAGE_LIMIT = 4096
MERGE_PATCH = "application/merge-patch+json"


RETRY_SECONDS = 5.0  # after a failed write, the next attempt (unless a change comes first)
REQUEST_TIMEOUT = 10.0  # seconds for one status write


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class StatusWriter(BackgroundLoop):
    task_name = "tenantguard-policy-status"

    def __init__(self, api: k8s_client.ApiClient, watched: WatchedPolicies, store: PolicyStore,
                 elector: LeaderElector, budget: WriteBudget, *, audits: bool = False,
                 clock: Callable[[], datetime] = _now) -> None:
        self._custom = k8s_client.CustomObjectsApi(api)
        self._watched = watched
        self._source: ClusterPolicySource = watched.source
        self._store = store
        self._elector = elector
        self._budget = budget
        self._clock = clock
        self._audit: dict[str, AuditCounts] = {}  # policy name -> counts (with when first found)
        # with a background audit, the counts written by a previous leader stay until this one's first run
        self._audits = audits
        self._audited = False
        self._written: dict[tuple[str, str], tuple[Any, dict[str, Any]]] = {}  # (kind, name) -> (version, status)
        self._kick = asyncio.Event()
        self.writes = 0
        self.failures = 0
        self.on_write: Callable[[bool], None] = lambda ok: None  # every write's outcome (the metrics)
        watched.add_listener(self.kick)
        elector.add_listener(self.kick)

    def kick(self) -> None:
        """Something changed (a reload attempt, an object, an audit): compare and write what differs."""
        self._kick.set()

    def audit_finished(self, counts: Mapping[str, PolicyCounts]) -> None:
        """The background audit's counts per policy name; written where they changed."""
        now = self._clock()
        fresh: dict[str, AuditCounts] = {}
        known = self._audit if self._audited else self._written_counts()
        for name, c in counts.items():
            previous = known.get(name)
            same = previous is not None and (previous.pods, previous.denied, previous.drift) == (c.pods, c.denied,
                                                                                                    c.drift)
            fresh[name] = previous if same and previous is not None else AuditCounts(
                pods=c.pods, denied=c.denied, drift=c.drift, since=now)
        self._audit = fresh
        self._audited = True
        self.kick()

    async def _loop(self) -> None:
        while True:
            await self._elector.wait_leading()
            self._kick.clear()
            failures = self.failures
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - tried again below
                failures = -1
                log.exception("writing policy status failed", extra={"event": "policy_status"})
            if self.failures != failures:  # a write failed: again after RETRY_SECONDS, or at the next change
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._kick.wait(), RETRY_SECONDS)
            else:
                await self._kick.wait()

    # --- what to write ---------------------------------------------------------------------------------
    def desired(self, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        """The status ``obj`` should carry, as JSON; None when no load has read its generation yet."""
        name = object_name(obj)
        meta = obj.get("metadata") or {}
        generation = meta.get("generation")
        outcome = self._source.outcome
        served = self._source.served
        version = version_of(obj)
        if name in served and served[name] == version and self._store.loaded:
            state, reason = "True", LOADED
            message = "enforced"
        elif outcome is not None and not outcome.ok and outcome.read.get(name) == version:
            if name in outcome.errors:
                state, reason = "False", INVALID
                message = "; ".join(outcome.errors[name])
            else:
                state, reason = "False", BLOCKED
                others = [n for n in outcome.errors if n != name]
                cause = f"{others[0]} is invalid" if others else "the policy set does not load"
                more = f" (and {len(others) - 1} more)" if len(others) > 1 else ""
                kept = f"the last good set ({self._store.generation})" if self._store.loaded else "no policies"
                message = f"valid, but not enforced: {cause}{more}; the webhook enforces {kept}"
        else:
            return None
        if len(message) > MESSAGE_LIMIT:
            message = message[:MESSAGE_LIMIT - 1] + "…"
        current = obj.get("status") if isinstance(obj.get("status"), Mapping) else {}
        assert isinstance(current, Mapping)
        before = next((c for c in current.get("conditions") or () if isinstance(c, Mapping) and c.get("type") == READY),
                      None)
        since = before.get("lastTransitionTime") if before is not None and before.get("status") == state else None
        condition = Condition(type=READY, status=state, reason=reason, message=message,  # type: ignore[arg-type]
                              lastTransitionTime=since or self._clock(), observedGeneration=generation)
        meta_name = meta.get("name", "")
        status = PolicyStatus(observedGeneration=generation, conditions=[condition], audit=self._counts(meta_name, current))
        return status.model_dump(mode="json", exclude_none=True)

    def _written_counts(self) -> dict[str, AuditCounts]:
        """The counts the objects carry (a previous leader's): kept, ``since`` included, where they still hold."""
        out = {}
        for obj in self._watched.objects.snapshot()[1]:
            status = obj.get("status")
            counts = self._counts("", status) if isinstance(status, Mapping) else None
            if counts is not None:
                out[(obj.get("metadata") or {}).get("name", "")] = counts
        return out

    def _counts(self, name: str, current: Mapping[str, Any]) -> AuditCounts | None:
        if self._audited:
            return self._audit.get(name)
        if not self._audits or not isinstance(current.get("audit"), Mapping):
            return None
        try:  # the previous leader's counts, kept as they are until this process has audited
            return AuditCounts.model_validate(current["audit"])
        except ValueError:
            return None

    async def sync(self) -> int:
        """Write every status that differs from the stored one; the number written.

        What was written is remembered with the object's resourceVersion it was written over: until
        the watch brings the object back with it, the same status is not written again."""
        _, objects = self._watched.objects.snapshot()
        written = 0
        for obj in objects:
            want = self.desired(obj)
            if want is None or _same(want, obj.get("status")):
                continue
            key, version = _key(obj), (obj.get("metadata") or {}).get("resourceVersion")
            if self._written.get(key) == (version, want):
                continue  # written already; the watch has not brought it back yet
            await self._budget.take()
            if not self._elector.leading:
                break
            if self._written.get(key) == (version, want):
                continue
            self._written[key] = (version, want)
            if await self.in_thread(self._patch, obj, want):
                written += 1
            else:
                self._written.pop(key, None)
        present = {_key(obj) for obj in objects}
        for key in [k for k in self._written if k not in present]:
            del self._written[key]
        return written

    def _patch(self, obj: Mapping[str, Any], status: dict[str, Any]) -> bool:
        kind = str(obj.get("kind"))
        name = (obj.get("metadata") or {}).get("name", "")
        have = obj.get("status")
        stale = {k: None for k in have if k in _KEYS and k not in status} if isinstance(have, Mapping) else {}
        # a merge patch removes what is null; the resourceVersion makes it conditional: a status computed
        # from an older object (a watch behind, a replica that lost the Lease) is refused, 409
        version = (obj.get("metadata") or {}).get("resourceVersion")
        body = {"metadata": {"resourceVersion": version}, "status": {**status, **stale}}
        try:
            self._custom.patch_cluster_custom_object_status(GROUP, VERSION, PLURALS[kind], name, body,
                                                            _content_type=MERGE_PATCH,
                                                            _request_timeout=REQUEST_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - refused, or the connection failed: tried again later
            self.failures += 1
            self.on_write(False)
            if isinstance(exc, ApiException) and exc.status in (404, 409):  # deleted or changed meanwhile
                return False
            log.warning("writing the status of %s/%s failed: %s", kind, name, why(exc),
                        extra={"event": "policy_status"})
            return False
        self.writes += 1
        self.on_write(True)
        log.info("status of %s/%s: %s", kind, name, status["conditions"][0]["reason"],
                 extra={"event": "policy_status", "policy": f"{kind}/{name}",
                        "ready": status["conditions"][0]["status"]})
        return True


_KEYS = frozenset(PolicyStatus.model_fields)


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    return str(obj.get("kind")), str((obj.get("metadata") or {}).get("name", ""))


def _same(want: Mapping[str, Any], have: Any) -> bool:
    if not isinstance(have, Mapping):
        return False
    return dict(want) == {k: v for k, v in have.items() if k in _KEYS}
