"""Quota under bursts: how many 1-cpu pods a 4-cpu tenant gets when 20 creations arrive at once.

Real `tenantguard serve` processes (`--kubeconfig`, the watch-backed view) against the test
API server of tests/kube_api.py; each creation sends its AdmissionReview to /validate on a
connection of its own, and the API server's part (create what was admitted) is played by
tests/quota_burst.py. Every burst goes to a fresh tenant (4 cpu over two namespaces), so
each starts from an empty quota:

    .venv/bin/python bench/quota_burst.py [--bursts 5] [--creations 20]

Layouts: one process with 1 and 2 workers (the workers share reservations through their
ledger: the overshoot must be 0), and 2 replicas (separate processes, a Service
round-robin in front: nothing is shared, so each replica may admit the tenant's whole
headroom before its watch reports the other's pods; see docs/cluster-view.md).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.kube_api import KubeAPI
from tests.quota_burst import burst, burst_policy, serving

QUOTA_CPU = 4


async def layout(workers: int, replicas: int, bursts: int, creations: int) -> list[int]:
    with tempfile.TemporaryDirectory(prefix="tenantguard-burst-") as scratch:
        work = Path(scratch)
        tenants = {f"t{i}": [f"t{i}-a", f"t{i}-b"] for i in range(bursts)}
        policies = work / "policies"
        policies.mkdir()
        for tenant, namespaces in tenants.items():
            (policies / f"{tenant}.yaml").write_text(burst_policy(tenant, namespaces, str(QUOTA_CPU)))
        async with KubeAPI() as kube:
            for namespaces in tenants.values():
                for ns in namespaces:
                    kube.create({"kind": "Namespace", "metadata": {"name": ns}})
            async with serving(kube, work / "run", policies, workers=workers, replicas=replicas) as servers:
                return [await burst(kube, servers, namespaces, creations=creations, prefix=tenant)
                        for tenant, namespaces in tenants.items()]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bursts", type=int, default=5)
    parser.add_argument("--creations", type=int, default=20)
    args = parser.parse_args()
    print(f"{args.bursts} bursts of {args.creations} concurrent 1-cpu creations; tenant quota {QUOTA_CPU} cpu")
    print(f"{'layout':<28} {'admitted per burst':<24} {'max overshoot':>13}")
    for workers, replicas in ((1, 1), (2, 1), (1, 2), (2, 2)):
        admitted = await layout(workers, replicas, args.bursts, args.creations)
        name = f"{replicas} replica(s) x {workers} worker(s)"
        print(f"{name:<28} {admitted!s:<24} {max(admitted) - QUOTA_CPU:>13}")


if __name__ == "__main__":
    asyncio.run(main())
