"""`tenantguard dry-run`: the webhook's verdicts on manifest files, offline.

Each object goes through what the API server runs: the mutating webhook (defaults), the
patch applied, the validating webhook on the result; the output says so. With
``--validate-only`` the defaults are skipped: the verdict ``/validate`` gives an object as
written (what happens when ``/mutate``, which fails open, was down or timed out).

Exit codes: 0 every object allowed; 1 at least one denied, or a finding of an enforcement
named by ``--fail-on`` (warn, audit); 2 bad input or bad policy (the message on stderr names
the file, document and field).

On stderr: a ``note:`` for each input document that is no Kubernetes object (a kustomization,
a Helm Chart.yaml, a tenantguard policy, ...: webhook.inputs.manifests), and a ``warning:`` for
each stdin document whose objects name no namespace when ``--namespace`` was not given.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date

from webhook.actions import dry_run as dryrun
from webhook.cli import output
from webhook.cli.common import EXIT_DENIED, EXIT_OK, UsageError, load_cluster_policy_set, load_policy_set
from webhook.core.plan import PolicySet
from webhook.inputs.manifests import read_objects
from webhook.views.files import load_state

NAME = "dry-run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR",
                        help="manifests: YAML/JSON files, directories, or - for stdin")
    parser.add_argument("--policies", "-p", action="append", default=[], metavar="PATH",
                        help="policy file or directory (repeatable)")
    parser.add_argument("--policies-from-cluster", dest="policies_from", action="store_const", const="cluster",
                        default="files",
                        help="the TenantPolicy and ClusterPolicy objects of the cluster (--kubeconfig, --context)")
    parser.add_argument("--policies-from", dest="policies_from", choices=("files", "cluster"),
                        help="files: --policies (default); cluster: the same as --policies-from-cluster")
    parser.add_argument("--kubeconfig", metavar="FILE",
                        help="with --policies-from-cluster: kubeconfig (default: $KUBECONFIG or ~/.kube/config)")
    parser.add_argument("--context", help="with --policies-from-cluster: kubeconfig context (default: the current)")
    parser.add_argument("--cluster-state", action="append", default=[], metavar="FILE",
                        help="existing Pods/Namespaces/ResourceQuotas/NetworkPolicies (YAML stream; repeatable)")
    parser.add_argument("--namespace", "-n", default=None,
                        help="namespace for objects that name none (default: default)")
    parser.add_argument("--output", "-o", choices=output.FORMATS, default="table",
                        help="table (default), json, yaml, diff (unified YAML diff), patch (RFC 6902, one line "
                             "per object), manifests (the mutated objects as a YAML stream, for kubectl apply), "
                             "policyreport (one wgpolicyk8s.io/v1alpha2 PolicyReport per namespace)")
    add_fail_on(parser)
    parser.add_argument("--user", default="", help="requesting user name (for exemptions)")
    parser.add_argument("--group", action="append", default=[], help="requesting user's group (repeatable)")
    parser.add_argument("--validate-only", action="store_true",
                        help="skip the defaults: judge each object as written, as /validate does when /mutate "
                             "was down or timed out")
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto")


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """The cyclic garbage collector paused for the run.

    A dry-run keeps everything it builds (the inputs, then one result per object) until it
    prints, and builds no reference cycles per object; every collection would only walk that
    growing heap again (some 30% of the CPU time over 10,000 manifests). Reference counting
    still frees what is dropped.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


FAIL_ON = {"warn": dryrun.WARN, "audit": dryrun.AUDIT}


def _fail_on(value: str) -> list[str]:
    names = [v.strip().lower() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in FAIL_ON]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{value!r}: expected warn, audit or both (warn,audit)")
    return [FAIL_ON[n] for n in names]


def add_fail_on(parser: argparse.ArgumentParser) -> None:
    """``--fail-on warn,audit`` (shared with ``tenantguard audit``)."""
    parser.add_argument("--fail-on", action="append", default=[], type=_fail_on, metavar="warn,audit",
                        help="also exit 1 when a finding of this enforcement exists (warn, audit; repeatable or "
                             "comma-separated)")


def fail_on_code(fail_on: list[list[str]], count: Callable[[str], int], code: int) -> int:
    """``code``, or EXIT_DENIED (with a note on stderr) when a finding of an enforcement ``--fail-on`` names
    exists; ``count(mode)`` says how many there are."""
    for mode in dict.fromkeys(m for modes in fail_on for m in modes):
        found = count(mode)
        if found:
            print(f"note: exit {EXIT_DENIED}: {found} {mode} finding{'s' if found != 1 else ''} (--fail-on "
                  f"{mode.lower()})", file=sys.stderr)
            code = EXIT_DENIED
    return code


def _policies(args: argparse.Namespace) -> PolicySet:
    if args.policies_from == "cluster":
        if args.policies:
            raise UsageError("--policies reads files; --policies-from-cluster reads the cluster's objects: one or "
                             "the other")
        return load_cluster_policy_set(args.kubeconfig, args.context)
    if not args.policies:
        raise UsageError("--policies is required (or --policies-from-cluster)")
    if args.kubeconfig or args.context:
        raise UsageError("--kubeconfig and --context go with --policies-from-cluster")
    return load_policy_set(args.policies)


def run(args: argparse.Namespace) -> int:
    namespace = args.namespace if args.namespace is not None else "default"
    with _no_cycle_collection():
        policies = _policies(args)
        state = load_state(args.cluster_state)
        notes: list[str] = []
        items = read_objects(args.inputs, notes=notes)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        results = dryrun.run(items, policies, state, namespace=namespace, today=date.today(),
                             username=args.user, groups=tuple(args.group), mutate=not args.validate_only)
        if args.namespace is None:
            for warning in dryrun.namespace_warnings(items, results, namespace):
                print(f"warning: {warning}", file=sys.stderr)
        pipeline = dryrun.VALIDATE_ONLY if args.validate_only else dryrun.PIPELINE
        output.write(results, args.output, sys.stdout, args.color, pipeline=pipeline)
    code = EXIT_DENIED if any(not r.decision.allowed for r in results) else EXIT_OK
    return fail_on_code(args.fail_on, lambda mode: sum(r.count(mode) for r in results), code)
