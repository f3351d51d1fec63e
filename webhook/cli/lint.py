"""`tenantguard lint PATH...`: check policy files.

Errors (exit 2) name file, document and field. Warnings (exit 0 unless ``--strict``)
point at policies that load but probably do not do what their author meant
(webhook.actions.lint).
"""

from __future__ import annotations

import argparse
from datetime import date

from webhook.actions.lint import warnings_for
from webhook.cli.common import EXIT_ERROR, EXIT_OK, load_policy_set

NAME = "lint"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="policy files or directories")
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors (exit 2)")


def run(args: argparse.Namespace) -> int:
    policies = load_policy_set(args.paths)
    warnings = warnings_for(policies, date.today())
    for w in warnings:
        print(f"warning: {w}")
    n = len(policies.cluster) + len(policies.tenants)
    print(f"{n} polic{'y' if n == 1 else 'ies'} ({len(policies.cluster)} cluster, {len(policies.tenants)} tenant): "
          f"{'ok' if not warnings else f'{len(warnings)} warning(s)'}")
    return EXIT_ERROR if (warnings and args.strict) else EXIT_OK
