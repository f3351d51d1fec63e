"""`tenantguard audit` over ~2,000 pods in 40 namespaces: read by owner, summary first.

The test API server (tests/kube_api.py) also serves ReplicaSets and Jobs here
(:func:`serve_workloads`), so the audit follows each pod's owner chain: Pod ->
ReplicaSet -> Deployment, Pod -> Job -> CronJob. The cluster (:func:`populate`, also
used by bench/audit_scale.py) is built so that every count below is known:

=====================  =====  ======================================================
owner                  pods   what
=====================  =====  ======================================================
Deployment NS/app      45     per namespace (40): compliant
Deployment shop-00/web 40+10  two ReplicaSets: 40 pods without limits (denied), 10 with
Deployment shop-01/api 50     without limits nor the tenant label: denied and drift
Deployment lab-00/tr.. 40     without limits, under a Warn policy: warned
Deployment misc-01/b.. 20     without requests, under the Audit cluster policy: audited
CronJob misc-00/nightly 5+5   two Jobs: compliant
StatefulSet shop-02/db 3      without limits: denied
ReplicaSet shop-03/c.. 10     a ReplicaSet nobody owns: compliant
Pod shop-04/debug      1      no owner, without limits: denied
Pod misc-02/tool       1      no owner: compliant
(Pod shop-05/done)     -      Succeeded: not audited
=====================  =====  ======================================================
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.kube_api import KubeAPI
from webhook.cli.audit import ProgressBar

POLICIES = """\
apiVersion: tenantguard.io/v1alpha1
kind: TenantPolicy
metadata: {name: shop}
spec:
  namespaces: ["shop-*"]
  enforcement: Enforce
  defaults:
    labels: {tenant: shop}
  rules:
    requireLimits: [cpu, memory]
---
apiVersion: tenantguard.io/v1alpha1
kind: TenantPolicy
metadata: {name: lab}
spec:
  namespaces: ["lab-*"]
  enforcement: Warn
  rules:
    requireLimits: [cpu, memory]
---
apiVersion: tenantguard.io/v1alpha1
kind: ClusterPolicy
metadata: {name: baseline}
spec:
  enforcement: Audit
  rules:
    requireRequests: [cpu, memory]
