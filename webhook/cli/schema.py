"""`tenantguard schema [--kind KIND] [-o FILE]`: print the JSON Schema of policy files.

The schema (JSON Schema draft 2020-12, generated from the same models the loader validates
with) lets an editor's YAML language server complete fields, describe them and mark typos::

    tenantguard schema -o tenantguard-policy.schema.json
    # first line of a policy file:
    # yaml-language-server: $schema=tenantguard-policy.schema.json

``--kind Policy`` (default) is one TenantPolicy or ClusterPolicy document; ``--kind
PolicyTest`` a test suite.

``--crd`` prints the CustomResourceDefinitions of the policy kinds instead, as a YAML stream
(both, or the one ``--kind TenantPolicy|ClusterPolicy`` names): what the chart's ``crds/``
hold. Exit codes: 0 printed or written; 2 the file cannot be written, or ``--crd --kind
PolicyTest``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from webhook.actions.schema import KINDS, crd_text, schema_text, write_schema
from webhook.cli.common import EXIT_OK

NAME = "schema"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", "-k", choices=KINDS, default="Policy",
                        help="Policy: a TenantPolicy or ClusterPolicy document (default); TenantPolicy or "
                             "ClusterPolicy: that kind only; PolicyTest: a test suite")
    parser.add_argument("--output", "-o", type=Path, metavar="FILE",
                        help="write the schema to FILE instead of stdout")
    parser.add_argument("--crd", action="store_true",
                        help="print the CustomResourceDefinitions of TenantPolicy and ClusterPolicy (YAML; --kind "
                             "narrows to one) instead of the JSON Schema")


def run(args: argparse.Namespace) -> int:
    if args.output is None:
        sys.stdout.write(crd_text(args.kind) if args.crd else schema_text(args.kind))
    else:
        write_schema(args.kind, args.output, crd=args.crd)
        print(f"wrote {args.output}", file=sys.stderr)
    return EXIT_OK
