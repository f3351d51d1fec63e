"""Shared fixtures: repository paths, running the CLI in-process, golden suites."""

from __future__ import annotations

import io
import json
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
EXAMPLES = ROOT / "examples"
GOLDEN = Path(__file__).resolve().parent / "golden"
FIXTURES = ROOT.parent / "shared" / "fixtures" / "admissionreviews"
LOCAL_FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture_review(size: str) -> dict[str, Any]:
    """The shared AdmissionReview fixtures (small, medium, large), from ../shared or our copy."""
    for base in (FIXTURES, LOCAL_FIXTURES / "admissionreviews"):
        path = base / f"{size}.json"
        if path.exists():
            return json.loads(path.read_text())
    raise FileNotFoundError(f"{size}.json")


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run_cli(*args: str, stdin: str | None = None) -> CliResult:
    """Run `tenantguard ARGS` in-process (same code path as the console script)."""
    from webhook.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:
                code = int(exc.code or 0)
    finally:
        sys.stdin = old_stdin
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli():
    return run_cli


def golden_suites() -> list[Path]:
    return sorted(GOLDEN.rglob("*.yaml"))


def golden_case_params() -> list[Any]:
    """One pytest param (suite path, case index) per golden case, named suite::case."""
    from webhook.actions.policy_test import load_suite

    return [
        pytest.param(path, index, id=f"{path.relative_to(path.parents[1])}::{case.name}")
        for path in golden_suites()
        for index, case in enumerate(load_suite(path).cases)
    ]


@pytest.fixture(scope="module")
def suites():
    """Every golden suite, loaded once per test module."""
    from webhook.actions.policy_test import load_suite

    return {path: load_suite(path) for path in golden_suites()}
