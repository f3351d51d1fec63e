"""`tenantguard audit`: which live pods break the policies, and which lack their defaults?

Reads the cluster once and judges every running or pending pod as it is, as ``/validate``
would judge it; what ``/mutate`` would still change is reported apart as drift
(webhook.actions.audit). Prints a table (or ``-o json``).

Exit codes: 0 nothing would be denied; 1 at least one pod would be; 2 bad
policies or the cluster cannot be read. Drift alone does not fail.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date

from webhook.actions.audit import Audited, audit, summary
from webhook.cli.common import EXIT_DENIED, EXIT_OK, load_policy_set
from webhook.cli.output import Paint, use_colour

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
    from webhook.views.snapshot import connect, take_snapshot

    policies = load_policy_set(args.policies)
    api = connect(kubeconfig=args.kubeconfig, context=args.context, in_cluster=args.in_cluster)
    try:
        snapshot = take_snapshot(api)
    finally:
        api.close()
    results = audit(snapshot, policies, args.namespace, today=date.today())
    if args.output == "json":
        doc = {"results": [r.as_json() for r in results], "summary": summary(results)}
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
    else:
        write_table(results, args.all, use_colour(sys.stdout, args.color))
    return EXIT_DENIED if any(not r.decision.allowed for r in results) else EXIT_OK
