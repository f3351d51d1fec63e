"""PolicyReports (``wgpolicyk8s.io/v1alpha2``, what Kyverno writes and Policy Reporter reads) from decisions.

One report per namespace, never one per pod or per admission: what a report costs the
API server's storage is bounded by the number of namespaces times ``max_results``.

- one result per rule that judged an object (``pass``, ``fail``, ``warn``, ``error``: the
  rule's own status; rules that did not apply are left out), naming the object in
  ``resources``, the violations in ``message`` and, as string ``properties``, the tenant,
  the policy's enforcement and the containers and fields concerned;
- ``summary`` counts every result; ``results`` keeps at most ``max_results`` of them
  (and at most ``MAX_REPORT_BYTES`` of JSON), the worst first (fail and error, then warn, then pass), and the report's
  ``tenantguard.io/results-omitted`` annotation says how many were left out;
- ``scope`` names the object when the report is about exactly one;
- ``source: tenantguard``; timestamps are the caller's (the core has no clock).

Reports are plain dicts, valid against the upstream PolicyReport CRD (tests check).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from webhook.core.decision import Decision, Status, Violation

API_VERSION = "wgpolicyk8s.io/v1alpha2"
REPORT_NAME = "tenantguard"
SOURCE = "tenantguard"
MANAGED_BY = {"app.kubernetes.io/managed-by": "tenantguard"}
OMITTED = "tenantguard.io/results-omitted"
POLICY_SET = "tenantguard.io/policy-set"
STATUSES = ("pass", "fail", "warn", "error", "skip")
_RANK = {Status.FAIL: 0, Status.ERROR: 0, Status.WARN: 1, Status.PASS: 2, Status.SKIP: 3}
_SEVERITY = {"Enforce": "high", "Warn": "medium", "Audit": "medium"}
_CATEGORY = {"podSecurity": "Pod Security", "quota": "Quota", "networkIsolation": "Network isolation"}
MESSAGE_LIMIT = 1024  # characters of one result's message (and of each property)
# a report's results stop before this many bytes of JSON (etcd refuses requests over 1.5 MiB by default)
MAX_REPORT_BYTES = 1_000_000


@dataclass(frozen=True, slots=True)
class Judged:
    """One object and what the engine decided about it."""

    obj: Mapping[str, Any]  # the object as judged (its metadata names it)
    namespace: str
    decision: Decision


def subject(obj: Mapping[str, Any], namespace: str) -> dict[str, str]:
    """The object as an ObjectReference (apiVersion, kind, name, namespace, uid when it has one)."""
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    ref = {"apiVersion": str(obj.get("apiVersion") or ""), "kind": str(obj.get("kind") or ""),
           "name": str(meta.get("name") or meta.get("generateName") or ""), "namespace": namespace}
    if meta.get("uid"):
        ref["uid"] = str(meta["uid"])
    return {k: v for k, v in ref.items() if v}


def _message(status: Status, found: list[Violation], policy: str, rule: str, shared_with: str = "") -> str:
    if found:
        text = "; ".join(v.message for v in found)
        if shared_with:
            text += f" (the same findings as {shared_with})"
    elif status is Status.PASS:
        text = f"{policy}/{rule}: passed"
    else:
        text = f"{policy}/{rule}: {status.value}"
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT - 1] + "…"


def results_for(judged: Judged, *, seconds: int) -> list[dict[str, Any]]:
    """The report results of one judged object: one per rule that judged it."""
    decision = judged.decision
    if decision.skipped:
        return []
    findings: dict[tuple[str, str], list[Violation]] = {}
    for v in (*decision.violations, *decision.warned, *decision.audit):
        findings.setdefault((v.policy, v.rule), []).append(v)
    ref = subject(judged.obj, judged.namespace)
    out = []
    for result in decision.results:
        if result.status is Status.SKIP:
            continue
        found = findings.get((result.policy, result.rule), [])
        shared_with = ""
        if not found and result.status in (Status.FAIL, Status.WARN):
            # a tenant rule tightening a cluster rule found the same as the cluster's (said once, under it)
            found = [v for (policy, rule), vs in findings.items() if rule == result.rule for v in vs]
            shared_with = ", ".join(dict.fromkeys(f"{v.policy}/{v.rule}" for v in found))
        enforcement = found[0].enforcement if found else ""
        props = {"tenant": decision.tenant or ""}
        if enforcement:
            props["enforcement"] = enforcement
        containers = sorted({v.container for v in found if v.container})
        if containers:
            props["containers"] = ",".join(containers)[:MESSAGE_LIMIT]
        fields = list(dict.fromkeys(v.field for v in found if v.field))
        if fields:
            props["fields"] = ",".join(fields)[:MESSAGE_LIMIT]
        entry: dict[str, Any] = {
            "policy": result.policy,
            "rule": result.rule,
            "result": result.status.value,
            "message": _message(result.status, found, result.policy, result.rule, shared_with),
            "resources": [ref],
            "properties": {k: v for k, v in props.items() if v},
            "scored": True,
            "source": SOURCE,
            "category": _CATEGORY.get(result.rule, "Tenant policy"),
            "timestamp": {"seconds": int(seconds), "nanos": 0},
        }
        if result.status in (Status.FAIL, Status.WARN, Status.ERROR) and enforcement in _SEVERITY:
            entry["severity"] = _SEVERITY[enforcement]
        out.append(entry)
    return out


def _sort_key(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    ref = entry["resources"][0]
    return (_RANK[Status(entry["result"])], entry["policy"], entry["rule"], ref.get("kind", ""), ref.get("name", ""))


def clean(summary: Mapping[str, int]) -> bool:
    """Nothing failed, warned or errored."""
    return not (summary.get("fail") or summary.get("warn") or summary.get("error"))


def build_reports(judged: Iterable[Judged], *, seconds: int, max_results: int | None = None,
                  include_clean: bool = True, policy_set: str | None = None,
                  namespaces: Iterable[str] = (), max_bytes: int | None = MAX_REPORT_BYTES) -> list[dict[str, Any]]:
    """One PolicyReport per namespace of ``judged`` (sorted by namespace).

    ``max_results`` caps each report's ``results`` (the summary still counts all), and so does
    ``max_bytes``, the JSON size of the results kept (whichever cuts first); with
    ``include_clean=False`` a namespace whose results all passed gets no report.
    ``namespaces`` adds namespaces that had nothing to judge (an empty report each, when
    clean ones are included). Memory stays bounded by namespaces times ``max_results``
    however many objects are judged: each namespace keeps only its worst results so far.
    """
    buckets: dict[str, _Bucket] = {ns: _Bucket() for ns in namespaces}
    for item in judged:
        if not item.namespace:  # a cluster-scoped object: no namespaced report holds it
            continue
        bucket = buckets.get(item.namespace)
        if bucket is None:
            bucket = buckets[item.namespace] = _Bucket()
        bucket.add(results_for(item, seconds=seconds), subject(item.obj, item.namespace), max_results)
    reports = []
    for namespace in sorted(buckets):
        bucket = buckets[namespace]
        if not include_clean and clean(bucket.summary):
            continue
        kept = _within(bucket.worst(max_results), max_bytes)
        total = sum(bucket.summary.values())
        report = report_object(namespace, kept, bucket.summary, omitted=total - len(kept), policy_set=policy_set)
        if bucket.subjects == 1 and bucket.only is not None:
            report["scope"] = bucket.only
        reports.append(report)
    return reports


def _within(results: list[dict[str, Any]], max_bytes: int | None) -> list[dict[str, Any]]:
    """The first of ``results`` whose JSON fits in ``max_bytes``."""
    if max_bytes is None:
        return results
    used = 0
    for n, entry in enumerate(results):
        used += len(json.dumps(entry, separators=(",", ":"), ensure_ascii=False).encode()) + 1
        if used > max_bytes:
            return results[:n]
    return results


class _Bucket:
    """One namespace's results while they are gathered: the summary, and the worst ``max_results`` so far."""

    __slots__ = ("kept", "only", "subjects", "summary")

    def __init__(self) -> None:
        self.summary = dict.fromkeys(STATUSES, 0)
        self.kept: list[dict[str, Any]] = []
        self.subjects = 0
        self.only: dict[str, str] | None = None

    def add(self, entries: list[dict[str, Any]], ref: dict[str, str], max_results: int | None) -> None:
        if ref != self.only:
            self.subjects += 1
            self.only = ref
        for entry in entries:
            self.summary[entry["result"]] += 1
        self.kept.extend(entries)
        if max_results is not None and len(self.kept) > 2 * max_results + 64:
            self.kept.sort(key=_sort_key)
            del self.kept[max_results:]

    def worst(self, max_results: int | None) -> list[dict[str, Any]]:
        self.kept.sort(key=_sort_key)
        return self.kept if max_results is None else self.kept[:max_results]


def report_object(namespace: str, results: list[dict[str, Any]], summary: Mapping[str, int], *, omitted: int = 0,
                  policy_set: str | None = None) -> dict[str, Any]:
    annotations = {}
    if omitted:
        annotations[OMITTED] = str(omitted)
    if policy_set:
        annotations[POLICY_SET] = policy_set
    meta: dict[str, Any] = {"name": REPORT_NAME, "namespace": namespace, "labels": dict(MANAGED_BY)}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": API_VERSION, "kind": "PolicyReport", "metadata": meta,
            "summary": dict(summary), "results": results}


def without_timestamps(report: Mapping[str, Any]) -> dict[str, Any]:
    """A report's content with its results' timestamps left out: what "changed" compares. Of the labels and
    annotations only ours count (another tool's label on a report is no reason to rewrite it)."""
    results = [{k: v for k, v in r.items() if k != "timestamp"} for r in report.get("results") or ()]
    meta = report.get("metadata") or {}
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k in MANAGED_BY}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k in (OMITTED, POLICY_SET)}
    return {"scope": report.get("scope"), "summary": report.get("summary"), "results": results,
            "labels": labels, "annotations": annotations}