"""

def serve_workloads(kube: KubeAPI) -> None:
    """Make ``kube`` serve ReplicaSets (apps/v1) and Jobs (batch/v1) too, as plain collections (lists, no
    controllers): declared as it declares custom resources, without a schema."""
    for group, plural, kind in (("apps", "replicasets", "ReplicaSet"), ("batch", "jobs", "Job")):
        kube.install_crd({"spec": {"group": group, "scope": "Namespaced", "names": {"plural": plural, "kind": kind},
                                   "versions": [{"name": "v1", "storage": True, "served": True}]}})


def ref(kind: str, name: str, api_version: str = "apps/v1") -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": f"uid-{kind}-{name}",
            "controller": True, "blockOwnerDeletion": True}


def pod(ns: str, name: str, *, owner: dict[str, Any] | None = None, limits: bool = True, requests: bool = True,
        tenant_label: bool = True, labels: dict[str, str] | None = None, phase: str = "Running") -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if requests:
        resources["requests"] = {"cpu": "100m", "memory": "128Mi"}
    if limits:
        resources["limits"] = {"cpu": "100m", "memory": "128Mi"}
    meta: dict[str, Any] = {"name": name, "namespace": ns, "labels": dict(labels or {})}
    if tenant_label and ns.startswith("shop-"):
        meta["labels"]["tenant"] = "shop"
    if owner is not None:
        meta["ownerReferences"] = [owner]
    container = {"name": "c", "image": "i", "resources": resources}
    return {"kind": "Pod", "metadata": meta, "spec": {"containers": [container]}, "status": {"phase": phase}}


def namespaces(count: int) -> list[str]:
    """Half shop-NN (tenant shop, Enforce), a quarter lab-NN (tenant lab, Warn), a quarter misc-NN (no tenant)."""
    quarter = count // 4
    return ([f"shop-{i:02}" for i in range(count - 2 * quarter)] + [f"lab-{i:02}" for i in range(quarter)]
            + [f"misc-{i:02}" for i in range(quarter)])


def deployment(ns: str, name: str, pods: int, *, hash_: str = "5d8f7c9b4", start: int = 0,
               with_deployment: bool = True, **pod_args: Any) -> list[dict[str, Any]]:
    """A ReplicaSet ``name-hash_`` (owned by Deployment ``name`` unless ``with_deployment`` is False) and its pods,
    named like the controllers name them."""
    rs_name = f"{name}-{hash_}"
    rs_meta: dict[str, Any] = {"name": rs_name, "namespace": ns}
    if with_deployment:
        rs_meta["ownerReferences"] = [ref("Deployment", name)]
    rs = {"kind": "ReplicaSet", "metadata": rs_meta, "spec": {"replicas": pods}}
    return [rs] + [pod(ns, f"{rs_name}-{i:05}", owner=ref("ReplicaSet", rs_name), labels={"pod-template-hash": hash_},
                       **pod_args) for i in range(start, start + pods)]


def cron_job(ns: str, name: str, runs: list[int], pods: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for run in runs:
        job = f"{name}-{run}"
        out.append({"kind": "Job", "metadata": {"name": job, "namespace": ns,
                                                "ownerReferences": [ref("CronJob", name, "batch/v1")]}})
        out += [pod(ns, f"{job}-{i}", owner=ref("Job", job, "batch/v1")) for i in range(pods)]
    return out


def populate(kube: KubeAPI, *, namespace_count: int = 40, per_namespace: int = 45) -> int:
    """The cluster of the module docstring (``per_namespace`` compliant pods of Deployment ``app`` in each
    namespace); returns how many live pods it holds."""
    objects: list[dict[str, Any]] = []
    names = namespaces(namespace_count)
    for ns in names:
        objects.append({"kind": "Namespace", "metadata": {"name": ns}})
        objects += deployment(ns, "app", per_namespace, hash_="6b7c8d9f5")
    objects += deployment("shop-00", "web", 40, hash_="7d4b9c6f8", limits=False)
    objects += deployment("shop-00", "web", 10, hash_="6c5f8b7d9")  # the previous ReplicaSet, still running
    objects += deployment("shop-01", "api", 50, hash_="58f9d6c7b", limits=False, tenant_label=False)
    objects += deployment("lab-00", "train", 40, hash_="9f8e7d6c5", limits=False)
    objects += deployment("misc-01", "batch", 20, hash_="77c5b8d9f", requests=False, limits=False)
    objects += cron_job("misc-00", "nightly", [28000, 28001], 5)
    objects += [pod("shop-02", f"db-{i}", owner=ref("StatefulSet", "db"), limits=False) for i in range(3)]
    objects += deployment("shop-03", "cache", 10, hash_="4f6d8b9c7", with_deployment=False)
    objects += [pod("shop-04", "debug", limits=False), pod("misc-02", "tool"),
                pod("shop-05", "done", limits=False, phase="Succeeded")]
    kube.create_many(objects)
    return sum(1 for o in objects if o["kind"] == "Pod" and o["status"]["phase"] != "Succeeded")


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One cluster, audited three ways (table, table --all, json): each CLI run judges every pod."""
    tmp = tmp_path_factory.mktemp("audit-scale")
    (tmp / "policies.yaml").write_text(POLICIES)

    async def run_all() -> dict[str, Any]:
        async with KubeAPI() as kube:
            serve_workloads(kube)
            live = populate(kube)
            config = tmp / "kubeconfig"
            config.write_text(kube.kubeconfig())
            base = ("audit", "--policies", str(tmp / "policies.yaml"), "--kubeconfig", str(config),
                    "--color", "never")
            runs: dict[str, Any] = {"live": live}
            for run, extra in (("table", ()), ("all", ("--all",)), ("json", ("--output", "json")),
                               ("fail-on-warn", ("-n", "lab-00", "--fail-on", "warn")),
                               ("fail-on-warn-only-audit", ("-n", "misc-01", "--fail-on", "warn")),
                               ("fail-on-audit", ("-n", "misc-01", "--fail-on", "warn,audit"))):
                runs[run] = await asyncio.to_thread(run_cli, *base, *extra)  # one at a time: stdout is global
            return runs

    yield asyncio.run(run_all())


def test_the_cluster_is_the_size_the_test_says(audited) -> None:
    assert audited["live"] == 1985
    assert len(audited["json"].json()["results"]) == 1985


