"""Bursts of concurrent pod creations against `tenantguard serve` processes and the test API server.

Plays the API server's part end to end: every creation of a burst sends its
AdmissionReview to ``/validate`` at once (a new TLS connection each, so the kernel
spreads them over the workers of a process, and round-robin over several processes
stands for a Service in front of replicas); an admitted pod is then created in the
test API server (tests/kube_api.py), whose watch the servers follow. Shared by the
tests (exact counts) and bench/quota_burst.py (figures).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.kube_api import KubeAPI
from webhook.actions.certs import generate_self_signed

CPU = "1"


def burst_policy(tenant: str, namespaces: Sequence[str], cpu_quota: str = "4") -> str:
    return json.dumps({
        "apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": tenant},
        "spec": {"namespaces": list(namespaces), "quota": {"hard": {"requests.cpu": cpu_quota}}},
    })


def burst_pod(namespace: str, name: str, cpu: str = CPU) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"containers": [{"name": "c", "image": "registry.example/app:1",
                                     "resources": {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}}}]}}


def review(obj: dict[str, Any], uid: str, *, dry_run: bool = False) -> dict[str, Any]:
    meta = obj["metadata"]
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "namespace": meta["namespace"],
        "name": meta["name"], "operation": "CREATE", "userInfo": {"username": "burst", "groups": []},
        "object": obj, "dryRun": dry_run}}


@dataclass
class Server:
    process: asyncio.subprocess.Process
    url: str
    ssl: ssl.SSLContext


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _banner(process: asyncio.subprocess.Process, timeout: float) -> str:
    assert process.stdout is not None
    async with asyncio.timeout(timeout):
        while True:
            line = (await process.stdout.readline()).decode()
            if not line:
                raise RuntimeError("serve exited before listening")
            if line.startswith("tenantguard serving "):
                return line.split()[2]


async def _drain(stream: asyncio.StreamReader | None) -> None:
    while stream is not None and await stream.readline():
        pass


async def _watch_logs(stream: asyncio.StreamReader | None, synced: asyncio.Queue) -> None:
    """Read the JSON log lines; report each worker's "view_synced" (its cluster view listed everything)."""
    while stream is not None:
        line = await stream.readline()
        if not line:
            return
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == "view_synced":
            synced.put_nowait(entry.get("pid"))


@asynccontextmanager
async def serving(kube: KubeAPI, workdir: Path, policies: Path, *, workers: int = 1, replicas: int = 1,
                  timeout: float = 60.0) -> AsyncIterator[list[Server]]:
    """``replicas`` `tenantguard serve` processes with ``workers`` each, watching ``kube``; ready."""
    workdir.mkdir(parents=True, exist_ok=True)
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(kube.kubeconfig())
    ca, cert, key = generate_self_signed(["localhost", "127.0.0.1"], workdir / "tls")
    context = ssl.create_default_context(cafile=str(ca))
    servers: list[Server] = []
    tasks: list[asyncio.Task] = []
    synced: asyncio.Queue = asyncio.Queue()
    try:
        for _ in range(replicas):
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "webhook", "serve", "--policies", str(policies), "--cert", str(cert),
                "--key", str(key), "--host", "127.0.0.1", "--port", str(free_port()), "--workers", str(workers),
                "--kubeconfig", str(kubeconfig), "--log-level", "info", "--trusted-network",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=dict(os.environ))
            tasks.append(asyncio.create_task(_watch_logs(process.stderr, synced)))
            url = await _banner(process, timeout)
            tasks.append(asyncio.create_task(_drain(process.stdout)))
            servers.append(Server(process, url, context))
        async with asyncio.timeout(timeout):  # every worker of every replica has listed the cluster
            for _ in range(replicas * workers):
                await synced.get()
        yield servers
    finally:
        for server in servers:
            if server.process.returncode is None:
                server.process.send_signal(signal.SIGTERM)
        for server in servers:
            try:
                async with asyncio.timeout(30):
                    await server.process.wait()
            except TimeoutError:
                server.process.kill()
                await server.process.wait()
        for task in tasks:
            task.cancel()


async def burst(kube: KubeAPI, servers: Sequence[Server], namespaces: Sequence[str], *, creations: int = 20,
                prefix: str = "burst") -> int:
    """``creations`` concurrent 1-cpu pod creations spread over ``namespaces``, each review on its own
    connection (servers taken round-robin); every admitted pod is created in ``kube``. Returns how many
    were admitted."""
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = asyncio.Event()

        async def one(index: int) -> bool:
            server = servers[index % len(servers)]
            obj = burst_pod(namespaces[index % len(namespaces)], f"{prefix}-{index}")
            body = json.dumps(review(obj, f"{prefix}-{index}"))
            await start.wait()
            async with session.post(server.url + "/validate", data=body, ssl=server.ssl,
                                    headers={"Content-Type": "application/json"}) as resp:
                answer = await resp.json()
            if answer["response"]["allowed"]:
                kube.create(obj)  # the API server persists what every webhook admitted
                return True
            return False

        tasks = [asyncio.create_task(one(i)) for i in range(creations)]
        start.set()
        return sum(await asyncio.gather(*tasks))
