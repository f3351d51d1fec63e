"""`tenantguard render`: native Namespace/ResourceQuota/LimitRange/NetworkPolicy objects from the policies.

With ``--vap``: each CEL rule as a ValidatingAdmissionPolicy and its binding
(:mod:`webhook.actions.vap`); ``--output values`` prints them as a Helm values file
for the chart (``vap.enabled``, ``vap.objects``).

The objects go to stdout (a YAML stream, or with ``--output json`` one ``v1
List``), ready for ``kubectl apply -f -``; what could not be rendered is noted
on stderr. Without cluster state only the namespaces the policies name
literally are rendered; with ``--cluster-state FILE`` (a YAML stream of
Namespaces, as dry-run reads it) or the live Namespaces (``--kubeconfig`` /
``--in-cluster``), every namespace a tenant claims there by glob or
namespaceSelector too. ``--only`` picks the parts (labels, quota, limits,
network).

Exit codes: 0 rendered; 2 bad policy, bad flags, unreadable cluster state or
cluster, or policies that cannot be rendered into valid objects. See
:mod:`webhook.actions.render` for what is emitted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping

from webhook.actions.render import PARTS, parse_parts, render
from webhook.cli.common import EXIT_OK, UsageError, load_policy_set
from webhook.inputs.yamlio import dump_all
from webhook.views.files import load_state

NAME = "render"


def _parts(value: str) -> frozenset[str]:
    try:
        return parse_parts([value])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policies", "-p", action="append", required=True, metavar="PATH",
                        help="policy file or directory (repeatable)")
    parser.add_argument("--tenant", action="append", default=[], metavar="NAME",
                        help="render only this tenant (repeatable; default: every tenant)")
    parser.add_argument("--cluster-state", action="append", default=[], metavar="FILE",
                        help="the cluster's Namespaces (YAML stream, as dry-run reads it; repeatable): render "
                             "every namespace a tenant claims there, by glob or namespaceSelector too")
    parser.add_argument("--kubeconfig", metavar="FILE",
                        help="read the live Namespaces through this kubeconfig instead")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser.add_argument("--in-cluster", action="store_true",
                        help="read the live Namespaces with the pod's service account")
    parser.add_argument("--only", action="append", type=_parts, metavar="PARTS",
                        help=f"comma-separated subset of {','.join(PARTS)} (labels: Namespace objects, quota: "
                             "ResourceQuota, limits: LimitRange, network: NetworkPolicies; default: all)")
    parser.add_argument("--output", "-o", choices=("yaml", "json", "values"), default="yaml",
                        help="yaml: a multi-document stream (default); json: one v1 List; values (with --vap): a "
                             "Helm values file for the chart (vap.enabled, vap.objects)")
    parser.add_argument("--vap", action="store_true",
                        help="render each CEL rule (spec.rules.cel) as a ValidatingAdmissionPolicy and its binding "
                             "instead (docs/cel.md)")


def _live_namespaces(args: argparse.Namespace) -> tuple[dict[str, Mapping[str, str]], list[str]]:
    from webhook.views.snapshot import connect, read_namespaces

    api = connect(kubeconfig=args.kubeconfig, context=args.context, in_cluster=args.in_cluster)
    try:
        return read_namespaces(api)
    finally:
        api.close()


def run(args: argparse.Namespace) -> int:
    live = bool(args.kubeconfig or args.in_cluster or args.context)
    if args.cluster_state and live:
        raise UsageError("--cluster-state and --kubeconfig/--context/--in-cluster exclude each other: read the "
                         "namespaces from files or from the live cluster")
    if args.in_cluster and (args.kubeconfig or args.context):
        raise UsageError("--in-cluster uses the pod's service account; it takes no --kubeconfig or --context")
    parts = frozenset().union(*args.only) if args.only else frozenset(PARTS)
    if args.vap:
        if args.only or args.cluster_state or live:
            raise UsageError("--vap renders the CEL rules alone: it takes no --only, --cluster-state or live cluster")
        return _run_vap(args)
    if args.output == "values":
        raise UsageError("--output values is for --vap (the chart's vap.objects)")
    policies = load_policy_set(args.policies)
    namespaces: dict[str, Mapping[str, str]] | None = None
    notes: list[str] = []
    if args.cluster_state:
        state = load_state(args.cluster_state)
        namespaces = {name: state.namespace_labels(name) or {} for name in state.namespaces()}
    elif live:
        namespaces, notes = _live_namespaces(args)
    result = render(policies, args.tenant, namespaces=namespaces, parts=parts)
    for note in notes + result.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.output == "json":
        doc = {"apiVersion": "v1", "kind": "List", "metadata": {}, "items": result.objects}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    elif result.objects:
        sys.stdout.write(dump_all(result.objects))
    return EXIT_OK


def _run_vap(args: argparse.Namespace) -> int:
    from datetime import date

    from webhook.actions.vap import render_vap

    result = render_vap(load_policy_set(args.policies), args.tenant, today=date.today())
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.output == "json":
        doc = {"apiVersion": "v1", "kind": "List", "metadata": {}, "items": result.objects}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    elif args.output == "values":
        sys.stdout.write("# tenantguard render --vap --output values: the chart installs these with -f FILE\n")
        sys.stdout.write(dump_all([{"vap": {"enabled": True, "objects": result.objects}}]))
    elif result.objects:
        sys.stdout.write(dump_all(result.objects))
    return EXIT_OK
