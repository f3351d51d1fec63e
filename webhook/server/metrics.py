"""Prometheus metrics, on a registry of our own (never prometheus_client's global one).

=============================================================  =========================================
``tenantguard_admission_requests_total{endpoint,tenant,decision}``  reviews answered; decision: allowed |
                                                                   denied | error (fail posture applied)
``tenantguard_admission_duration_seconds{endpoint}``               histogram, body read to response built;
                                                                   buckets from 100 µs
``tenantguard_admission_bad_requests_total{endpoint,code}``         400/413 answers (malformed reviews)
``tenantguard_admission_in_flight``                                reviews being answered now
``tenantguard_policy_violations_total{policy,rule,enforcement}``   findings on /validate (Enforce, Warn,
                                                                   Audit); a rule that could not run is not one
``tenantguard_rule_errors_total{policy,rule}``                      rules (defaults or checks) that raised or met
                                                                   data they cannot read: status ``error``
``tenantguard_rule_duration_seconds{policy,rule}``                 histogram of each rule's evaluation time
``tenantguard_policy_reloads_total{result}``                       loads of the policy files (the first
                                                                   one included): success | failure
``tenantguard_policy_generation_info{generation}``                 1 for the set being served
``tenantguard_policy_last_success_timestamp_seconds``              when the served set was loaded
``tenantguard_policy_last_reload_success``                         1 when the last load attempt succeeded,
                                                                   0 while a failed one is the latest
``tenantguard_policy_last_reload_timestamp_seconds``               when the last load was attempted
``tenantguard_tls_cert_expiry_timestamp_seconds``                  notAfter of the serving certificate
``tenantguard_tls_cert_reloads_total{result}``                     certificate loads: success | failure
``tenantguard_cluster_view_synced``                                1 when the cluster view is synced
``tenantguard_cluster_view_stale``                                 1 when a synced view's watch has been down
                                                                   or silent too long (its data may be old)
``tenantguard_cluster_view_relists{kind}``                         lists forced by 410 Gone or a silent watch
``tenantguard_cluster_view_watch_errors{kind}``                    watch/list failures (each retried)
``tenantguard_cluster_view_last_heard_seconds{kind}``              since the kind's list or watch last said
                                                                   something (an event, a bookmark, a list)
``tenantguard_cluster_view_last_resync_seconds{kind}``             how long the last relist after a 410 took
``tenantguard_cluster_view_reservations``                          admitted pods counted until watched
``tenantguard_cluster_view_unparseable_pods``                      pods whose resources do not parse
``tenantguard_leader``                                             1 in the process holding the Lease (it
                                                                   writes status and PolicyReports)
``tenantguard_api_writes_total{object,result}``                    writes to the API server: object: status |
                                                                   policyreport; result: success | failure
``tenantguard_background_audit_runs_total{result}``                background audits: success | failure
``tenantguard_background_audit_pods{outcome}``                     the last audit's live pods: judged |
                                                                   denied | drift
``tenantguard_background_audit_duration_seconds``                  how long the last audit took
=============================================================  =========================================

``tenant`` is the TenantPolicy name ("" when no tenant claims the namespace): bounded by
the policies, like ``policy`` and ``rule``. ``rule`` is the rule's id as findings name it
(``requireLimits``, ``podSecurity``, ...; ``cel/<name>`` for each CEL rule of
``spec.rules.cel``, so every custom rule has its own series).

With ``--workers N`` the processes share one port, so a scrape reaches any one of them:
prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by the worker
supervisor before the workers start) makes every worker's ``/metrics`` report all of
them: counters and histograms summed, gauges as their mode says (generation per pid,
certificate expiry and synced as the minimum over live workers).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from webhook.core.decision import RuleResult, Status
from webhook.core.plan import PolicySet
from webhook.views.health import ViewHealth

RULE_BUCKETS = (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.1, 1.0)
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05,
                   0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """Every metric of one server process. ``multiprocess_dir``: see the module docstring."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, *, multiprocess_dir: str | None = None):
        self.multiprocess_dir = multiprocess_dir
        # multiprocess mode: values live in the directory's mmap files; nothing registers in-process
        reg = None if multiprocess_dir else CollectorRegistry()
        self.registry = reg
        self.requests = Counter("tenantguard_admission_requests", "AdmissionReviews answered.",
                                ["endpoint", "tenant", "decision"], registry=reg)
        self.latency = Histogram("tenantguard_admission_duration_seconds",
                                 "Time from the request to the response, body read and parsed included.",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=reg)
        self.bad_requests = Counter("tenantguard_admission_bad_requests", "Malformed reviews refused (4xx).",
                                    ["endpoint", "code"], registry=reg)
        self.in_flight = Gauge("tenantguard_admission_in_flight", "Reviews being answered.",
                               registry=reg, multiprocess_mode="livesum")
        self.violations = Counter("tenantguard_policy_violations", "Policy findings on /validate.",
                                  ["policy", "rule", "enforcement"], registry=reg)
        self.rule_errors = Counter("tenantguard_rule_errors", "Rules that could not be evaluated (status error).",
                                   ["policy", "rule"], registry=reg)
        self.rule_duration = Histogram("tenantguard_rule_duration_seconds", "Evaluation time of each rule.",
                                       ["policy", "rule"], buckets=RULE_BUCKETS, registry=reg)
        self._rule_timers: dict[tuple[str, str], Any] = {}  # (policy, rule) -> its histogram child
        self._request_children: dict[tuple[str, str, str], Any] = {}
        self._latency_children: dict[str, Any] = {}
        self._violation_children: dict[tuple[str, str, str], Any] = {}
        self.policy_reloads = Counter("tenantguard_policy_reloads", "Loads of the policy files.", ["result"],
                                      registry=reg)
        self.policy_generation = Gauge("tenantguard_policy_generation_info",
                                       "The policy set being served (content hash).", ["generation"],
                                       registry=reg, multiprocess_mode="liveall")
        self.policy_loaded_at = Gauge("tenantguard_policy_last_success_timestamp_seconds",
                                      "When the policy set being served was loaded.", registry=reg,
                                      multiprocess_mode="livemin")
        self.reload_ok = Gauge("tenantguard_policy_last_reload_success",
                               "1 when the last load of the policy files succeeded, 0 when it failed.",
                               registry=reg, multiprocess_mode="livemin")
        self.reload_at = Gauge("tenantguard_policy_last_reload_timestamp_seconds",
                               "When the policy files were last loaded (successfully or not).", registry=reg,
                               multiprocess_mode="livemax")
        self.cert_expiry = Gauge("tenantguard_tls_cert_expiry_timestamp_seconds",
                                 "notAfter of the serving certificate.", registry=reg, multiprocess_mode="livemin")
        self.cert_reloads = Counter("tenantguard_tls_cert_reloads", "Loads of the serving certificate.", ["result"],
                                    registry=reg)
        self.cluster_synced = Gauge("tenantguard_cluster_view_synced", "1 when the cluster view is synced.",
                                    registry=reg, multiprocess_mode="livemin")
        self.cluster_stale = Gauge("tenantguard_cluster_view_stale",
                                   "1 when a watch of the cluster view has been down or silent too long.",
                                   registry=reg, multiprocess_mode="livemax")
        self.view_relists = Gauge("tenantguard_cluster_view_relists", "Lists forced by 410 Gone or a silent watch.",
                                  ["kind"], registry=reg, multiprocess_mode="livemax")
        self.view_errors = Gauge("tenantguard_cluster_view_watch_errors", "List/watch failures, each retried.",
                                 ["kind"], registry=reg, multiprocess_mode="livemax")
        self.view_heard = Gauge("tenantguard_cluster_view_last_heard_seconds",
                                "Seconds since the kind's list or watch last delivered anything.", ["kind"],
                                registry=reg, multiprocess_mode="livemax")
        self.view_resync = Gauge("tenantguard_cluster_view_last_resync_seconds",
                                 "Duration of the last relist after a 410 Gone.", ["kind"], registry=reg, multiprocess_mode="livemax")
        self.view_reservations = Gauge("tenantguard_cluster_view_reservations",
                                       "Admitted pods counted until the watch reports them.", registry=reg, multiprocess_mode="livemax")
        self.view_unparseable = Gauge("tenantguard_cluster_view_unparseable_pods",
                                      "Pods whose resources do not parse (counted as one pod each).", registry=reg, multiprocess_mode="livemax")
        self.leader = Gauge("tenantguard_leader", "1 in the process holding the Lease.", registry=reg,
                            multiprocess_mode="livesum")
        self.api_writes = Counter("tenantguard_api_writes", "Writes to the API server (status, PolicyReports).",
                                  ["object", "result"], registry=reg)
        self.audit_runs = Counter("tenantguard_background_audit_runs", "Background audits.", ["result"], registry=reg)
        self.audit_pods = Gauge("tenantguard_background_audit_pods", "The last background audit's live pods.",
                                ["outcome"], registry=reg, multiprocess_mode="livemax")
        self.audit_seconds = Gauge("tenantguard_background_audit_duration_seconds",
                                   "How long the last background audit took.", registry=reg,
                                   multiprocess_mode="livemax")
        self._generation: str | None = None

    def admission(self, endpoint: str, tenant: str, verdict: str, seconds: float) -> None:
        """One review answered: the hot path, so the labelled children are looked up once and kept."""
        key = (endpoint, tenant, verdict)
        counter = self._request_children.get(key)
        if counter is None:
            if len(self._request_children) > 4096:  # bounded by endpoints x tenants x verdicts
                self._request_children.clear()
            counter = self._request_children[key] = self.requests.labels(*key)
        counter.inc()
        histogram = self._latency_children.get(endpoint)
        if histogram is None:
            histogram = self._latency_children[endpoint] = self.latency.labels(endpoint)
        histogram.observe(seconds)

    def violation(self, policy: str, rule: str, mode: str) -> None:
        key = (policy, rule, mode)
        counter = self._violation_children.get(key)
        if counter is None:
            if len(self._violation_children) > 4096:  # bounded by the policies; a reload may rename them
                self._violation_children.clear()
            counter = self._violation_children[key] = self.violations.labels(*key)
        counter.inc()

    def observe_rules(self, results: Iterable[RuleResult]) -> None:
        """Each rule's evaluation time, and the rules that could not be evaluated."""
        timers = self._rule_timers
        for result in results:
            if result.seconds is not None:
                key = (result.policy, result.rule)
                child = timers.get(key)
                if child is None:
                    if len(timers) > 4096:  # bounded by the policies; a reload may rename them
                        timers.clear()
                    child = timers[key] = self.rule_duration.labels(*key)
                child.observe(result.seconds)
            if result.status is Status.ERROR:
                self.rule_errors.labels(result.policy, result.rule).inc()

    # --- listeners (PolicyStore, CertReloader, cluster view) -------------------------------------
    def policy_reloaded(self, ok: bool, policies: PolicySet | None) -> None:
        self.policy_reloads.labels("success" if ok else "failure").inc()
        self.reload_ok.set(1 if ok else 0)
        self.reload_at.set(time.time())
        if not ok or policies is None:
            return
        if self._generation is not None and self._generation != policies.generation:
            self.policy_generation.labels(self._generation).set(0)  # multiprocess files keep removed children
            self.policy_generation.remove(self._generation)
        self._generation = policies.generation
        self.policy_generation.labels(policies.generation).set(1)
        self.policy_loaded_at.set(time.time())

    def cert_loaded(self, ok: bool, not_after: float | None) -> None:
        self.cert_reloads.labels("success" if ok else "failure").inc()
        if ok and not_after is not None:
            self.cert_expiry.set(not_after)

    def observe_view(self, health: ViewHealth) -> None:
        """Copy the cluster view's health (the object /readyz reads) into the gauges."""
        self.cluster_synced.set(1 if health.synced else 0)
        self.cluster_stale.set(1 if health.synced and not health.ready else 0)
        self.view_reservations.set(health.reservations)
        self.view_unparseable.set(health.unparseable_pods)
        for kind in health.kinds:
            self.view_relists.labels(kind.kind).set(kind.relists)
            self.view_errors.labels(kind.kind).set(kind.watch_errors)
            if kind.last_heard_seconds is not None:
                self.view_heard.labels(kind.kind).set(kind.last_heard_seconds)
            if kind.last_resync_seconds is not None:
                self.view_resync.labels(kind.kind).set(kind.last_resync_seconds)

    # --- what the elected process writes (webhook.server.cluster_duties) -------------------------------
    def leading(self, leading: bool) -> None:
        self.leader.set(1 if leading else 0)

    def api_written(self, obj: str, ok: bool, count: int = 1) -> None:
        if count:
            self.api_writes.labels(obj, "success" if ok else "failure").inc(count)

    def audit_ran(self, ok: bool, pods: int, denied: int, drift: int, seconds: float) -> None:
        self.audit_runs.labels("success" if ok else "failure").inc()
        if ok:
            for outcome, value in (("judged", pods), ("denied", denied), ("drift", drift)):
                self.audit_pods.labels(outcome).set(value)
        self.audit_seconds.set(seconds)

    # --- exposition -------------------------------------------------------------------------------
    def render(self) -> bytes:
        if self.multiprocess_dir:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
            return generate_latest(registry)
        assert self.registry is not None
        return generate_latest(self.registry)
