"""What a server process does with the cluster besides judging admissions.

- ``--policies-from cluster``: watch the TenantPolicy and ClusterPolicy objects
  (webhook.views.policy_objects) and serve them through the PolicyStore (same reload rules
  as files); until they are first listed the store is empty: ``/readyz`` says so and
  admissions are answered 503 (the webhook's ``failurePolicy`` decides);
- leader election (webhook.server.leader) when anything is written to the cluster, then,
  in the elected process only: the policies' status (webhook.server.policy_status) and
  the background audit with its PolicyReports (webhook.server.background_audit), under
  one :class:`WriteBudget`.

Every process of every replica watches and serves alike; writing is the one thing elected.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os

from kubernetes import client as k8s_client

from webhook.core.audit import AuditTally
from webhook.server.background import cancel
from webhook.server.background_audit import AuditRun, AuditSettings, BackgroundAudit
from webhook.server.leader import LeaderElector, LeaseSettings
from webhook.server.metrics import Metrics
from webhook.server.policy_status import StatusWriter
from webhook.server.policy_store import PolicyStore
from webhook.server.settings import ServerSettings
from webhook.server.writes import WriteBudget
from webhook.views.policy_objects import WatchedPolicies

log = logging.getLogger("tenantguard.server")


def lease_namespace(settings: ServerSettings) -> str:
    return settings.lease_namespace or os.environ.get("POD_NAMESPACE") or "default"


class ClusterDuties:
    def __init__(self, settings: ServerSettings, api: k8s_client.ApiClient,
                 watched: WatchedPolicies | None = None, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.api = api
        self.watched = watched
        self.elector: LeaderElector | None = None
        self.status: StatusWriter | None = None
        self.audit: BackgroundAudit | None = None
        self.budget = WriteBudget(rate=settings.write_rate)
        self._first_load: asyncio.Task | None = None
        self.listed = False  # the first load from the cluster was attempted: later changes reload as usual

    def start(self, store: PolicyStore) -> None:
        settings = self.settings
        if self.watched is not None:
            self.watched.start()
            self._first_load = asyncio.create_task(self._load_when_listed(store), name="tenantguard-first-policies")
        if settings.elects_leader:
            lease = LeaseSettings(namespace=lease_namespace(settings), name=settings.lease_name)
            if settings.lease_identity:
                lease = dataclasses.replace(lease, identity=settings.lease_identity)
            self.elector = LeaderElector(self.api, lease)
            if self.watched is not None:
                self.status = StatusWriter(self.api, self.watched, store, self.elector, self.budget,
                                           audits=settings.audit_interval > 0)
                self.status.start()
                if self.metrics is not None:
                    self.status.on_write = functools.partial(self.metrics.api_written, "status")
            if settings.audit_interval > 0:
                self.audit = BackgroundAudit(
                    self.api, store, self.elector, self.budget,
                    AuditSettings(settings.audit_interval, settings.report_max_results, settings.report_clean),
                    on_counts=self._counts)
                self.audit.start()
                if self.metrics is not None:
                    self.audit.on_run = self._audit_ran
            elector = self.elector
            if self.metrics is not None:
                metrics = self.metrics
                elector.add_listener(lambda: metrics.leading(elector.leading))
            elector.start()

    def _audit_ran(self, run: AuditRun) -> None:
        assert self.metrics is not None
        self.metrics.api_written("policyreport", True, run.writes)
        self.metrics.api_written("policyreport", False, run.failed)
        self.metrics.audit_ran(run.error is None, run.pods, run.denied, run.drift, run.seconds)

    def _counts(self, tally: AuditTally) -> None:
        if self.status is not None:
            self.status.audit_finished(tally.policies)

    async def _load_when_listed(self, store: PolicyStore) -> None:
        assert self.watched is not None
        await self.watched.wait_until(lambda: self.watched is not None and self.watched.synced)
        result = await store.reload()
        self.listed = True
        log.info("policies read from the cluster", extra={"event": "policies_listed", "ok": result.ok,
                                                          "generation": result.generation})
        self.reloaded()

    def reloaded(self) -> None:
        """A reload was attempted: the status may have to say so."""
        if self.status is not None:
            self.status.kick()

    async def stop(self) -> None:
        await cancel(self._first_load)
        for part in (self.audit, self.status):
            if part is not None:
                await part.stop()
        if self.elector is not None:
            await self.elector.stop(release=True)
        if self.watched is not None:
            await self.watched.stop()
