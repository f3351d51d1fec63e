"""PolicyReports at scale: what the background audit stores and writes (figures, not assertions).

The elected replica's background audit (webhook.server.background_audit) keeps one
``wgpolicyk8s.io/v1alpha2`` PolicyReport per namespace with at most ``max_results`` results,
and writes only what changed. This script measures that promise on the test API server
(tests/kube_api.py, in this process, with the upstream PolicyReport CRD installed, so every
report written is pruned and validated against the upstream schema):

    .venv/bin/python bench/report_scale.py [--pods 10000] [--namespaces 100]

The cluster: ``--namespaces`` namespaces of four kinds (2:1:1:1) with ``--pods`` pods spread
evenly over them, judged by a realistic policy set:

- ``shop-NNN`` (tenant ``shop``, a glob, Enforce: cpu and memory requests): 30 % of the pods
  have no memory request (nor a memory limit, which would default it), so they fail;
- ``lab-NNN`` (tenant ``lab``, a glob, Warn: cpu and memory limits): half the pods have no
  limits, so they warn;
- ``data-NNN`` (tenant ``data``, claimed by the namespace label ``team: data``, Enforce:
  images from registry.example.com only): 5 % of the pods run a docker.io image, so they fail;
- ``ops-NNN`` (tenant ``ops``, literal names, Enforce: requests): every pod complies, so
  these namespaces are clean;
- ClusterPolicy ``baseline`` (Enforce: Pod Security baseline; every pod passes) and
  ClusterPolicy ``probes`` (Warn: a readiness probe; 10 % of the pods outside ops lack one).

The audit is a :class:`BackgroundAudit` built directly (the Lease held through a real
:class:`LeaderElector`, the kubernetes client from the server's kubeconfig), with a
:class:`WriteBudget` of a very high rate, so the runs measure volume, not throttling. Rows:

1. the first run (every report created);
2. a second run with nothing changed (the promise: zero writes);
3. one failing pod deleted in one namespace (one report replaced);
4. the same cluster with ``max_results`` 10 and 1000 (each row rewrites every report), back to
   100, and ``include_clean`` on (the clean namespaces get a report too);
5. a computed contrast, not a run: one report per pod, as a per-admission design stores
   them, made with the same builder (``build_reports`` over one judged pod at a time).

"writes" are the requests with a write verb on ``policyreports`` that the API server
received; "stored" is the JSON size of the PolicyReports the API server holds afterwards
(with the metadata it adds). "server CPU" is the CPU time of the event-loop thread, which
runs the test API server (the audit reads and writes from worker threads): the share of the
run the fake API server accounts for. "loop lag" is how late a 1 ms timer on that loop fired
during the run: what an admission handler sharing the loop with the audit would wait.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from tests.kube_api import KubeAPI
from webhook.core.audit import is_live, judge_live
from webhook.core.policy_report import Judged, build_reports
from webhook.policy import load_policies
from webhook.server.background_audit import AuditRun, AuditSettings, BackgroundAudit
from webhook.server.leader import LeaderElector, LeaseSettings
from webhook.server.policy_store import PolicyStore
from webhook.server.writes import WriteBudget
from webhook.views.snapshot import Snapshot, take_snapshot

REPORT_CRD = yaml.safe_load((ROOT / "tests" / "data" / "upstream" / "wgpolicyk8s.io_policyreports.yaml").read_text())
KINDS = ("shop", "lab", "shop", "data", "ops")  # 2:1:1:1
DEFAULT_RATE, DEFAULT_BURST = 5.0, 20  # WriteBudget's defaults (serve --write-rate)
_LOOP_CLOCK = time.pthread_getcpuclockid(threading.main_thread().ident)  # type: ignore[arg-type]


def loop_cpu() -> float:
    """CPU seconds of the event-loop (main) thread so far, read from any thread: the test API server runs there,
    while the audit reads, judges and writes from worker threads."""
    return time.clock_gettime(_LOOP_CLOCK)


def namespaces(count: int) -> list[tuple[str, str]]:
    """(name, kind) of each namespace."""
    return [(f"{KINDS[i % len(KINDS)]}-{i:03d}", KINDS[i % len(KINDS)]) for i in range(count)]


def policies_yaml(names: list[tuple[str, str]]) -> str:
    ops = [name for name, kind in names if kind == "ops"] or ["ops-none"]
    return f"""\
