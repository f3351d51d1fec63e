"""`tenantguard` entry point.

Each subcommand lives in its own module under ``webhook.cli`` exposing
``NAME``, ``add_arguments(parser)`` and ``run(args) -> int``; it is imported
only when chosen, so `tenantguard dry-run` never pays for aiohttp. A module
only parses arguments and prints; what the command does is in its twin under
``webhook.actions``.

Exit codes follow the dry-run contract: 0 fine, 1 a policy verdict went
against the input, 2 bad input, bad flags or bad policy. Errors are caught
here, once: a :class:`webhook.core.errors.TenantguardError` prints its lines
on stderr and exits with its code; anything else is a bug (a traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from webhook import __version__
from webhook.core.errors import TenantguardError

# subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "dry-run": ("webhook.cli.dry_run", "evaluate manifests against policies offline (like the webhook would)"),
    "lint": ("webhook.cli.lint", "check policy files"),
    "test": ("webhook.cli.policy_test", "run policy test suites"),
    "serve": ("webhook.cli.serve", "run the admission webhook server"),
    "certs": ("webhook.cli.certs", "generate a CA and serving certificate for the webhook"),
    "render": ("webhook.cli.render", "render native Namespace/ResourceQuota/LimitRange/NetworkPolicy objects"),
    "audit": ("webhook.cli.audit", "report policy violations of the pods in a live cluster"),
    "schema": ("webhook.cli.schema", "print the JSON Schema of policy files (or of PolicyTest suites)"),
}


def build_parser(argv: Sequence[str]) -> tuple[argparse.ArgumentParser, object | None]:
    parser = argparse.ArgumentParser(prog="tenantguard", description="Per-tenant Kubernetes admission policies.")
    parser.add_argument("--version", action="version", version=f"tenantguard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    module = None
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name != module_name:
                    raise
                module = None
            if module is not None:
                module.add_arguments(p)
    return parser, module


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser, module = build_parser(args_list)
    args = parser.parse_args(args_list)
    if not args.command:
        parser.print_help(sys.stderr)
        return 2
    if module is None:
        print(f"tenantguard: {args.command} is not available in this build", file=sys.stderr)
        return 2
    try:
        return int(module.run(args))  # type: ignore[attr-defined]
    except TenantguardError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
