"""`tenantguard audit`: which live pods break the policies, and which lack their defaults?

Reads the cluster once and judges every running or pending pod as it is, as ``/validate``
would judge it; what ``/mutate`` would still change is reported apart as drift
(webhook.actions.audit). Prints, summary first: pods per tenant (denied, drift, with Warn and
Audit findings) and in total; then one line per owner (a Deployment's 50 pods are one line,
split by distinct findings); then each group's findings and drift. ``-o json`` prints the same
as data. A progress bar goes to stderr while pods are judged, only when stderr is a terminal.

Exit codes: 0 nothing would be denied; 1 at least one pod would be, or a finding of an
enforcement named by ``--fail-on`` (warn, audit) exists; 2 bad policies or the cluster cannot
be read. Drift alone does not fail.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
from typing import TextIO

from webhook.actions.audit import Audited, Counts, Group, Owner, audit, groups, summary, tally
from webhook.cli.common import EXIT_DENIED, EXIT_OK, load_policy_set
from webhook.cli.dry_run import add_fail_on, fail_on_code
from webhook.cli.output import Paint, judged_of, json_text, plural, use_colour, write_policy_reports
from webhook.core.decision import Violation

NAME = "audit"
MARKS = {"Enforce": "x", "Warn": "!", "Audit": "~"}
SHOWN_NAMES = 3  # pod names listed per group in the details
SHOWN_SETS = 3  # groups of one owner described on its line (the details list them all)
DIGEST = 120  # characters of a finding on an owner's line (the details have it whole)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policies", "-p", action="append", required=True, metavar="PATH",
                        help="policy file or directory (repeatable)")
    parser.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig (default: $KUBECONFIG or ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser.add_argument("--in-cluster", action="store_true", help="use the pod's service account")
    parser.add_argument("--namespace", "-n", action="append", default=[], metavar="NS",
                        help="only pods of this namespace (repeatable; the whole cluster is still read for usage)")
    parser.add_argument("--output", "-o", choices=("table", "json", "policyreport"), default="table",
                        help="table (default), json, policyreport (one wgpolicyk8s.io/v1alpha2 PolicyReport per "
                             "namespace, as a YAML stream)")
    add_fail_on(parser)
    parser.add_argument("--all", action="store_true",
                        help="list the owners whose pods have no finding and no drift too (table)")
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto")


class ProgressBar:
    """``bar(done, total)``: ``judging pods [#####.....] 512/10000`` redrawn in place on ``stream``, at most
    once per percent; nothing at all unless ``stream`` is a terminal (never in CI logs or pipes)."""

    WIDTH = 30

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.enabled = shows_progress(stream)
        self._drawn = -1
        self._dirty = False

    def status(self, text: str) -> None:
        if self.enabled:
            self.stream.write(f"\r\033[K{text}")
            self.stream.flush()
            self._dirty = True

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        percent = done * 100 // total
        if percent == self._drawn and done != total:
            return
        self._drawn = percent
        filled = done * self.WIDTH // total
        self.status(f"judging pods [{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{total}")

    def clear(self) -> None:
        if self._dirty:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._dirty = False


def shows_progress(stream: TextIO) -> bool:
    """A terminal that draws (TERM is not ``dumb``), and not a CI job (``CI`` set: a job's log may be a pty)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb" and not os.environ.get("CI")


def _enforcement(v: Violation) -> str:
    return "" if v.enforcement == "Enforce" else f" ({v.enforcement})"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def describe(group: Group) -> str:
    """One group's reason, short: its first finding (and how many more), else its drift, else its verdict."""
    found = group.findings
    if found:
        head = _short(found[0].summary(), DIGEST) + _enforcement(found[0])
        more = len(found) - 1
        return head + (f" (and {more} more finding{'s' if more > 1 else ''})" if more else "")
    if group.drift:
        others = f" (and {len(group.drift) - 1} more)" if len(group.drift) > 1 else ""
        return f"lacks defaults: {group.drift[0].op} {group.drift[0].path}{others}"
    if group.skipped:
        return f"skipped: {group.skipped}"
    return "no findings"


def _lone(sets: list[Group]) -> bool:
    """A pod without an owner: its own group, said without counts."""
    return sets[0].owner.kind == "Pod" and len(sets) == 1 and len(sets[0].pods) == 1


def owner_line(sets: list[Group], paint: Paint) -> str:
    """``Deployment shop/web (50 pods): DENIED 40, drift 50 — 40 pods: ...; 10 pods: ...``; a pod without an
    owner: ``Pod shop/debug: DENIED, drift — ...``."""
    counts = Counts()
    for group in sets:
        for r in group.pods:
            counts.add(r)
    lone = _lone(sets)

    def said(word: str, n: int, code: str | None = None) -> list[str]:
        text = word if lone else f"{word} {n}"
        return [paint(text, code) if code else text] if n else []

    verdicts = [*said("DENIED", counts.denied, "1;31"), *said("allowed", counts.allowed - counts.skipped, "32"),
                *said("skipped", counts.skipped), *said("warned", counts.warned), *said("audited", counts.audited),
                *said("drift", counts.drift, "33")]
    if len(sets) == 1:
        reasons = describe(sets[0])
    else:
        reasons = "; ".join(f"{plural(len(g.pods), 'pod')}: {describe(g)}" for g in sets[:SHOWN_SETS])
        if len(sets) > SHOWN_SETS:
            rest = sets[SHOWN_SETS:]
            reasons += f"; {plural(sum(len(g.pods) for g in rest), 'pod')} more in {len(rest)} other groups"
    size = "" if lone else f" ({plural(counts.pods, 'pod')})"
    return f"{sets[0].owner}{size}: {', '.join(verdicts)} — {reasons}"


def _names(group: Group) -> str:
    names = [r.name for r in group.pods[:SHOWN_NAMES]]
    more = len(group.pods) - len(names)
    return ", ".join(names) + (f" and {more} more" if more else "")


def _details(group: Group, indent: str) -> list[str]:
    lines = [f"{indent}{MARKS.get(v.enforcement, 'x')} {v.summary()}{_enforcement(v)}" for v in group.findings]
    for op in group.drift:
        value = "" if op.op == "remove" else " " + json.dumps(op.value, separators=(",", ":"))[:100]
        lines.append(f"{indent}+ {op.op} {op.path}{value}  ({op.policy}/{op.rule})")
    return lines


def write_summary(results: list[Audited]) -> None:
    counts = tally(results)
    rows: list[tuple[str, ...]] = [("TENANT", "PODS", "ALLOWED", "DENIED", "DRIFT", "WARNED", "AUDITED")]

    def row(name: str, c: Counts) -> tuple[str, ...]:
        return (name, *(str(n) for n in (c.pods, c.allowed, c.denied, c.drift, c.warned, c.audited)))

    rows += [row(name, c) for name, c in counts.tenants.items()]
    if counts.no_tenant.pods:
        rows.append(row("(no tenant)", counts.no_tenant))
    rows.append(row("total", counts.totals))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join([r[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(r[1:], widths[1:])]))
    t = counts.totals
    print(f"\n{t.pods} live pods: {t.allowed} allowed, {t.denied} would be denied; "
          f"{t.drift} without the defaults /mutate would set (drift); "
          f"{t.warned} with Warn findings, {t.audited} with Audit findings")


def write_table(results: list[Audited], show_all: bool, colour: bool) -> None:
    paint = Paint(colour)
    write_summary(results)
    by_owner: dict[Owner, list[Group]] = {}
    for group in groups(results):
        by_owner.setdefault(group.owner, []).append(group)
    shown = [sets for sets in by_owner.values()
             if show_all or any(not g.allowed or g.findings or g.drift for g in sets)]
    if not shown:
        return
    print()
    for sets in shown:
        print(owner_line(sets, paint))
    for sets in shown:
        if not any(g.findings or g.drift for g in sets):
            continue
        owner = sets[0].owner
        if _lone(sets):
            print(f"\n{owner}:")
            print("\n".join(_details(sets[0], "  ")))
            continue
        if len(sets) == 1:
            print(f"\n{owner} ({plural(len(sets[0].pods), 'pod')}: {_names(sets[0])}):")
            print("\n".join(_details(sets[0], "  ")))
            continue
        print(f"\n{owner} ({plural(sum(len(g.pods) for g in sets), 'pod')}):")
        for group in sets:
            print(f"  {plural(len(group.pods), 'pod')} ({_names(group)}):")
            print("\n".join(_details(group, "    ") or ["    no findings, no drift"]))


def run(args: argparse.Namespace) -> int:
    from webhook.views.snapshot import connect, take_snapshot

    policies = load_policy_set(args.policies)
    bar = ProgressBar(sys.stderr)
    bar.status("reading the cluster ...")
    try:
        api = connect(kubeconfig=args.kubeconfig, context=args.context, in_cluster=args.in_cluster)
        try:
            snapshot = take_snapshot(api, owners=True)
        finally:
            api.close()
        results = audit(snapshot, policies, args.namespace, today=date.today(), progress=bar)
    finally:
        bar.clear()
    for note in snapshot.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.output == "json":
        doc = {"summary": summary(results), "groups": [g.as_json() for g in groups(results)],
               "results": [r.as_json() for r in results]}
        if snapshot.notes:
            doc["notes"] = list(snapshot.notes)
        sys.stdout.write(json_text(doc))
    elif args.output == "policyreport":
        write_policy_reports(judged_of(results), sys.stdout)
    else:
        write_table(results, args.all, use_colour(sys.stdout, args.color))
    code = EXIT_DENIED if any(not r.decision.allowed for r in results) else EXIT_OK
    return fail_on_code(args.fail_on, lambda mode: sum(r.count(mode) for r in results), code)
