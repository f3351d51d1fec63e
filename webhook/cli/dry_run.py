"""`tenantguard dry-run`: the webhook's verdicts on manifest files, offline.

Each object goes through what the API server runs: the mutating webhook (defaults), the
patch applied, the validating webhook on the result; the output says so. With
``--validate-only`` the defaults are skipped: the verdict ``/validate`` gives an object as
written (what happens when ``/mutate``, which fails open, was down or timed out).

Exit codes: 0 every object allowed; 1 at least one denied; 2 bad input or bad
policy (the message on stderr names the file, document and field).
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from webhook.actions import dry_run as dryrun
from webhook.cli import output
from webhook.cli.common import EXIT_DENIED, EXIT_OK, load_policy_set
from webhook.inputs.manifests import read_objects
from webhook.views.files import load_state

NAME = "dry-run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR",
                        help="manifests: YAML/JSON files, directories, or - for stdin")
    parser.add_argument("--policies", "-p", action="append", required=True, metavar="PATH",
                        help="policy file or directory (repeatable)")
    parser.add_argument("--cluster-state", action="append", default=[], metavar="FILE",
                        help="existing Pods/Namespaces/ResourceQuotas/NetworkPolicies (YAML stream; repeatable)")
    parser.add_argument("--namespace", "-n", default="default",
                        help="namespace for objects that name none (default: default)")
    parser.add_argument("--output", "-o", choices=output.FORMATS, default="table",
                        help="table (default), json, yaml, diff (unified YAML diff), patch (RFC 6902, one line "
                             "per object)")
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


def run(args: argparse.Namespace) -> int:
    with _no_cycle_collection():
        policies = load_policy_set(args.policies)
        state = load_state(args.cluster_state)
        items = read_objects(args.inputs)
        results = dryrun.run(items, policies, state, namespace=args.namespace, today=date.today(),
                             username=args.user, groups=tuple(args.group), mutate=not args.validate_only)
        pipeline = dryrun.VALIDATE_ONLY if args.validate_only else dryrun.PIPELINE
        output.write(results, args.output, sys.stdout, args.color, pipeline=pipeline)
    return EXIT_DENIED if any(not r.decision.allowed for r in results) else EXIT_OK
