"""`tenantguard render`: native Namespace/ResourceQuota/LimitRange/NetworkPolicy objects from the policies.

The objects go to stdout (a YAML stream, or with ``--output json`` one ``v1
List``), ready for ``kubectl apply -f -``; what could not be rendered is noted
on stderr. Exit codes: 0 rendered; 2 bad policy or policies that cannot be
rendered into valid objects. See :mod:`webhook.render` for what is emitted.
"""

from __future__ import annotations

import argparse
import json
import sys

from webhook.cli.common import EXIT_OK, fail, load_policy_set
from webhook.render import RenderError, render
from webhook.yamlio import dump_all

NAME = "render"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policies", "-p", action="append", required=True, metavar="PATH",
                        help="policy file or directory (repeatable)")
    parser.add_argument("--tenant", action="append", default=[], metavar="NAME",
                        help="render only this tenant (repeatable; default: every tenant)")
    parser.add_argument("--output", "-o", choices=("yaml", "json"), default="yaml",
                        help="yaml: a multi-document stream (default); json: one v1 List")


def run(args: argparse.Namespace) -> int:
    try:
        policies = load_policy_set(args.policies)
        result = render(policies, args.tenant)
    except SystemExit as exc:
        return int(exc.code or 0)
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
