"""`tenantguard dry-run -o json` against a bare YAML parse of the same manifests.

Generates a corpus (default 100 files x 100 documents: Pods and Deployments with realistic
specs, in namespaces the shipped policies claim), then times

- parse:   ``yaml.load_all(text, Loader=yaml.CSafeLoader)`` over every file (read included),
           in this process;
- dry-run: ``tenantguard dry-run --policies policies --output json CORPUS > /dev/null``,
           the console script in a fresh process (interpreter start and imports included),

best of ``--repeat`` alternated runs each (wall time, and CPU time, which a busy machine
disturbs less), and prints the ratio dry-run / parse:

    .venv/bin/python bench/cli_speed.py [--files 100] [--docs 100] [--repeat 3] [--corpus DIR]

With ``--corpus DIR`` the corpus is written there (unless it holds one already) and kept, for
profiling (``.venv/bin/python -m cProfile -o dry.prof -m webhook.cli.main dry-run -p policies
-o json DIR``); without it, it lives in a temporary directory. The same sizes give the same
corpus (seeded). The dry-run inherits ``PYTHONPATH``: ``PYTHONPATH=/some/tree`` times the
``webhook`` package of another tree (a copy from before a change) on the same corpus.
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TENANTGUARD = Path(sys.executable).parent / "tenantguard"

# namespaces claimed by policies/*.yaml (literal names and their globs' siblings)
NAMESPACES = ["customer-a", "customer-a-web", "trading", "trading-fx", "ml", "ml-inference", "edge",
              "edge-berlin"]
IMAGES = ["registry.example.com/shop/api:1.14.2", "nginxinc/nginx-unprivileged:1.27",
          "ghcr.io/acme/worker:2.3.0", "registry.example.com/trading/pricer:v7",
          "pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime"]


def _container(rng: random.Random, name: str, namespace: str) -> dict[str, Any]:
    c: dict[str, Any] = {
        "name": name,
        "image": rng.choice(IMAGES),
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": [{"name": f"APP_SETTING_{i}", "value": f"value-{rng.randint(0, 999)}"}
                for i in range(rng.randint(1, 3))]
        + [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": True}],
    }
    if rng.random() < 0.7:
        cpu = rng.choice(["50m", "100m", "250m", "500m"])
        memory = rng.choice(["64Mi", "128Mi", "256Mi", "512Mi"])
        c["resources"] = {"requests": {"cpu": cpu, "memory": memory},
                          "limits": {"cpu": cpu, "memory": memory}}
        if namespace.startswith("ml") and rng.random() < 0.3:
            c["resources"]["limits"]["nvidia.com/gpu"] = 1
    if rng.random() < 0.6:
        c["livenessProbe"] = {"httpGet": {"path": "/healthz", "port": 8080}, "initialDelaySeconds": 10,
                              "periodSeconds": 10}
        c["readinessProbe"] = {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 5}
    if rng.random() < 0.5:
        c["securityContext"] = {"runAsNonRoot": True, "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True}
    return c


def _pod_spec(rng: random.Random, app: str, namespace: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "serviceAccountName": app,
        "containers": [_container(rng, app, namespace)]
        + [_container(rng, f"sidecar-{i}", namespace) for i in range(1 if rng.random() < 0.25 else 0)],
        "volumes": [{"name": "config", "configMap": {"name": f"{app}-config"}},
                    {"name": "scratch", "emptyDir": {}}],
    }
    if rng.random() < 0.3:
        spec["initContainers"] = [{"name": "migrate", "image": rng.choice(IMAGES),
                                   "command": ["/bin/migrate", "up"]}]
    if namespace.startswith("edge"):
        spec["nodeSelector"] = {"edge-capability": rng.choice(["gpu", "standard"])}
    if namespace.startswith("ml"):
        spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    if namespace.startswith("trading"):
        spec["priorityClassName"] = "trading-standard"
    return spec


def manifest(rng: random.Random, index: int) -> dict[str, Any]:
    namespace = rng.choice(NAMESPACES)
    app = f"app-{index % 997}"
    labels = {"app": app, "app.kubernetes.io/part-of": "bench", "version": f"v{rng.randint(1, 9)}"}
    annotations = {"prometheus.io/scrape": "true", "prometheus.io/port": "9090",
                   "example.com/owner": f"team-{rng.randint(1, 20)}@example.com"}
    if rng.random() < 0.5:
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"{app}-{index}", "namespace": namespace, "labels": labels,
                             "annotations": annotations},
                "spec": _pod_spec(rng, app, namespace)}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": f"{app}-{index}", "namespace": namespace, "labels": labels},
        "spec": {"replicas": rng.randint(1, 4), "selector": {"matchLabels": {"app": app}},
                 "strategy": {"type": "RollingUpdate",
                              "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
                 "template": {"metadata": {"labels": dict(labels), "annotations": annotations},
                              "spec": _pod_spec(rng, app, namespace)}},
    }


def generate(directory: Path, files: int, docs: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        objects = [manifest(rng, f * docs + d) for d in range(docs)]
        text = yaml.dump_all(objects, Dumper=yaml.CSafeDumper, sort_keys=False, default_flow_style=False)
        (directory / f"manifests-{f:03d}.yaml").write_text(text)


def parse_seconds(directory: Path) -> tuple[float, float, int]:
    """(wall, CPU) seconds of the bare parse, and the number of documents."""
    wall, cpu, count = time.perf_counter(), time.process_time(), 0
    for path in sorted(directory.glob("*.yaml")):
        count += len(list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)))
    return time.perf_counter() - wall, time.process_time() - cpu, count


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def dry_run_seconds(directory: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of the dry-run process."""
    command = [str(TENANTGUARD), "dry-run", "--policies", str(ROOT / "policies"), "--output", "json",
               str(directory)]
    wall, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    wall, cpu = time.perf_counter() - wall, _children_cpu() - cpu
    if done.returncode not in (0, 1):
        raise SystemExit(f"dry-run failed ({done.returncode}): {done.stderr.decode()}")
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--docs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--corpus", type=Path, help="write the corpus here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tenantguard-cli-speed-") as scratch:
        corpus = args.corpus or Path(scratch) / "corpus"
        if not any(corpus.glob("*.yaml")):
            generate(corpus, args.files, args.docs)
        size = sum(p.stat().st_size for p in corpus.glob("*.yaml")) / 1e6
        parses, dry_runs = [], []
        for _ in range(args.repeat):  # alternated, so both see the same machine load
            *seconds, count = parse_seconds(corpus)
            parses.append(seconds)
            dry_runs.append(dry_run_seconds(corpus))
    parse, parse_cpu = (min(p[i] for p in parses) for i in (0, 1))
    dry, dry_cpu = (min(d[i] for d in dry_runs) for i in (0, 1))
    print(f"corpus: {corpus} ({count} documents, {size:.1f} MB)")
    print(f"{'best of ' + str(args.repeat):<22} {'wall':>7}   {'CPU':>7}")
    print(f"{'parse (CSafeLoader)':<22} {parse:7.2f} s {parse_cpu:7.2f} s")
    print(f"{'dry-run -o json':<22} {dry:7.2f} s {dry_cpu:7.2f} s   ({dry / count * 1e6:.0f} us/object wall)")
    print(f"{'ratio':<22} {dry / parse:7.2f}x  {dry_cpu / parse_cpu:7.2f}x")


if __name__ == "__main__":
    main()