apiVersion: tenantguard.io/v1alpha1
kind: ClusterPolicy
metadata: {{name: baseline}}
spec:
  enforcement: Enforce
  rules:
    podSecurity: baseline
  exemptions:
  - namespaces: [kube-system]
    reason: system components
---
apiVersion: tenantguard.io/v1alpha1
kind: ClusterPolicy
metadata: {{name: probes}}
spec:
  enforcement: Warn
  rules:
    requireProbes: [readiness]
  exemptions:
  - namespaces: [kube-system]
    reason: system components
---
apiVersion: tenantguard.io/v1alpha1
kind: TenantPolicy
metadata: {{name: shop}}
spec:
  namespaces: ["shop-*"]
  enforcement: Enforce
  rules:
    requireRequests: [cpu, memory]
---
apiVersion: tenantguard.io/v1alpha1
kind: TenantPolicy
metadata: {{name: lab}}
spec:
  namespaces: ["lab-*"]
  enforcement: Warn
  rules:
    requireLimits: [cpu, memory]
---
apiVersion: tenantguard.io/v1alpha1
kind: TenantPolicy
metadata: {{name: data}}
spec:
  namespaceSelector:
    matchLabels: {{team: data}}
  enforcement: Enforce
  rules:
    allowedRegistries: [registry.example.com]
---
apiVersion: tenantguard.io/v1alpha1
kind: TenantPolicy
metadata: {{name: ops}}
spec:
  namespaces: {orjson.dumps(ops).decode()}
  enforcement: Enforce
  rules:
    requireRequests: [cpu, memory]
"""


def make_pod(namespace: str, kind: str, j: int) -> dict[str, Any]:
    """Pod ``j`` of a namespace of ``kind``: compliant, or with the one finding its position gives it."""
    requests = {"cpu": "100m", "memory": "128Mi"}
    limits = {"cpu": "500m", "memory": "256Mi"}
    image = "registry.example.com/shop/app:1.4.2"
    readiness = True
    if kind == "shop" and j % 10 < 3:
        del requests["memory"]  # 30 %: fails shop's requireRequests (no limit either: it would default the request)
        del limits["memory"]
    if kind == "lab" and j % 2 == 0:
        limits = {}  # 50 %: warns under lab's requireLimits
    if kind == "data" and j % 20 == 0:
        image = "docker.io/library/nginx:1.27"  # 5 %: fails data's allowedRegistries
    if kind != "ops" and j % 10 == 9:
        readiness = False  # 10 %: warns under the probes ClusterPolicy
    container: dict[str, Any] = {"name": "app", "image": image,
                                 "resources": {"requests": requests, **({"limits": limits} if limits else {})},
                                 "ports": [{"containerPort": 8080}]}
    if readiness:
        container["readinessProbe"] = {"httpGet": {"path": "/ready", "port": 8080}}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"app-{j:05d}", "namespace": namespace, "labels": {"app": "app"}},
            "spec": {"containers": [container]},
            "status": {"phase": "Running"}}


def failing_pod(kind: str, per_namespace: int) -> int | None:
    """The index of a pod that fails in a namespace of ``kind`` (None when none does)."""
    return next((j for j in range(per_namespace) if kind == "shop" and j % 10 < 3), None)


class TimedAudit(BackgroundAudit):
    """The background audit with the wall time of its phases kept: judging and building, writing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.phases: dict[str, float] = {}
        self.server_cpu: dict[str, float] = {}

    def _judge(self, snapshot: Snapshot, policies: Any, run: AuditRun) -> list[dict[str, Any]]:
        start = time.perf_counter()
        try:
            return super()._judge(snapshot, policies, run)
        finally:
            self.phases["judge"] = time.perf_counter() - start

    async def _reconcile(self, reports: list[dict[str, Any]], run: AuditRun) -> None:
        start, cpu = time.perf_counter(), loop_cpu()
        try:
            await super()._reconcile(reports, run)
        finally:
            self.phases["write"] = time.perf_counter() - start
            # (this also counts the comparison of each report with the stored one, on the loop: milliseconds)
            self.server_cpu["write"] = loop_cpu() - cpu


