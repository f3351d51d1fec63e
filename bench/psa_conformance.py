"""Agreement of our Pod Security engine with a PodSecurity conformance corpus.

Reads a directory laid out like k8s.io/pod-security-admission's ``test/testdata``::

    ROOT/{baseline,restricted}/v1.N/{pass,fail}/<checkid-lowercase><i>.yaml

and evaluates every pod at that level and version. A ``pass`` fixture agrees
when no check fails; a ``fail`` fixture agrees when the pod is forbidden, and
its check is *named* when the failing checks include the check its file name
names (``runasnonroot0.yaml`` -> ``runAsNonRoot``), or the check that overrides
it at that level/version (``hostpathvolumes0`` under restricted fails as
``restrictedVolumes``). Fixtures whose name is no current check id (renamed or
never-merged checks) are counted apart, not judged.

    .venv/bin/python bench/psa_conformance.py /tmp/psa-corpus [-v]

Without ROOT, the corpus is first generated (into a temporary directory, or into
``--write DIR``) from our transcription of upstream's fixture generators,
``tests/data/pod_security/fixtures.yaml`` (see ``tests/data/pod_security/corpus.py``)::

    .venv/bin/python bench/psa_conformance.py [-v] [--write DIR]

Exit status 0 when every judged fixture agrees and every failure names its check.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml  # type: ignore[import-untyped]

from webhook.core.pod_security import CHECKS, evaluate
from webhook.core.pod_security._api import parse_version
from webhook.core.pod_security.registry import effective_minor, plan

_BY_LOWER = {c.id.lower(): c.id for c in CHECKS}
_BASE = re.compile(r"base(_linux|_windows)?")
_NAME = re.compile(r"(.+?)(\d+)")


def check_of(stem: str) -> str | None:
    """The check id a fixture file names; ``"base"`` for the minimal valid pods; None if unknown."""
    if _BASE.fullmatch(stem):
        return "base"
    match = _NAME.fullmatch(stem)
    if match is None:
        return None
    return _BY_LOWER.get(match.group(1))


def overriders(level: str, minor: int, check_id: str) -> set[str]:
    """Restricted checks that replace ``check_id`` at this level and version."""
    if level != "restricted":
        return set()
    active = {cid for cid, _ in plan(level, minor)}
    out = set()
    for check in CHECKS:
        revision = check.revision_at(effective_minor(minor))
        if check.id in active and revision is not None and check_id in revision.overrides:
            out.add(check.id)
    return out


CORPUS_PY = Path(__file__).resolve().parent.parent / "tests" / "data" / "pod_security" / "corpus.py"


def corpus_module() -> ModuleType:
    """``tests/data/pod_security/corpus.py``, loaded by path (tests/ is not an installed package)."""
    name = "tenantguard_psa_corpus"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, CORPUS_PY)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    return doc if isinstance(doc, dict) else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path, nargs="?", help="a testdata tree; default: generate ours")
    parser.add_argument("--write", type=Path, help="where to generate the corpus (default: a temporary directory)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every disagreement")
    args = parser.parse_args(argv)
    if args.root is not None:
        return judge(args.root, args.verbose)
    if args.write is not None:
        count = corpus_module().Corpus().write(args.write)
        print(f"generated {count} fixtures under {args.write}")
        return judge(args.write, args.verbose)
    with tempfile.TemporaryDirectory(prefix="psa-corpus-") as tmp:
        count = corpus_module().Corpus().write(Path(tmp))
        print(f"generated {count} fixtures from tests/data/pod_security/fixtures.yaml")
        return judge(Path(tmp), args.verbose)


def judge(root: Path, verbose: bool) -> int:
    """Evaluate every fixture under ``root``; print the per-version and per-check tables."""

    stats: dict[tuple[str, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    unknown: dict[str, int] = defaultdict(int)
    problems: list[str] = []
    per_check: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for path in sorted(root.glob("*/v1.*/*/*.yaml")):
        level, version, kind = path.parts[-4], path.parts[-3], path.parts[-2]
        if level not in ("baseline", "restricted") or kind not in ("pass", "fail"):
            continue
        check = check_of(path.stem)
        if check is None:
            unknown[path.stem.rstrip("0123456789")] += 1
            continue
        pod = load(path)
        failures = evaluate(level, version, pod.get("metadata") or {}, pod.get("spec") or {})
        minor = parse_version(version)
        row = stats[(level, minor)]
        row[kind] += 1
        per_check[(check, level)][kind] += 1
        rel = path.relative_to(root)
        if kind == "pass":
            if not failures:
                row["pass_ok"] += 1
            else:
                problems.append(f"{rel}: expected allowed, got " + "; ".join(f"{f.check}: {f.message}" for f in failures))
            continue
        if not failures:
            problems.append(f"{rel}: expected forbidden, got allowed")
            continue
        row["fail_ok"] += 1
        failed = {f.check for f in failures}
        if check in failed or failed & overriders(level, minor, check):
            row["named"] += 1
        else:
            problems.append(f"{rel}: forbidden, but not by {check}: " + "; ".join(f"{f.check}: {f.message}" for f in failures))

    total: dict[str, int] = defaultdict(int)
    print(f"{'level':<11} {'version':<8} {'pass':>9} {'fail':>9} {'named':>9}")
    for (level, minor), row in sorted(stats.items()):
        print(f"{level:<11} v1.{minor:<6} {row['pass_ok']:>4}/{row['pass']:<4} {row['fail_ok']:>4}/{row['fail']:<4} "
              f"{row['named']:>4}/{row['fail']:<4}")
        for key in ("pass", "pass_ok", "fail", "fail_ok", "named"):
            total[key] += row[key]
    judged = total["pass"] + total["fail"]
    agreed = total["pass_ok"] + total["fail_ok"]
    print(f"\nfixtures judged: {judged}; verdicts agree: {agreed}/{judged}"
          f" ({100.0 * agreed / judged if judged else 100:.2f}%); failures naming their check: "
          f"{total['named']}/{total['fail']}")
    if unknown:
        print("not judged (no such check id today): " + ", ".join(f"{k}={v}" for k, v in sorted(unknown.items())))
    print(f"\n{'check':<28} {'baseline pass/fail':>19} {'restricted pass/fail':>21}")
    for check in sorted({c for c, _ in per_check}):
        b, r = per_check[(check, "baseline")], per_check[(check, "restricted")]
        print(f"{check:<28} {b['pass']:>9}/{b['fail']:<9} {r['pass']:>10}/{r['fail']:<10}")
    if problems:
        print(f"\n{len(problems)} disagreement(s)" + (":" if verbose else " (-v to list)"))
        if verbose:
            for line in problems:
                print("  " + line)
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
