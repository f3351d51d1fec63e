"""Cluster view figures: memory per 10,000 watched pods, and time to resync after a 410 Gone.

Runs the real view (official kubernetes client, reflector threads) against the
test API server of tests/kube_api.py, in this process:

    .venv/bin/python bench/cluster_view_memory.py [--pods 10000] [--namespaces 100] [--shapes 40] [--repeat 3]

Figures (not assertions):
- retained memory of the view after the initial list, by tracemalloc, counting
  only live allocations with webhook/* code on their stack (the store: pod
  names, per-pod usage, the per-namespace sums; the emulator and the client
  library's own state are excluded), a deep sys.getsizeof of the store's pod
  structures as a cross-check, and
  the process RSS growth over the same span (an upper bound: it includes the
  emulator's JSON pages and allocator slack);
- the initial sync time (paged list of every kind);
- time to resync after a 410: the emulator expires the pod watch (ERROR event,
  code 410) and the reflector relists; measured inside the reflector (410
  received -> fresh list in the store) and from the test's side (410 sent ->
  watch resumed from the new list's version);
- watch event throughput (MODIFIED events applied per second).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kubernetes import client

from tests.kube_api import KubeAPI
from webhook.views.watched import ReflectorSettings, ViewSettings, WatchedClusterState

WEBHOOK_DIR = str(ROOT / "webhook")


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    import resource

    return pages * resource.getpagesize()


def deep_size(root: object) -> int:
    seen: set[int] = set()
    stack = [root]
    total = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
    return total


def make_pod(index: int, namespaces: int, shapes: int) -> dict:
    shape = index % shapes
    cpu = f"{100 + 50 * shape}m"
    memory = f"{128 + 64 * shape}Mi"
    ns = f"tenant-{index % namespaces:03}"
    name = f"app-{shape:02}-{index:06}-x7k2p"
    return {
        "kind": "Pod",
        "metadata": {
            "name": name, "namespace": ns, "generateName": f"app-{shape:02}-",
            "labels": {"app": f"app-{shape:02}", "pod-template-hash": "5d8f7c9b6", "tenant": ns},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"app-{shape:02}-5d8f7c9b6",
                                 "uid": "8a1c2d3e-0000-4000-8000-000000000000", "controller": True}],
        },
        "spec": {
            "containers": [
                {"name": "app", "image": f"registry.example.com/app-{shape:02}:1.{shape}",
                 "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                 "resources": {"requests": {"cpu": cpu, "memory": memory},
                               "limits": {"cpu": cpu, "memory": memory}},
                 "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 10},
                 "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}},
                {"name": "sidecar", "image": "registry.example.com/proxy:2.1",
                 "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                               "limits": {"cpu": "50m", "memory": "64Mi"}}},
            ],
            "nodeName": f"node-{index % 50:02}",
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "serviceAccountName": "default",
        },
        "status": {"phase": "Running", "qosClass": "Guaranteed", "podIP": f"10.{index // 65536 % 256}."
                   f"{index // 256 % 256}.{index % 256}", "startTime": "2026-01-01T00:00:00Z"},
    }


def settings() -> ViewSettings:
    return ViewSettings(reflector=ReflectorSettings(page_size=500, watch_timeout=600, backoff_initial=0.05),
                        stale_after=60)


def view_for(api: KubeAPI) -> WatchedClusterState:
    configuration = client.Configuration()
    configuration.host = api.url
    return WatchedClusterState(client.ApiClient(configuration), settings(), owns_client=True)


def pod_status(view: WatchedClusterState):
    return next(r.status for r in view.reflectors if r.resource.plural == "pods")


async def warm_up(api: KubeAPI) -> None:
    """One throwaway view: imports and the client's lazily built validators are not the store's memory."""
    view = view_for(api)
    async with view:
        await view.wait_synced(60)


async def main(args: argparse.Namespace) -> None:
    async with KubeAPI() as api:
        await warm_up(api)
        for ns in range(args.namespaces):
            api.create({"kind": "Namespace", "metadata": {"name": f"tenant-{ns:03}", "labels": {"tenant": "x"}}})
        api.create_many([make_pod(i, args.namespaces, args.shapes) for i in range(args.pods)])
        gc.collect()

        # timings, without tracing
        started = time.perf_counter()
        view = view_for(api)
        await view.start()
        assert await view.wait_synced(300)
        sync_seconds = time.perf_counter() - started
        await api.wait_for_watchers("pods")
        assert view.store.pod_count() == args.pods

        resync_inside, resync_outside = [], []
        for _ in range(args.repeat):
            relists = pod_status(view).relists
            sent = time.perf_counter()
            api.expire_watches("pods")
            assert await view.wait_until(
                lambda relists=relists: pod_status(view).relists == relists + 1 and pod_status(view).connected, 300)
            await api.wait_for_watchers("pods")
            resync_outside.append(time.perf_counter() - sent)
            resync_inside.append(pod_status(view).last_resync_seconds)

        # watch throughput: every pod MODIFIED once
        events_before = pod_status(view).events
        sent = time.perf_counter()
        for i in range(args.pods):
            pod = make_pod(i, args.namespaces, args.shapes)
            pod["metadata"]["labels"]["touched"] = "yes"
            api.update(pod)
            if i % 1000 == 999:
                await asyncio.sleep(0)  # let the server write
        assert await view.wait_until(lambda: pod_status(view).events >= events_before + args.pods, 300)
        events_per_second = args.pods / (time.perf_counter() - sent)
        await view.stop()
        del view
        gc.collect()

        # memory: a second view, traced from before it starts until it has synced
        rss_before = rss_bytes()
        tracemalloc.start(64)
        view = view_for(api)
        await view.start()
        assert await view.wait_synced(300)
        await api.wait_for_watchers("pods")
        gc.collect()
        snapshot = tracemalloc.take_snapshot()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss_after = rss_bytes()
        retained = sum(trace.size for trace in snapshot.traces
                       if any(frame.filename.startswith(WEBHOOK_DIR) for frame in trace.traceback))
        store = view.store
        structures = deep_size([store._pods, store._usage, store._interned, store._by_key])
        await view.stop()

    per_10k = 10_000 / args.pods
    print(f"cluster view, {args.pods} pods in {args.namespaces} namespaces ({args.shapes} distinct resource shapes)")
    print(f"  retained by the view (tracemalloc, webhook/* allocations): {retained / 2**20:.2f} MiB "
          f"-> {retained * per_10k / 2**20:.2f} MiB per 10,000 pods ({retained / args.pods:.0f} B/pod)")
    print(f"  deep size of the store's pod structures (sys.getsizeof, shared objects once): "
          f"{structures * per_10k / 2**20:.2f} MiB per 10,000 pods ({structures / args.pods:.0f} B/pod)")
    print(f"  traced peak during the initial list (all Python allocations): {peak / 2**20:.1f} MiB")
    print(f"  process RSS growth over the traced sync (upper bound, includes the emulator): "
          f"{(rss_after - rss_before) / 2**20:.1f} MiB")
    print(f"  initial sync, untraced (paged lists of every kind, page size 500): {sync_seconds:.2f} s")
    print(f"  resync after 410 Gone ({args.repeat} runs): reflector {statistics.median(resync_inside):.3f} s median "
          f"(min {min(resync_inside):.3f}, max {max(resync_inside):.3f}); "
          f"410 sent -> watch resumed {statistics.median(resync_outside):.3f} s median")
    print(f"  watch events applied: {events_per_second:,.0f} MODIFIED/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--namespaces", type=int, default=100)
    parser.add_argument("--shapes", type=int, default=40, help="distinct per-pod resource shapes")
    parser.add_argument("--repeat", type=int, default=3, help="410 resyncs to time")
    asyncio.run(main(parser.parse_args()))
