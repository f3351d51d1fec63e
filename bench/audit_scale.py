"""Wall time of `tenantguard audit` over a large cluster (figures, not assertions).

The cluster is tests/test_audit_scale.py's (``populate``): namespaces shop-NN (an Enforce
tenant), lab-NN (a Warn tenant) and misc-NN (no tenant, an Audit cluster policy), each with
a Deployment of compliant pods, plus a few Deployments, a StatefulSet, a CronJob and bare
pods with findings and drift; served by the test API server (tests/kube_api.py, in this
process, ReplicaSets and Jobs included), paged 500 at a time as the CLI reads it.

    .venv/bin/python bench/audit_scale.py [--pods 10000] [--namespaces 40] [--repeat 3]

Rows: the real command (``tenantguard audit`` as a subprocess: start-up, imports, the paged
reads, judging, grouping, printing; table and ``-o json``), then the phases in-process: the
snapshot (every list), judging every pod (``actions.audit.audit``), grouping and counting,
and rendering each output. Best and median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.kube_api import KubeAPI
from tests.test_audit_scale import POLICIES, namespaces, populate, serve_workloads
from webhook.actions.audit import audit, groups, summary
from webhook.cli.audit import write_table
from webhook.cli.output import json_text
from webhook.policy import load_policies
from webhook.views.snapshot import connect, take_snapshot

EXTRA_PODS = 185  # populate's pods besides the per-namespace Deployments


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return times, value


def row(label: str, times: list[float]) -> None:
    print(f"{label:<44} best {min(times):7.2f} s   median {statistics.median(times):7.2f} s")


def phases(kubeconfig: Path, policy_file: Path, repeat: int) -> None:
    policies = load_policies([str(policy_file)])

    def snapshot() -> Any:
        api = connect(kubeconfig=str(kubeconfig))
        try:
            return take_snapshot(api, owners=True)
        finally:
            api.close()

    times, snap = timed(snapshot, repeat)
    row(f"snapshot ({len(snap.pods)} pods, {len(snap.owners)} owners)", times)
    times, results = timed(lambda: audit(snap, policies), repeat)
    row("judge every pod (actions.audit.audit)", times)
    times, found = timed(lambda: (groups(results), summary(results)), repeat)
    row(f"group and count ({len(found[0])} groups)", times)

    def table() -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            write_table(results, False, False)

    row("render the table", timed(table, repeat)[0])
    row("render -o json", timed(lambda: json_text({"summary": summary(results),
                                                   "groups": [g.as_json() for g in groups(results)],
                                                   "results": [r.as_json() for r in results]}), repeat)[0])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--namespaces", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    per_namespace = max(1, (args.pods - EXTRA_PODS) // len(namespaces(args.namespaces)))
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        (tmp / "policies.yaml").write_text(POLICIES)
        async with KubeAPI() as kube:
            serve_workloads(kube)
            live = populate(kube, namespace_count=args.namespaces, per_namespace=per_namespace)
            config = tmp / "kubeconfig"
            config.write_text(kube.kubeconfig())
            print(f"{live} live pods in {args.namespaces} namespaces; Python {sys.version.split()[0]}, "
                  f"{os.cpu_count()} CPUs")
            command = [str(ROOT / ".venv" / "bin" / "tenantguard"), "audit", "--policies", str(tmp / "policies.yaml"),
                       "--kubeconfig", str(config)]
            for label, extra in (("tenantguard audit (table)", []), ("tenantguard audit -o json", ["-o", "json"])):
                times = []
                size = 0
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    done = await asyncio.to_thread(subprocess.run, command + extra, capture_output=True, check=False)
                    times.append(time.perf_counter() - start)
                    size = len(done.stdout)
                    assert done.returncode == 1, done.stderr.decode()
                row(f"{label}, {size / 1e6:.1f} MB out", times)
            await asyncio.to_thread(phases, config, tmp / "policies.yaml", args.repeat)


if __name__ == "__main__":
    asyncio.run(main())
