"""The benchmark scripts still run: each one with tiny sizes, as a subprocess. Counts, never timings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def table_rows(output: str) -> dict[str, list[str]]:
    """A printed markdown table's rows by their first cell."""
    rows = {}
    for line in output.splitlines():
        if line.startswith("| ") and not line.startswith("|-"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows[cells[0]] = cells
    return rows


def test_report_scale_writes_nothing_for_an_unchanged_cluster() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "report_scale.py"), "--pods", "200",
                           "--namespaces", "5"], capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    rows = table_rows(done.stdout)
    writes = rows["run"].index("writes (c/r/d)")
    # 5 namespaces: shop-000, lab-001, shop-002, data-003 have findings, ops-004 is clean
    assert rows["1. first run"][writes] == "4 (4/0/0)"
    assert rows["2. nothing changed"][writes] == "0 (0/0/0)"
    assert rows["3. one failing pod deleted (shop-000)"][writes] == "1 (0/1/0)"
    assert rows["4d. include_clean on"][writes] == "1 (1/0/0)"
    assert "unchanged cluster: 0 writes to policyreports (4 reports unchanged)" in done.stdout