def test_summary_first_per_tenant_then_totals(audited) -> None:
    result = audited["table"]
    assert result.code == 1, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["TENANT", "PODS", "ALLOWED", "DENIED", "DRIFT", "WARNED", "AUDITED"]
    rows = {line.rsplit(None, 6)[0]: [int(n) for n in line.split()[-6:]] for line in lines[1:5]}
    assert rows == {"lab": [490, 490, 0, 0, 40, 0],
                    "shop": [1014, 920, 94, 50, 0, 0],
                    "(no tenant)": [481, 481, 0, 0, 0, 20],
                    "total": [1985, 1891, 94, 50, 40, 20]}
    assert "1985 live pods: 1891 allowed, 94 would be denied; 50 without the defaults /mutate would set (drift)" \
        in result.out


def test_one_line_per_owner(audited) -> None:
    out = audited["table"].out
    owner_lines = [line for line in out.splitlines() if " — " in line]
    by_owner = {line.split(":")[0]: line for line in owner_lines}
    assert len(by_owner) == len(owner_lines), "an owner has two lines"
    # denied owners first, then the others, each by namespace, kind and name
    assert list(by_owner) == ["Deployment shop-00/web (50 pods)", "Deployment shop-01/api (50 pods)",
                              "StatefulSet shop-02/db (3 pods)", "Pod shop-04/debug",
                              "Deployment lab-00/train (40 pods)", "Deployment misc-01/batch (20 pods)"]
    # two ReplicaSets of one Deployment, pods split by their distinct findings
    web = by_owner["Deployment shop-00/web (50 pods)"]
    assert web.startswith("Deployment shop-00/web (50 pods): DENIED 40, allowed 10 — "
                          "40 pods: [shop/requireLimits] ")
    assert web.endswith("; 10 pods: no findings")
    assert by_owner["Deployment shop-01/api (50 pods)"].startswith(
        "Deployment shop-01/api (50 pods): DENIED 50, drift 50 — [shop/requireLimits] ")
    assert "(and 1 more finding)" in by_owner["Deployment shop-01/api (50 pods)"]  # cpu and memory
    assert by_owner["StatefulSet shop-02/db (3 pods)"].startswith("StatefulSet shop-02/db (3 pods): DENIED 3 — ")
    assert by_owner["Pod shop-04/debug"].startswith("Pod shop-04/debug: DENIED — [shop/requireLimits] ")
    assert by_owner["Deployment lab-00/train (40 pods)"].startswith(
        "Deployment lab-00/train (40 pods): allowed 40, warned 40 — [lab/requireLimits] ")
    assert "(Warn)" in by_owner["Deployment lab-00/train (40 pods)"]
    assert by_owner["Deployment misc-01/batch (20 pods)"].startswith(
        "Deployment misc-01/batch (20 pods): allowed 20, audited 20 — [baseline/requireRequests] ")
    # the details: once per group, pod names abbreviated, drift with its provenance
    assert out.count("\nDeployment shop-01/api (50 pods: api-58f9d6c7b-00000, api-58f9d6c7b-00001, "
                     "api-58f9d6c7b-00002 and 47 more):\n") == 1
    assert '  + add /metadata/labels/tenant "shop"  (shop/defaults.labels)' in out
    assert "done" not in out  # a Succeeded pod is not audited


def test_all_lists_the_clean_owners_too(audited) -> None:
    out = audited["all"].out
    owner_lines = [line for line in out.splitlines() if " — " in line]
    assert len(owner_lines) == 6 + 40 + 3  # + every namespace's app, the CronJob, the ReplicaSet, misc-02/tool
    assert "Deployment misc-09/app (45 pods): allowed 45 — no findings" in owner_lines
    assert "CronJob misc-00/nightly (10 pods): allowed 10 — no findings" in owner_lines
    assert "ReplicaSet shop-03/cache-4f6d8b9c7 (10 pods): allowed 10 — no findings" in owner_lines
    assert "Pod misc-02/tool: allowed — no findings" in owner_lines