@dataclass
class Row:
    label: str
    run: AuditRun
    writes: int  # write requests on policyreports the API server received during the run
    stored: int  # reports the API server holds afterwards
    stored_bytes: int
    largest: int
    server_cpu: dict[str, float]  # event-loop thread CPU (the test API server): "run", "read", "write"
    phases: dict[str, float]
    lags: list[float]  # how late a 1 ms timer on the event loop fired, each time, during the run


class Bench:
    def __init__(self, kube: KubeAPI, api: Any, store: PolicyStore, elector: LeaderElector) -> None:
        self.kube = kube
        self.api = api
        self.store = store
        self.elector = elector
        self.budget = WriteBudget(rate=1e9, burst=1_000_000)  # volume, not throttling
        self.rows: list[Row] = []

    @staticmethod
    async def _tick(lags: list[float]) -> None:
        """What an admission handler on the same loop would wait for: the lateness of a 1 ms timer."""
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append(max(0.0, time.perf_counter() - start - 0.001))

    def _read(self, api: Any) -> Snapshot:
        start, cpu = time.perf_counter(), loop_cpu()
        snapshot = take_snapshot(api)
        self._read_seconds, self._read_cpu = time.perf_counter() - start, loop_cpu() - cpu
        return snapshot

    async def run(self, label: str, max_results: int = 100, include_clean: bool = False) -> Row:
        audit = TimedAudit(self.api, self.store, self.elector, self.budget,
                           AuditSettings(interval=3600, max_results=max_results, include_clean=include_clean),
                           read=self._read)
        before = len(self.kube.writes("policyreports"))
        lags: list[float] = []
        ticker = asyncio.create_task(self._tick(lags))
        cpu = loop_cpu()
        try:
            run = await audit.run_once()
        finally:
            ticker.cancel()
        server_cpu = {"run": loop_cpu() - cpu, "read": self._read_cpu, **audit.server_cpu}
        if run.error:
            raise SystemExit(f"{label}: the audit run failed: {run.error}")
        stored = [len(orjson.dumps(r)) for r in self.kube.objects("PolicyReport")]
        row = Row(label, run, len(self.kube.writes("policyreports")) - before, len(stored), sum(stored),
                  max(stored, default=0), server_cpu, {"read": self._read_seconds, **audit.phases}, lags)
        self.rows.append(row)
        return row


def per_pod_contrast(api: Any, store: PolicyStore, max_results: int) -> tuple[int, int, int, int, int]:
    """One report per pod, built with the same builder: (reports, bytes, largest, failing-or-warning reports,
    their bytes)."""
    snapshot = take_snapshot(api)
    policies = store.current
    today = date.today()
    seconds = int(time.time())
    count = total = largest = unclean = unclean_bytes = 0
    for pod in snapshot.pods:
        if not is_live(pod):
            continue
        _, decision, _ = judge_live(pod, policies, snapshot.state, today=today)
        judged = Judged(pod, str(pod["metadata"].get("namespace") or ""), decision)
        for report in build_reports([judged], seconds=seconds, max_results=max_results, include_clean=True,
                                    policy_set=policies.generation):
            size = len(orjson.dumps(report))
            count += 1
            total += size
            largest = max(largest, size)
            summary = report["summary"]
            if summary["fail"] or summary["warn"] or summary["error"]:
                unclean += 1
                unclean_bytes += size
    return count, total, largest, unclean, unclean_bytes


def size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def budget_seconds(writes: int, rate: float = DEFAULT_RATE, burst: int = DEFAULT_BURST) -> float:
    """How long a WriteBudget(rate, burst) takes to hand out ``writes`` tokens from full: the burst at once,
    then ``rate`` a second."""
    return max(0, writes - burst) / rate


