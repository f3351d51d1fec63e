"""Layering rules: the core stays pure, and every package imports only the ones below it (pyproject.toml)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

FORBIDDEN_IN_CORE = {"aiohttp", "kubernetes", "kubernetes_asyncio", "yaml", "asyncio", "ssl", "os", "socket",
                     "subprocess", "pathlib", "webhook.policy", "webhook.inputs", "webhook.views", "webhook.actions",
                     "webhook.cli", "webhook.server"}


def test_import_linter_contract_holds() -> None:
    exe = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(exe)], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_core_modules_import_nothing_impure() -> None:
    offenders = []
    for path in sorted((ROOT / "webhook" / "core").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IN_CORE):
                    offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []


def test_importing_the_core_loads_no_server_or_client() -> None:
    code = ("import sys, webhook.core.engine, webhook.policy;"
            "bad=[m for m in ('aiohttp','kubernetes') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = next(line for line in ci.splitlines() if line.startswith("python3 -m venv"))
    assert command in readme and ".venv/bin/mypy" in command
