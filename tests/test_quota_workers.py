"""A tenant's quota holds under a burst of concurrent creations, whatever the number of workers.

End to end: `tenantguard serve --workers N --kubeconfig` processes watch the test API server,
20 creations of 1-cpu pods arrive at once against a 4-cpu tenant quota spanning two
namespaces, and the admitted ones are created (tests/quota_burst.py plays the API server).
One worker admits exactly 4; two workers, sharing their reservations through the ledger,
admit exactly 4 too (each on its own would admit up to 4).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kube_api import KubeAPI
from tests.quota_burst import burst, burst_policy, serving


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_burst_never_overshoots_the_tenant_quota(tmp_path: Path, workers: int) -> None:
    tenants = {f"t{i}": [f"t{i}-a", f"t{i}-b"] for i in range(2)}
    policies = tmp_path / "policies"
    policies.mkdir()
    for tenant, namespaces in tenants.items():
        (policies / f"{tenant}.yaml").write_text(burst_policy(tenant, namespaces, cpu_quota="4"))
    async with KubeAPI() as kube:
        for namespaces in tenants.values():
            for ns in namespaces:
                kube.create({"kind": "Namespace", "metadata": {"name": ns}})
        async with serving(kube, tmp_path / "run", policies, workers=workers) as servers:
            for tenant, namespaces in tenants.items():  # one burst per tenant, each from an empty quota
                admitted = await burst(kube, servers, namespaces, creations=20, prefix=tenant)
                assert admitted == 4, f"{workers} worker(s) admitted {admitted} 1-cpu pods against 4 cpu"
            # the created pods are what the quota counts from now on: nothing more fits
            assert await burst(kube, servers, tenants["t0"], creations=4, prefix="late") == 0
