"""`tenantguard test PATH...`: run policy test suites (kind: PolicyTest).

Exit codes: 0 every case passes, 1 a case fails, 2 a suite or policy is invalid.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date

from webhook.actions.policy_test import SuiteError, load_suite, run_suite, suite_files
from webhook.cli.common import EXIT_DENIED, EXIT_OK
from webhook.cli.output import Paint, use_colour

NAME = "test"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="suite files or directories holding them")
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    parser.add_argument("--verbose", "-v", action="store_true", help="list passing cases too")


def run(args: argparse.Namespace) -> int:
    files = suite_files(args.paths)
    if not files:
        raise SuiteError(f"no PolicyTest suites found in {' '.join(args.paths)}")
    paint = Paint(use_colour(sys.stdout, args.color))

    passed = failed = 0
    for path in files:
        suite = load_suite(path, today=date.today())
        results = run_suite(suite)
        for result in results:
            if result.passed:
                passed += 1
                if args.verbose:
                    print(f"{paint('PASS', '32')}  {suite.source}: {result.case}")
            else:
                failed += 1
                print(f"{paint('FAIL', '1;31')}  {suite.source}: {result.case}")
                for line in result.failures:
                    print(f"      {line}")
    print(f"{passed + failed} cases: {passed} passed, {failed} failed")
    return EXIT_DENIED if failed else EXIT_OK
