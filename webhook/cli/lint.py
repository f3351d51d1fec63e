"""`tenantguard lint PATH...`: check policy files.

Errors (exit 2) name file, document and field. Warnings point at policies that load but
probably do not do what their author meant (webhook.actions.lint), such as an exemption
that matches every request: printed on stdout, exit 0; under ``--strict`` they are errors,
printed on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date

from webhook.actions.lint import contradiction_findings, warnings_for
from webhook.cli.common import EXIT_ERROR, EXIT_OK, load_policy_set

NAME = "lint"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="policy files or directories")
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors (printed on stderr, exit 2)")


def run(args: argparse.Namespace) -> int:
    policies = load_policy_set(args.paths)
    found = contradiction_findings(policies, args.paths)
    errors = [f.line() for f in found if f.severity == "error"]
    warnings = warnings_for(policies, date.today()) + [f.line() for f in found if f.severity == "warning"]
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    for warning in warnings:
        if args.strict:
            print(f"error: {warning}", file=sys.stderr)
        else:
            print(f"warning: {warning}")
    n = len(policies.cluster) + len(policies.tenants)
    if args.strict:
        errors, warnings = errors + warnings, []
    counts = [f"{len(errors)} error(s)"] * bool(errors) + [f"{len(warnings)} warning(s)"] * bool(warnings)
    print(f"{n} polic{'y' if n == 1 else 'ies'} ({len(policies.cluster)} cluster, {len(policies.tenants)} tenant): "
          f"{', '.join(counts) or 'ok'}")
    return EXIT_ERROR if errors else EXIT_OK