def test_json_summary_groups_and_results(audited) -> None:
    result = audited["json"]
    assert result.code == 1
    doc = result.json()
    assert list(doc) == ["summary", "groups", "results"]
    summary = doc["summary"]
    assert (summary["allowed"], summary["denied"], summary["drift"]) == (1891, 94, 50)
    assert summary["tenants"]["shop"] == {"pods": 1014, "allowed": 920, "denied": 94, "skipped": 0, "drift": 50,
                                          "warned": 0, "audited": 0,
                                          "findings": {"Enforce": 188, "Warn": 0, "Audit": 0}}
    assert summary["tenants"]["lab"]["findings"] == {"Enforce": 0, "Warn": 80, "Audit": 0}
    assert summary["noTenant"]["audited"] == 20 and summary["noTenant"]["findings"]["Audit"] == 40
    assert summary["totals"]["pods"] == 1985 == sum(g["pods"] for g in doc["groups"])

    groups = doc["groups"]
    web = [g for g in groups if g["owner"] == {"kind": "Deployment", "namespace": "shop-00", "name": "web"}]
    assert [(g["pods"], g["allowed"], g["denied"]) for g in web] == [(40, 0, 40), (10, 10, 0)]
    assert {f["rule"] for f in web[0]["findings"]} == {"requireLimits"} and web[1]["findings"] == []
    assert all(name.startswith("web-7d4b9c6f8-") for name in web[0]["podNames"])
    api = next(g for g in groups if g["owner"]["name"] == "api")
    assert api["drift"] == [{"op": "add", "path": "/metadata/labels/tenant", "value": "shop"}]
    train = next(g for g in groups if g["owner"]["name"] == "train")
    assert train["denied"] == 0 and {f["enforcement"] for f in train["findings"]} == {"Warn"}
    nightly = next(g for g in groups if g["owner"]["kind"] == "CronJob")
    assert nightly["owner"] == {"kind": "CronJob", "namespace": "misc-00", "name": "nightly"}
    assert nightly["pods"] == 10
    assert sum(1 for g in groups if g["owner"]["name"] == "app") == 40  # one group per compliant Deployment

    results = {(r["namespace"], r["name"]): r for r in doc["results"]}
    batch = results[("misc-01", "batch-77c5b8d9f-00000")]
    assert batch["owner"] == {"kind": "Deployment", "namespace": "misc-01", "name": "batch"}
    # every finding structured with its enforcement; allowed from Enforce findings only
    assert batch["allowed"] is True and {v["enforcement"] for v in batch["violations"]} == {"Audit"}
    debug = results[("shop-04", "debug")]
    assert debug["allowed"] is False and debug["owner"]["kind"] == "Pod"
    assert {v["enforcement"] for v in debug["violations"]} == {"Enforce"}
    assert "notes" not in doc  # ReplicaSets and Jobs were listed


def test_fail_on_makes_warn_and_audit_findings_fail(audited) -> None:
    warned = audited["fail-on-warn"]
    assert warned.code == 1 and "allowed 40, warned 40" in warned.out
    assert warned.err == "note: exit 1: 80 Warn findings (--fail-on warn)\n"
    only_audit = audited["fail-on-warn-only-audit"]
    assert only_audit.code == 0 and only_audit.err == ""  # Audit findings, but only Warn was named
    audit_run = audited["fail-on-audit"]
    assert audit_run.code == 1 and audit_run.err == "note: exit 1: 40 Audit findings (--fail-on audit)\n"


def test_no_progress_bar_when_stderr_is_not_a_terminal(audited) -> None:
    for run in ("table", "all", "json"):
        assert audited[run].err == "", audited[run].err


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    stream = Terminal()
    bar = ProgressBar(stream)
    for done in range(1, 10_001):
        bar(done, 10_000)
    frames = stream.getvalue().split("\r\033[K")[1:]
    assert len(frames) == 101  # the first pod, then once per percent: not once per pod
    assert frames[0] == "judging pods [..............................] 1/10000"
    assert frames[1] == "judging pods [..............................] 100/10000"
    assert frames[-1] == "judging pods [##############################] 10000/10000"
    bar.clear()
    assert stream.getvalue().endswith("\r\033[K")  # the line is left empty for what follows


@pytest.mark.parametrize("env", [{"CI": "true"}, {"TERM": "dumb"}])
def test_no_progress_bar_in_ci_or_a_dumb_terminal(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    stream = Terminal()
    bar = ProgressBar(stream)
    bar.status("reading the cluster ...")
    bar(1, 1)
    bar.clear()
    assert stream.getvalue() == ""


def test_no_progress_bar_on_a_pipe() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream)
    bar(1, 2)
    bar.clear()
    assert stream.getvalue() == ""