def table(rows: list[Row]) -> None:
    header = ("run", "pods judged (denied)", "reports", "writes (c/r/d)", "report bytes", "stored bytes", "largest stored",
              "run s", "read / judge / write s", "server CPU s (read / write)",
              "loop lag p99 / max ms")
    lines = [header]
    for r in rows:
        a = r.run
        lines.append((r.label, f"{a.pods:,} ({a.denied:,})", f"{r.stored:,}", f"{r.writes} ({a.created}/{a.replaced}/{a.deleted})",
                      size(a.report_bytes), size(r.stored_bytes), size(r.largest), f"{a.seconds:.2f}",
                      " / ".join(f"{r.phases.get(k, 0):.2f}" for k in ("read", "judge", "write")),
                      f"{r.server_cpu['run']:.2f} ({r.server_cpu['read']:.2f} / {r.server_cpu.get('write', 0):.2f})",
                      f"{percentile(r.lags, 0.99) * 1e3:.1f} / {max(r.lags, default=0) * 1e3:.1f}"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for n, line in enumerate(lines):
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths)) + " |")
        if n == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--namespaces", type=int, default=100)
    args = parser.parse_args()
    names = namespaces(args.namespaces)
    per_namespace = max(1, args.pods // len(names))
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        (tmp / "policies.yaml").write_text(policies_yaml(names))
        store = PolicyStore.from_policy_set(load_policies([str(tmp / "policies.yaml")]))
        async with KubeAPI(crds=[REPORT_CRD]) as kube:
            start = time.perf_counter()
            for name, kind in names:
                labels = {"team": "data"} if kind == "data" else {}
                kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
                for j in range(per_namespace):
                    kube.create(make_pod(name, kind, j))
            pods = len(names) * per_namespace
            print(f"{pods:,} pods in {len(names)} namespaces (created in {time.perf_counter() - start:.1f} s); "
                  f"Python {platform.python_version()}, {os.cpu_count()} CPUs")
            config = tmp / "kubeconfig"
            config.write_text(kube.kubeconfig())
            api = k8s_config.new_client_from_config(config_file=str(config))
            # the client imports its API modules on first use (about a second): not a cost of the first run
            _ = (k8s_client.CoreV1Api, k8s_client.NetworkingV1Api, k8s_client.CustomObjectsApi)
            elector = LeaderElector(api, LeaseSettings(namespace="tenantguard", identity="bench"))
            elector.start()
            await elector.wait_leading()
            bench = Bench(kube, api, store, elector)
            try:
                first = await bench.run("1. first run")
                sample = kube.find("PolicyReport", names[0][0], "tenantguard")
                await bench.run("2. nothing changed")
                for name, kind in names:
                    failing = failing_pod(kind, per_namespace)
                    if failing is not None:
                        kube.delete("Pod", name, f"app-{failing:05d}")
                        await bench.run(f"3. one failing pod deleted ({name})")
                        break
                await bench.run("4a. max_results 10", max_results=10)
                await bench.run("4b. max_results 1000", max_results=1000)
                await bench.run("4c. max_results 100 again", max_results=100)
                await bench.run("4d. include_clean on", include_clean=True)
                contrast = await asyncio.to_thread(per_pod_contrast, api, store, 100)
            finally:
                await elector.stop()
                api.close()

    print()
    table(bench.rows)
    print()
    if sample is not None:
        omitted = (sample["metadata"].get("annotations") or {}).get("tenantguard.io/results-omitted", "0")
        print(f"{sample['metadata']['namespace']}'s report after the first run: summary {sample['summary']}, "
              f"{len(sample['results'])} results kept, {omitted} omitted")
    writes = first.writes
    print(f"first run's {writes} writes at the default budget ({DEFAULT_RATE:g}/s, burst {DEFAULT_BURST}): "
          f"{budget_seconds(writes):.1f} s")
    count, total, largest, unclean, unclean_bytes = contrast
    ours = first.stored_bytes
    print(f"computed contrast, one report per pod (same builder, max_results 100): {count:,} reports, {size(total)} "
          f"(largest {size(largest)}); {unclean:,} of them with a fail or warn, {size(unclean_bytes)}")
    print(f"  vs one report per namespace (first run): {first.stored:,} reports, {size(ours)} stored "
          f"({count / max(1, first.stored):.0f}x fewer objects, {total / max(1, ours):.1f}x fewer bytes)")
    unchanged = bench.rows[1]
    print(f"unchanged cluster: {unchanged.writes} writes to policyreports "
          f"({unchanged.run.unchanged} reports unchanged)")


if __name__ == "__main__":
    asyncio.run(main())
