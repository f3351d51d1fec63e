"""`tenantguard audit`: which live pods break the policies, and which lack their defaults?

Reads the cluster once (paged lists of Namespaces, NetworkPolicies,
ResourceQuotas and Pods, through the official client), then judges every
running or pending pod AS IT IS, as ``/validate`` would judge it were it created
now: the rules against the snapshot (the pod's own usage is not counted twice
against quota), never our defaults, which a live pod either carries or does not.
Separately, it reports **drift**: what ``/mutate`` would still change on the pod
(a pod created while the mutating webhook was down or timed out, which fails
open, or before a default was added to the policy). Terminal pods and system
namespaces are skipped.

Exit codes: 0 nothing would be denied; 1 at least one pod would be; 2 bad
policies or the cluster cannot be read. Drift alone does not fail.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass
from datetime import date
from typing import Any

from webhook.cli.common import EXIT_DENIED, EXIT_OK, fail, load_policy_set
from webhook.cli.report import Paint, use_colour
from webhook.core.engine import evaluate
from webhook.core.patch import PatchOp
from webhook.core.pipeline import judge as judge_request
from webhook.core.request import from_manifest
from webhook.dryrun import Result

NAME = "audit"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policies", "-p", action="append", required=True, metavar="PATH",
                        help="policy file or directory (repeatable)")
    parser.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig (default: $KUBECONFIG or ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser.add_argument("--in-cluster", action="store_true", help="use the pod's service account")
    parser.add_argument("--namespace", "-n", action="append", default=[], metavar="NS",
                        help="only pods of this namespace (repeatable; the whole cluster is still read for usage)")
    parser.add_argument("--output", "-o", choices=("table", "json"), default="table")
    parser.add_argument("--all", action="store_true", help="list allowed pods too (table)")
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto")


def _api(args: argparse.Namespace):
    from kubernetes import client, config

    configuration = client.Configuration()
    if args.in_cluster:
        config.load_incluster_config(client_configuration=configuration)
    else:
        config.load_kube_config(config_file=args.kubeconfig, context=args.context,
                                client_configuration=configuration)
    return client.ApiClient(configuration)


def _live(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


@dataclass(slots=True)
class Audited(Result):
    """A live pod's verdict as it is, and ``drift``: the ops ``/mutate`` would still apply to it."""

    drift: list[PatchOp] = dataclasses.field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        out = {k: v for k, v in Result.as_json(self).items() if k not in ("object", "patch")}
        out["drift"] = [op.as_json() for op in self.drift]
        return out


def judge(snapshot, policies, namespaces: list[str], today: date) -> list[Audited]:
    results = []
    for pod in sorted(snapshot.pods, key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"]["name"])):
        ns = pod["metadata"].get("namespace", "")
        if not _live(pod) or (namespaces and ns not in namespaces):
            continue
        # judged as a dry-run CREATE: never added to the snapshot (its own usage is already in it)
        request = dataclasses.replace(from_manifest(pod, default_namespace=ns, today=today), dry_run=True)
        decision = judge_request(request, policies, snapshot.state, mutate=False)
        drift = evaluate(request, policies, snapshot.state, validate=False).patch
        results.append(Audited(request, decision, pod, drift))
    return results


def write_table(results: list[Audited], show_all: bool, colour: bool) -> None:
    paint = Paint(colour)
    rows = [("NAMESPACE", "POD", "TENANT", "VERDICT", "DRIFT", "RULES")]
    for r in results:
        d = r.decision
        if d.allowed and not r.drift and not show_all:
            continue
        rules = ", ".join(dict.fromkeys(f"{v.policy}/{v.rule}" for v in d.violations)) or "-"
        verdict = "DENIED" if not d.allowed else ("skipped" if d.skipped else "allowed")
        drift = f"{len(r.drift)} op{'s' if len(r.drift) != 1 else ''}" if r.drift else "-"
        rows.append((r.request.namespace, r.original["metadata"]["name"], d.tenant or "-", verdict, drift, rules))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for index, row in enumerate(rows):
        cells = [row[i].ljust(widths[i]) for i in range(5)]
        if index and row[3] == "DENIED":
            cells[3] = paint(cells[3], "1;31")
        elif index and row[3] == "allowed":
            cells[3] = paint(cells[3], "1;32")
        if index and row[4] != "-":
            cells[4] = paint(cells[4], "33")
        print("  ".join(cells + [row[5]]).rstrip())
    denied = [r for r in results if not r.decision.allowed]
    drifted = [r for r in results if r.drift]
    print(f"\n{len(results)} live pods: {len(results) - len(denied)} allowed, {len(denied)} would be denied; "
          f"{len(drifted)} without the defaults /mutate would set (drift)")
    for r in denied:
        print(f"\n{r.request.namespace}/{r.original['metadata']['name']}:")
        for v in r.decision.violations:
            print(f"  x {v.summary()}")
    for r in drifted:
        print(f"\n{r.request.namespace}/{r.original['metadata']['name']}: drift (created while /mutate was down, "
              "or before these defaults)")
        for op in r.drift:
            print(f"  + {op.op} {op.path} {json.dumps(op.value, separators=(',', ':'))[:100]}  ({op.policy}/{op.rule})")


def run(args: argparse.Namespace) -> int:
    from webhook.cluster.snapshot import take_snapshot

    try:
        policies = load_policy_set(args.policies)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        api = _api(args)
        try:
            snapshot = take_snapshot(api)
        finally:
            api.close()
    except Exception as exc:  # noqa: BLE001 - any failure to reach or read the cluster
        return fail(f"cannot read the cluster: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}")
    results = judge(snapshot, policies, args.namespace, date.today())
    if args.output == "json":
        doc = {"results": [r.as_json() for r in results],
               "summary": {"allowed": sum(r.decision.allowed for r in results),
                           "denied": sum(not r.decision.allowed for r in results),
                           "drift": sum(bool(r.drift) for r in results)}}
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
    else:
        write_table(results, args.all, use_colour(sys.stdout, args.color))
    return EXIT_DENIED if any(not r.decision.allowed for r in results) else EXIT_OK