# --- the owner chain and an owner's line, without a server ---------------------------------------------------

def test_owner_chain() -> None:
    from webhook.actions.audit import Owner, owner_of

    owners = {("ReplicaSet", "ns", "web-abc"): ("Deployment", "web"), ("ReplicaSet", "ns", "bare-abc"): None,
              ("Job", "ns", "nightly-1"): ("CronJob", "nightly"),
              ("ReplicaSet", "ns", "a"): ("ReplicaSet", "b"), ("ReplicaSet", "ns", "b"): ("ReplicaSet", "a")}

    def owned(kind: str, name: str, **labels: str) -> dict[str, Any]:
        return pod("ns", "p", owner=ref(kind, name), labels=labels)

    assert owner_of(owned("ReplicaSet", "web-abc"), owners) == Owner("ns", "Deployment", "web")
    assert owner_of(owned("ReplicaSet", "bare-abc", **{"pod-template-hash": "abc"}), owners) == \
        Owner("ns", "ReplicaSet", "bare-abc")  # listed, owned by nobody: the hash is not looked at
    assert owner_of(owned("Job", "nightly-1"), owners) == Owner("ns", "CronJob", "nightly")
    assert owner_of(owned("ReplicaSet", "a"), owners) == Owner("ns", "ReplicaSet", "a")  # a cycle ends
    # a ReplicaSet the snapshot does not hold: its Deployment from the name and the pod-template-hash label
    assert owner_of(owned("ReplicaSet", "api-5d8f", **{"pod-template-hash": "5d8f"}), {}) == \
        Owner("ns", "Deployment", "api")
    assert owner_of(owned("ReplicaSet", "api-5d8f"), {}) == Owner("ns", "ReplicaSet", "api-5d8f")
    assert owner_of(owned("StatefulSet", "db"), owners) == Owner("ns", "StatefulSet", "db")
    assert owner_of(pod("ns", "alone"), owners) == Owner("ns", "Pod", "alone")
    not_controller = pod("ns", "p")
    not_controller["metadata"]["ownerReferences"] = [{"kind": "ConfigMap", "name": "x"}, ref("DaemonSet", "agent")]
    assert owner_of(not_controller, owners) == Owner("ns", "DaemonSet", "agent")


def test_an_owner_with_many_groups_stays_one_short_line(tmp_path) -> None:
    from webhook.actions.audit import audit, groups
    from webhook.cli.audit import owner_line
    from webhook.cli.output import Paint
    from webhook.policy import load_policies
    from webhook.views.snapshot import Snapshot, SnapshotState

    (tmp_path / "policies.yaml").write_text(POLICIES)
    policies = load_policies([str(tmp_path / "policies.yaml")])
    objects = deployment("shop-00", "web", 10, limits=False) + deployment("shop-00", "web", 4, hash_="b1")
    variants = [deployment("shop-00", "web", 3, hash_=f"c{i}") for i in range(3)]
    for i, rs in enumerate(variants):  # three more distinct sets of findings: another container, without limits
        for p in rs[1:]:
            p["spec"]["containers"].append({"name": f"extra{i}", "image": "i", "resources": {}})
        objects += rs
    objects += deployment("shop-00", "cfg", 2, tenant_label=False)  # compliant, but without the tenant's label
    state = SnapshotState()
    snapshot = Snapshot(state, [o for o in objects if o["kind"] == "Pod"])
    for p in snapshot.pods:
        state.add_object(p)
    *found, drifted = groups(audit(snapshot, policies))
    assert owner_line([drifted], Paint(False)) == \
        "Deployment shop-00/cfg (2 pods): allowed 2, drift 2 — lacks defaults: add /metadata/labels/tenant"
    assert [len(g.pods) for g in found] == [10, 3, 3, 3, 4]  # denied first, the largest first
    line = owner_line(found, Paint(False))
    # (the extra containers have no requests either: the Audit cluster policy's findings)
    assert line.startswith("Deployment shop-00/web (23 pods): DENIED 19, allowed 4, audited 9 — "
                           "10 pods: [shop/requireLimits] ")
    assert line.endswith("; 7 pods more in 2 other groups")
    assert line.count("pods:") == 3
