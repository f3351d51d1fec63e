"""CEL rules: evaluation time per rule, on the medium and large pods (figures, not assertions).

    .venv/bin/python bench/cel_speed.py [--rounds N]

One TenantPolicy with 10 CEL rules (the kinds of rule tenants write: image tags and registries,
labels, resources, quantities, security context, host paths, probes, the namespace's labels),
judged by the engine (`/validate`'s path: validation only) on the shared medium (3 containers)
and large (10 containers) AdmissionReview fixtures. Per rule, the engine's own timer (the one
behind ``tenantguard_rule_duration_seconds``): median and p90 over N evaluations. The first CEL
rule of a request also converts the request into CEL values (one activation shared by every rule);
the "per rule, amortized" line divides the whole CEL part by 10. Also: the time to compile the
policy (a load, or a reload), and one evaluation with the rules' programs compiled per request
instead (what caching them per load saves).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from webhook.core.engine import evaluate  # noqa: E402
from webhook.core.request import from_review  # noqa: E402
from webhook.policy.loader import SourceDoc, build_policy_set  # noqa: E402
from webhook.views.memory import InMemoryClusterState  # noqa: E402

RULES: list[dict[str, Any]] = [
    {"name": "no-latest", "variables": [{"name": "images", "expression": "object.spec.containers.map(c, c.image)"}],
     "validations": [{"expression": "variables.images.all(i, !i.endsWith(':latest') && i.contains(':'))",
                      "messageExpression": "'images must be pinned: ' + variables.images.join(', ')"}]},
    {"name": "registry", "validations": [{"expression":
        "object.spec.containers.all(c, c.image.matches('^registry\\\\.example\\\\.com/'))"}]},
    {"name": "team-label", "validations": [{"expression":
        "has(object.metadata.labels) && 'app.kubernetes.io/name' in object.metadata.labels"}]},
    {"name": "limits", "validations": [{"expression":
        "object.spec.containers.all(c, has(c.resources.limits) && 'memory' in c.resources.limits)"}]},
    {"name": "memory-cap", "validations": [{"expression":
        "object.spec.containers.all(c, !has(c.resources.limits) || !('memory' in c.resources.limits) || "
        "quantity(c.resources.limits.memory).compareTo(quantity('2Gi')) <= 0)"}]},
    {"name": "no-privileged", "validations": [{"expression":
        "object.spec.containers.all(c, !has(c.securityContext) || !has(c.securityContext.privileged) || "
        "!c.securityContext.privileged)"}]},
    {"name": "no-hostpath", "validations": [{"expression":
        "!has(object.spec.volumes) || object.spec.volumes.all(v, !has(v.hostPath))"}]},
    {"name": "probes", "validations": [{"expression": "object.spec.containers.all(c, has(c.readinessProbe))"}]},
    {"name": "env-names", "validations": [{"expression":
        "object.spec.containers.all(c, !has(c.env) || c.env.all(e, e.name.matches('^[A-Z_][A-Z0-9_]*$')))"}]},
    {"name": "namespace-tier", "validations": [{"expression":
        "namespaceObject == null || !has(namespaceObject.metadata.labels) || "
        "namespaceObject.metadata.labels['tier'] != 'frozen'"}]},
]


def _review(size: str) -> dict[str, Any]:
    for base in (ROOT.parent / "shared/fixtures/admissionreviews", ROOT / "tests/fixtures/admissionreviews"):
        path = base / f"{size}.json"
        if path.exists():
            return json.loads(path.read_text())
    raise FileNotFoundError(f"{size}.json")


def _policy(namespace: str) -> dict[str, Any]:
    return {"apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": "bench"},
            "spec": {"namespaces": [namespace], "enforcement": "Audit", "rules": {"cel": RULES}}}


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:8.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}; {len(RULES)} CEL rules; {args.rounds} evaluations per pod")
    for size in ("medium", "large"):
        review = _review(size)
        request = from_review(review)
        doc = SourceDoc(_policy(request.namespace), "bench.yaml", 1)
        started = time.perf_counter()
        policies = build_policy_set([doc])
        load = time.perf_counter() - started
        state = InMemoryClusterState()
        times: dict[str, list[float]] = {}
        totals: list[float] = []
        for i in range(args.rounds + 50):
            decision = evaluate(request, policies, state, mutate=False, timer=time.perf_counter)
            if i < 50:
                continue  # warm-up
            cel = [r for r in decision.results if r.rule.startswith("cel/")]
            for r in cel:
                times.setdefault(r.rule, []).append(r.seconds or 0.0)
            totals.append(sum(r.seconds or 0.0 for r in cel))
        containers = len(request.obj["spec"]["containers"]) if request.obj else 0
        print(f"\n{size} pod ({containers} containers); policy compiled in {load * 1e3:.1f} ms")
        print(f"  {'rule':<22}{'median us':>10}{'p90 us':>10}")
        for rule, values in times.items():
            values.sort()
            print(f"  {rule:<22}{_us(statistics.median(values)):>10}{_us(values[int(len(values) * 0.9)]):>10}")
        totals.sort()
        print(f"  {'all 10 rules':<22}{_us(statistics.median(totals)):>10}{_us(totals[int(len(totals) * 0.9)]):>10}")
        print(f"  {'per rule, amortized':<22}{_us(statistics.median(totals) / len(RULES)):>10}")
        # what compiling per request would cost instead (never done: programs are compiled per load)
        started = time.perf_counter()
        build_policy_set([doc])
        print(f"  {'compiled per request':<22}{_us(time.perf_counter() - started):>10}  (one policy compile)")


if __name__ == "__main__":
    main()
