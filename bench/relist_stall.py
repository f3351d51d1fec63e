"""Admission latency while the cluster view relists every pod (a 410 Gone, or a silent watch).

The watched view's store answers every admission under its lock. A relist of 50,000
pods rebuilds the pod tables; this measures what an admission waits meanwhile, with
the relist in its own thread (as the reflector runs it) and admissions judged through
the core's one admission path on the event loop's thread:

    .venv/bin/python bench/relist_stall.py [--pods 50000] [--namespaces 500] [--relists 3]

Rows: the store as it is (the new tables built outside the lock, swapped in under it),
and, for comparison, the same relist with the tables built under the lock (what the
store did before; the pages are reduced outside it in both rows, as the reflector does).
Both rows freeze what start-up allocated, as the server does once its view has synced;
what remains in the maximum is the cycle collector's full collections, which the
allocations of parsing 100 pages of pods trigger (a pause of the whole process, not a
wait for the store's lock). Figures: admission p50 / p99 / max while relisting, and idle.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson
from kubernetes import client as k8s_client

from webhook.views.watched import ViewSettings, WatchedClusterState
from webhook.core.pipeline import judge
from webhook.core.request import from_manifest
from webhook.policy.loader import SourceDoc, build_policy_set

POLICY = {"apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": "shop"},
          "spec": {"namespaces": ["shop-*"], "quota": {"hard": {"requests.cpu": "100000"}},
                   "rules": {"requireRequests": ["cpu"]}}}


def pod(ns: str, name: str, cpu: str) -> dict:
    return {"kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": cpu}}}]}}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(view: WatchedClusterState, pages: list[bytes], relists: int, under_lock: bool) -> tuple[list, list]:
    policies = build_policy_set([SourceDoc(POLICY, "bench", 1)])
    store = view.store
    done = threading.Event()

    def relist() -> None:
        for _ in range(relists):
            if under_lock:  # before: the pages reduced to a list, the tables built from it under the lock
                items = []
                for page in pages:
                    items.extend(store.compact("Pod", p) for p in orjson.loads(page)["items"])
                with store.lock:
                    store.replace("Pod", items)
            else:  # now: what the reflector does, page by page into new tables, swapped in at the end
                tables = store.builder("Pod")
                for page in pages:
                    for p in orjson.loads(page)["items"]:
                        tables.add(p)
                store.install(tables)
        done.set()

    request = from_manifest(pod("shop-1", "new", "10m"))
    idle = []
    for _ in range(2000):
        started = time.perf_counter()
        judge(request, policies, view)
        idle.append(time.perf_counter() - started)
    busy = []
    thread = threading.Thread(target=relist)
    thread.start()
    while not done.is_set():
        started = time.perf_counter()
        judge(request, policies, view)
        busy.append(time.perf_counter() - started)
    thread.join()
    return idle, busy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=50_000)
    parser.add_argument("--namespaces", type=int, default=500)
    parser.add_argument("--relists", type=int, default=3)
    args = parser.parse_args()
    pods = [pod(f"shop-{i % args.namespaces}", f"p{i}", f"{(i % 40) + 1}m") for i in range(args.pods)]
    pages = [orjson.dumps({"items": pods[i:i + 500]}) for i in range(0, len(pods), 500)]  # the API's answers
    del pods
    print(f"{args.pods} pods in {args.namespaces} namespaces; {args.relists} relists per row; "
          "admission = a quota'd pod CREATE judged (and reserved) through the watched view")
    print(f"{'store':<34} {'idle p99':>9} {'p50':>8} {'p99':>8} {'p99.9':>8} {'max':>8}  (ms, during the relists)")
    for under_lock, name in ((False, "build outside the lock (now)"), (True, "build under the lock (before)")):
        view = WatchedClusterState(k8s_client.ApiClient(), ViewSettings(reservation_ttl=0.0))
        view.store.replace("Pod", (view.store.compact("Pod", p) for page in pages
                                   for p in orjson.loads(page)["items"]))
        gc.collect()
        gc.freeze()  # what the server does once its view has synced
        idle, busy = measure(view, pages, args.relists, under_lock)
        ms = 1000.0
        print(f"{name:<34} {percentile(idle, 0.99) * ms:>9.3f} {statistics.median(busy) * ms:>8.3f} "
              f"{percentile(busy, 0.99) * ms:>8.3f} {percentile(busy, 0.999) * ms:>8.3f} {max(busy) * ms:>8.1f}")


if __name__ == "__main__":
    main()
