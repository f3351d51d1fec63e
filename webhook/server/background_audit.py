"""The background audit: live pods judged every ``interval``, one PolicyReport per namespace kept current.

Opt-in (``serve --background-audit-interval``, the chart's ``backgroundAudit``), run only
by the replica holding the Lease (webhook.server.leader). Each run:

1. reads the cluster once (webhook.views.snapshot: paged lists, a consistent read);
2. judges every live pod as it is (webhook.core.audit, exactly what ``tenantguard audit``
   does) with the policies being served, and counts per policy: pods, denied, drift
   (written to each policy's status when policies come from the cluster);
3. builds one PolicyReport per namespace (webhook.core.policy_report) with at most
   ``max_results`` results (the worst first; the summary counts them all), and none for a
   namespace where everything passed unless ``include_clean``;
4. reconciles them with the reports it wrote before (listed by their
   ``app.kubernetes.io/managed-by: tenantguard`` label): a report is created, replaced
   only when its content changed (timestamps aside), and deleted when its namespace is
   clean or gone. Every write takes a token of the shared :class:`WriteBudget`.

So what reports cost etcd is bounded by the number of namespaces times ``max_results``,
never by the number of pods or admissions; a run over an unchanged cluster writes nothing.
Judging runs in a thread; it shares the interpreter with the admission handlers, so a
large audit adds a little latency to admissions while it runs (bench/report_scale.py).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from webhook.core.audit import AuditTally, is_live, judge_live
from webhook.core.plan import PolicySet
from webhook.core.policy_report import (API_VERSION, MANAGED_BY, REPORT_NAME, Judged, build_reports,
                                        without_timestamps)
from webhook.server.background import BackgroundLoop
from webhook.server.leader import LeaderElector
from webhook.server.policy_store import PolicyStore
from webhook.server.writes import WriteBudget
from webhook.views.snapshot import Snapshot, list_items, take_snapshot, why

log = logging.getLogger("tenantguard.audit")
REPORT_GROUP, REPORT_VERSION = API_VERSION.split("/")
REPORT_PLURAL = "policyreports"
REQUEST_TIMEOUT = 10.0  # seconds for one report write (at most a megabyte); stop() waits as long for one in flight
SELECTOR = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())


@dataclass(frozen=True, slots=True)
class AuditSettings:
    interval: float  # seconds between the end of one run and the start of the next
    max_results: int = 100  # results kept per report (the summary counts all)
    include_clean: bool = False  # a report for namespaces where everything passed, too


@dataclass(slots=True)
class AuditRun:
    """What one run found and wrote."""

    pods: int = 0
    denied: int = 0
    drift: int = 0
    reports: int = 0  # reports wanted after this run
    created: int = 0
    replaced: int = 0
    deleted: int = 0
    unchanged: int = 0
    failed: int = 0
    report_bytes: int = 0  # the JSON size of the reports wanted
    seconds: float = 0.0
    error: str | None = None
    tally: AuditTally = field(default_factory=AuditTally)

    @property
    def writes(self) -> int:
        return self.created + self.replaced + self.deleted

    def as_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__ if k != "tally"}


class BackgroundAudit(BackgroundLoop):
    task_name = "tenantguard-background-audit"

    def __init__(self, api: k8s_client.ApiClient, store: PolicyStore, elector: LeaderElector, budget: WriteBudget,
                 settings: AuditSettings, *, on_counts: Callable[[AuditTally], None] | None = None,
                 read: Callable[[k8s_client.ApiClient], Snapshot] = take_snapshot,
                 clock: Callable[[], float] = time.time) -> None:
        self._api = api
        self._custom = k8s_client.CustomObjectsApi(api)
        self._store = store
        self._elector = elector
        self._budget = budget
        self.settings = settings
        self._on_counts = on_counts
        self.on_run: Callable[[AuditRun], None] = lambda run: None  # every finished run (the metrics)
        self._read = read
        self._clock = clock
        self.runs = 0
        self.last: AuditRun | None = None
        self._finished = asyncio.Condition()
        self._foreign: set[str] = set()  # namespaces holding a report of our name that is not ours

    async def wait_runs(self, count: int) -> AuditRun:
        """Until ``count`` runs have finished (for tests and the benchmark); the last one."""
        async with self._finished:
            await self._finished.wait_for(lambda: self.runs >= count)
        assert self.last is not None
        return self.last

    async def _loop(self) -> None:
        while True:
            await self._elector.wait_leading()
            if self._store.loaded:
                await self.run_once()
            await asyncio.sleep(self.settings.interval)

    async def run_once(self) -> AuditRun:
        started = time.perf_counter()
        run = AuditRun()
        try:
            snapshot = await asyncio.to_thread(self._read, self._api)
            policies = self._store.current
            reports = await asyncio.to_thread(self._judge, snapshot, policies, run)
            if self._on_counts is not None:
                self._on_counts(run.tally)
            await self._reconcile(reports, run)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the next run tries again
            run.error = why(exc)
            log.warning("background audit failed: %s", run.error, extra={"event": "background_audit"})
        run.seconds = round(time.perf_counter() - started, 3)
        log.info("background audit: %d live pods, %d would be denied, %d drift; reports: %d created, %d replaced, "
                 "%d deleted, %d unchanged", run.pods, run.denied, run.drift, run.created, run.replaced, run.deleted,
                 run.unchanged, extra={"event": "background_audit", **run.as_json()})
        self.on_run(run)
        async with self._finished:
            self.runs += 1
            self.last = run
            self._finished.notify_all()
        return run

    def _judge(self, snapshot: Snapshot, policies: PolicySet, run: AuditRun) -> list[dict[str, Any]]:
        today = date.today()

        def judged() -> Any:
            for pod in snapshot.pods:
                if not is_live(pod):
                    continue
                _, decision, drift = judge_live(pod, policies, snapshot.state, today=today)
                run.tally.add(decision, drift)
                yield Judged(pod, str(pod["metadata"].get("namespace") or ""), decision)

        reports = build_reports(judged(), seconds=int(self._clock()), max_results=self.settings.max_results,
                                include_clean=self.settings.include_clean)
        run.pods, run.denied, run.drift = run.tally.pods, run.tally.denied, run.tally.drift
        run.reports = len(reports)
        run.report_bytes = sum(len(orjson.dumps(r)) for r in reports)
        return reports

    # --- writing the reports -----------------------------------------------------------------------------
    def _existing(self) -> dict[str, dict[str, Any]]:
        """Our reports in the cluster, by namespace."""
        listed = list_items(functools.partial(self._custom.list_cluster_custom_object, REPORT_GROUP, REPORT_VERSION,
                                              REPORT_PLURAL, label_selector=SELECTOR))
        return {(item.get("metadata") or {}).get("namespace", ""): item for item in listed
                if (item.get("metadata") or {}).get("name") == REPORT_NAME}

    async def _reconcile(self, reports: list[dict[str, Any]], run: AuditRun) -> None:
        existing = await asyncio.to_thread(self._existing)
        wanted = {r["metadata"]["namespace"]: r for r in reports}
        for namespace, report in wanted.items():
            have = existing.get(namespace)
            if have is not None and without_timestamps(have) == without_timestamps(report):
                run.unchanged += 1
                continue
            if have is None and namespace in self._foreign:
                run.unchanged += 1  # a report of that name that is not ours: left alone (said once)
                continue
            if not await self._write(run):
                return
            try:
                if have is None:
                    await self.in_thread(self._custom.create_namespaced_custom_object, REPORT_GROUP, REPORT_VERSION,
                                         namespace, REPORT_PLURAL, report, _request_timeout=REQUEST_TIMEOUT)
                    run.created += 1
                else:
                    body = {**report, "metadata": {**report["metadata"],
                                                   "resourceVersion": have["metadata"].get("resourceVersion")}}
                    await self.in_thread(self._custom.replace_namespaced_custom_object, REPORT_GROUP,
                                         REPORT_VERSION, namespace, REPORT_PLURAL, REPORT_NAME, body,
                                         _request_timeout=REQUEST_TIMEOUT)
                    run.replaced += 1
            except ApiException as exc:
                if have is None and exc.status == 409:  # one of that name exists without our label
                    self._foreign.add(namespace)
                    log.warning("namespace %s already has a PolicyReport named %s that tenantguard did not write "
                                "(no %s label): left alone; delete it to have tenantguard's report there",
                                namespace, REPORT_NAME, SELECTOR, extra={"event": "policy_report"})
                    continue
                run.failed += 1
                log.warning("writing the PolicyReport of %s failed: %s", namespace, why(exc),
                            extra={"event": "policy_report"})
        for namespace in sorted(set(existing) - set(wanted)):
            if not await self._write(run):
                return
            version = existing[namespace]["metadata"].get("resourceVersion")
            options = k8s_client.V1DeleteOptions(preconditions=k8s_client.V1Preconditions(resource_version=version))
            try:
                await self.in_thread(self._custom.delete_namespaced_custom_object, REPORT_GROUP, REPORT_VERSION,
                                     namespace, REPORT_PLURAL, REPORT_NAME, body=options,
                                     _request_timeout=REQUEST_TIMEOUT)
                run.deleted += 1
            except ApiException as exc:
                if exc.status not in (404, 409):  # gone, or rewritten meanwhile: the next run sees it
                    run.failed += 1
                    log.warning("deleting the PolicyReport of %s failed: %s", namespace, why(exc),
                                extra={"event": "policy_report"})

    async def _write(self, run: AuditRun) -> bool:
        """A token for one write; False when this process no longer leads (the new leader takes over)."""
        await self._budget.take()
        return self._elector.leading
