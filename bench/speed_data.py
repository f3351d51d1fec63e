"""Generated inputs of bench/speed.py: 1,000 TenantPolicies, cluster states of 1 and 3,000 namespaces, and
10,000 manifests. Each function writes under the directory it is given and returns the path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def tenant_policy(i: int) -> dict:
    spec: dict = {"namespaces": [f"t{i}", f"t{i}-*"], "enforcement": "Enforce",
                  "defaults": {"labels": {"tenant": f"t{i}"},
                               "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                             "limits": {"cpu": "500m", "memory": "512Mi"}}},
                  "rules": {"requireRequests": ["cpu", "memory"], "podSecurity": "baseline"}}
    if i % 4 == 1:  # a selector too, and more globs
        spec["namespaceSelector"] = {"matchLabels": {"tenant-id": f"t{i}"}}
        spec["namespaces"] += [f"t{i}x-*-dev", f"t{i}y-?"]
    elif i % 4 == 2:
        spec["defaults"]["securityContext"] = "restricted"
        spec["rules"].update(podSecurity="restricted", sharedNamespaces=["monitoring"])
        spec["quota"] = {"hard": {"requests.cpu": "8", "requests.memory": "16Gi"}}
    elif i % 4 == 3:
        spec["defaults"]["tolerations"] = [{"key": "dedicated", "operator": "Equal", "value": f"t{i}",
                                            "effect": "NoSchedule"}]
        spec["rules"].update(allowedTolerations=[{"key": "dedicated"}],
                             maxResources={"perPod": {"cpu": "4", "memory": "8Gi"}})
    return {"apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": f"t{i}"},
            "spec": spec}


def policy_dir(out: Path, tenants: list[int]) -> Path:
    """The shipped cluster baseline and tenants t{i} claiming `t{i}` and `t{i}-*` (some with a selector)."""
    out.mkdir()
    shutil.copy(ROOT / "policies" / "cluster-baseline.yaml", out)
    for i in tenants:
        (out / f"t{i:04d}.yaml").write_text(yaml.safe_dump(tenant_policy(i), sort_keys=False))
    return out


QUOTA_TENANT = {"apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": "q"},
                "spec": {"namespaces": ["q-*"], "defaults": {"labels": {"tenant": "q"}, "resources": {
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                    "limits": {"cpu": "500m", "memory": "512Mi"}}},
                    "quota": {"hard": {"requests.cpu": "1000", "requests.memory": "2Ti", "limits.cpu": "2000",
                                       "limits.memory": "4Ti", "pods": "100000"}}}}


def cluster_state(path: Path, namespaces: int, pods: int = 1000) -> Path:
    """Namespaces q-0.. (tenant q's, at most 1,000) and o-.. (others); ``pods`` pods spread over the q-*."""
    q = min(namespaces, 1000)
    docs = [{"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": f"q-{i}", "labels": {"tenant": "q"}} if i < q else
             {"name": f"o-{i}", "labels": {"team": f"o{i % 50}"}}} for i in range(namespaces)]
    docs += [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p-{i}", "namespace": f"q-{i % q}"},
              "spec": {"containers": [{"name": "c", "image": "registry.example.com/app:1", "resources": {
                  "requests": {"cpu": "10m", "memory": "16Mi"},
                  "limits": {"cpu": "20m", "memory": "32Mi"}}}]},
              "status": {"phase": "Running"}} for i in range(pods)]
    path.write_text("---\n".join(json.dumps(d) + "\n" for d in docs))
    return path


def manifests(out: Path, count: int) -> Path:
    """``count`` Pods and Deployments, 100 per file, in the shipped policies' namespaces and others."""
    out.mkdir()
    namespaces = ["trading", "ml", "edge-a", "customer-a", "default", "shop"]
    for f in range(count // 100):
        docs = []
        for n in range(f * 100, f * 100 + 100):
            container = {"name": "app", "image": f"registry.example.com/app-{n % 17}:1.{n % 5}",
                         "ports": [{"containerPort": 8080}], "env": [{"name": "N", "value": str(n)}]}
            if n % 3:
                container["resources"] = {"requests": {"cpu": "100m", "memory": "128Mi"},
                                          "limits": {"cpu": "100m", "memory": "128Mi"}}
            meta = {"name": f"app-{n}", "namespace": namespaces[n % len(namespaces)],
                    "labels": {"app": f"app-{n}"}}
            pod = {"containers": [container]}
            docs.append({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod}
                        if n % 2 else
                        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": {
                            "replicas": 2, "selector": {"matchLabels": meta["labels"]},
                            "template": {"metadata": {"labels": meta["labels"]}, "spec": pod}}})
        (out / f"m{f:03d}.yaml").write_text(yaml.dump_all(docs, Dumper=yaml.CSafeDumper, sort_keys=False))
    return out
