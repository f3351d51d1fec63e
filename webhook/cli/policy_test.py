"""`tenantguard test PATH...`: run policy test suites (kind: PolicyTest).

Prints a table (default) or one JSON document (``-o json``) on stdout and, with
``--junit FILE``, writes a JUnit XML report as CI systems read it (GitLab, Jenkins, ...).
An invalid suite is reported with its errors and the other suites still run.

Exit codes: 0 every case passes; 1 a case fails; 2 a suite (or a policy it names) is
invalid, even when every case passed, or ``--run`` selects no case.
"""

from __future__ import annotations

import argparse
import re
import sys
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

from webhook.actions.policy_test import Report, SuiteError, run_suites, suite_files
from webhook.cli.common import EXIT_DENIED, EXIT_ERROR, EXIT_OK, UsageError
from webhook.cli.output import Paint, json_text, use_colour

NAME = "test"
FORMATS = ("table", "json")
INDENT = "      "

# XML 1.0 cannot hold these characters, even escaped: a report must still parse when a message has one
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="suite files or directories holding them")
    parser.add_argument("--output", "-o", choices=FORMATS, default="table",
                        help="table (default) or json (one document: suites, cases, decisions, summary)")
    parser.add_argument("--junit", metavar="FILE",
                        help="also write a JUnit XML report to FILE (a testsuite per suite file, a testcase per case)")
    parser.add_argument("--run", metavar="REGEX",
                        help="only the cases whose name, or SUITE::CASE, matches REGEX (re.search); "
                             "exit 2 when none does")
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    parser.add_argument("--verbose", "-v", action="store_true", help="list passing cases too")


def run(args: argparse.Namespace) -> int:
    select = _pattern(args.run)
    files = suite_files(args.paths)
    if not files:
        raise SuiteError(f"no PolicyTest suites found in {' '.join(args.paths)}")
    report = run_suites(files, today=date.today(), select=select)
    if args.junit:
        write_junit(report, args.junit)
    if args.output == "json":
        sys.stdout.write(json_text(report.as_json()))
    else:
        write_table(report, Paint(use_colour(sys.stdout, args.color)), verbose=args.verbose, run=args.run)
    if select is not None and not report.selected:
        print(f"tenantguard: no case matches --run {args.run} ({report.deselected} cases left out)",
              file=sys.stderr)
        return EXIT_ERROR
    if report.errors:
        return EXIT_ERROR
    return EXIT_DENIED if report.failed else EXIT_OK


def _pattern(text: str | None) -> re.Pattern[str] | None:
    if text is None:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        raise UsageError(f"--run: invalid regular expression {text}: {exc}") from None


# --- table -------------------------------------------------------------------------------------

def _diff_colour(line: str) -> str | None:
    if line.startswith(("--- ", "+++ ")):
        return "1"
    if line.startswith("-"):
        return "31"
    if line.startswith("+"):
        return "32"
    if line.startswith("@@"):
        return "36"
    return None


def write_table(report: Report, paint: Paint, *, verbose: bool = False, run: str | None = None) -> None:
    """FAIL (and with ``verbose`` PASS) per case, INVALID per invalid suite, each followed by why; a summary."""
    for suite in report.suites:
        if suite.invalid:
            print(f"{paint('INVALID', '1;31')}  {suite.source}")
            for line in suite.error:
                print(f"{INDENT}{line}")
            continue
        for result in suite.results:
            if result.passed:
                if verbose:
                    print(f"{paint('PASS', '32')}  {suite.source}: {result.case}")
                continue
            print(f"{paint('FAIL', '1;31')}  {suite.source}: {result.case}")
            for mismatch in result.mismatches:
                for line in mismatch.problems:
                    print(f"{INDENT}{line}")
                for line in mismatch.diff():
                    colour = _diff_colour(line)
                    print(f"{INDENT}  {paint(line, colour) if colour else line}")
    cases = report.passed + report.failed
    if run is not None:
        print(f"--run {run}: {report.selected} of {report.selected + report.deselected} cases selected")
    line = f"{cases} cases: {report.passed} passed, {report.failed} failed"
    invalid = [s.source for s in report.suites if s.invalid]
    if invalid:
        line += f"; {len(invalid)} invalid {'suite' if len(invalid) == 1 else 'suites'}: {', '.join(invalid)}"
    print(line)


# --- JUnit XML ---------------------------------------------------------------------------------

def _xml_text(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def junit(report: Report) -> ET.Element:
    """The report as JUnit XML: ``testsuites`` > a ``testsuite`` per suite file > a ``testcase`` per case.

    A failed case holds one ``failure`` (its problems and YAML diffs); an invalid suite is one
    ``testcase`` named after its file holding an ``error`` (its errors, one per line), so readers
    that only look at test cases (GitLab) show it too.
    """
    root = ET.Element("testsuites", name="tenantguard test")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    total_time = 0.0
    for suite in report.suites:
        failures = sum(1 for r in suite.results if not r.passed)
        tests = len(suite.results) if not suite.invalid else 1
        errors = 1 if suite.invalid else 0
        element = ET.SubElement(root, "testsuite", name=_xml_text(suite.name), tests=str(tests),
                                failures=str(failures), errors=str(errors), skipped="0",
                                time=_seconds(suite.seconds), file=_xml_text(suite.source))
        if suite.invalid:
            case = ET.SubElement(element, "testcase", classname=_xml_text(suite.name), name=_xml_text(suite.source),
                                 time=_seconds(suite.seconds), file=_xml_text(suite.source))
            error = ET.SubElement(case, "error", type="InvalidSuite",
                                  message=_xml_text(f"invalid suite: {suite.error[0]}"))
            error.text = _xml_text("\n".join(suite.error))
        for result in suite.results:
            case = ET.SubElement(element, "testcase", classname=_xml_text(suite.name), name=_xml_text(result.case),
                                 time=_seconds(result.seconds), file=_xml_text(suite.source))
            if not result.passed:
                failure = ET.SubElement(
                    case, "failure", type="Mismatch",
                    message=_xml_text("; ".join(p for m in result.mismatches for p in m.problems)))
                failure.text = _xml_text("\n\n".join(result.failures))
        totals["tests"] += tests
        totals["failures"] += failures
        totals["errors"] += errors
        total_time += suite.seconds
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", _seconds(total_time))
    return root


def write_junit(report: Report, path: str) -> None:
    tree = ET.ElementTree(junit(report))
    ET.indent(tree)
    try:
        target = Path(path)
        if target.parent != Path("."):
            target.parent.mkdir(parents=True, exist_ok=True)
        tree.write(target, encoding="utf-8", xml_declaration=True)
    except OSError as exc:
        raise UsageError(f"--junit {path}: cannot write: {exc}") from None
