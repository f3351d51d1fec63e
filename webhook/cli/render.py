"""`tenantguard render`: native Namespace/ResourceQuota/LimitRange/NetworkPolicy objects from the policies.

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
:mod:`webhook.render` for what is emitted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping

from webhook.cli.common import EXIT_OK, fail, load_policy_set, load_state
from webhook.core.cluster_state import InMemoryClusterState
from webhook.render import PARTS, RenderError, parse_parts, render
from webhook.yamlio import dump_all

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
    parser.add_argument("--output", "-o", choices=("yaml", "json"), default="yaml",
                        help="yaml: a multi-document stream (default); json: one v1 List")


def _labels(state: InMemoryClusterState) -> dict[str, Mapping[str, str]]:
    return {name: state.namespace_labels(name) or {} for name in state.namespaces()}


def _terminating(item: Mapping[str, object]) -> bool:
    meta = item.get("metadata")
    status = item.get("status")
    return (isinstance(meta, dict) and bool(meta.get("deletionTimestamp"))) or \
        (isinstance(status, dict) and status.get("phase") == "Terminating")


def live_namespaces(args: argparse.Namespace) -> dict[str, Mapping[str, str]]:
    """The live Namespaces and their labels, one paged list through the official client (as audit connects)."""
    from kubernetes import client

    from webhook.cli.audit import _api
    from webhook.cluster.snapshot import list_items

    api = _api(args)
    state = InMemoryClusterState()
    try:
        for item in list_items(client.CoreV1Api(api).list_namespace):
            if _terminating(item):
                name = (item.get("metadata") or {}).get("name")
                print(f"note: namespace {name} is terminating; nothing rendered for it", file=sys.stderr)
                continue
            state.add_object(dict(item, kind="Namespace"))
    finally:
        api.close()
    return _labels(state)


def _why(exc: Exception) -> str:
    """One line: the API server's status and message, or the first line of any other error."""
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        message = ""
        try:
            body = json.loads(getattr(exc, "body", None) or "{}")
            message = str(body.get("message") or "") if isinstance(body, dict) else ""
        except ValueError:
            pass
        reason = str(getattr(exc, "reason", "") or "")
        return " ".join(f"HTTP {status} {reason}".split()) + (f": {message}" if message else "")
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300] if lines else ''}".rstrip(": ")


def run(args: argparse.Namespace) -> int:
    live = bool(args.kubeconfig or args.in_cluster or args.context)
    if args.cluster_state and live:
        return fail("--cluster-state and --kubeconfig/--context/--in-cluster exclude each other: read the "
                    "namespaces from files or from the live cluster")
    if args.in_cluster and (args.kubeconfig or args.context):
        return fail("--in-cluster uses the pod's service account; it takes no --kubeconfig or --context")
    parts = frozenset().union(*args.only) if args.only else frozenset(PARTS)
    try:
        policies = load_policy_set(args.policies)
        namespaces: dict[str, Mapping[str, str]] | None = None
        if args.cluster_state:
            namespaces = _labels(load_state(args.cluster_state))
    except SystemExit as exc:
        return int(exc.code or 0)
    if live:
        try:
            namespaces = live_namespaces(args)
        except Exception as exc:  # noqa: BLE001 - any failure to reach or read the cluster
            return fail(f"cannot read the cluster's namespaces: {_why(exc)}")
    try:
        result = render(policies, args.tenant, namespaces=namespaces, parts=parts)
    except RenderError as exc:
        return fail(str(exc))
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.output == "json":
        doc = {"apiVersion": "v1", "kind": "List", "metadata": {}, "items": result.objects}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    elif result.objects:
        sys.stdout.write(dump_all(result.objects))
    return EXIT_OK
