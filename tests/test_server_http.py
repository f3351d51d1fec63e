"""The webhook's HTTP contract, in-process with pytest-aiohttp.

- every golden case (tests/golden/**.yaml) through HTTP as the API server chains the
  webhooks: POST /mutate, apply its patch, POST /validate with the patched object; the
  answers must add up to the core's decision (run_suite: the dry-run's verdict) and meet
  the case's expectations; the raw object sent straight to /validate gets the raw
  object's verdict (judged as received, without our defaults);
- AdmissionReview fidelity: uid and apiVersion echoed, DELETE/CONNECT untouched, empty keys
  absent, 403 denials listing every violation, enforcement modes, dryRun without side effects;
- malformed input: 4xx with a reason, never a 500, and the server keeps answering;
- the fail posture when an evaluation raises.
"""

from __future__ import annotations

import base64
import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import POLICIES, fixture_review, golden_case_params
from webhook.views.memory import InMemoryClusterState
from webhook.core.engine import evaluate
from webhook.core.plan import PolicySet
from webhook.core.request import AdmissionRequest
from webhook.core.response import MAX_WARNING_CHARS
from webhook.policy.loader import SourceDoc, build_policy_set, load_policies
from webhook.actions.policy_test import Suite, core_evaluator, run_suite
from webhook.server.app import WebhookContext, create_app
from webhook.views.files import StaticClusterView
from webhook.server.metrics import Metrics
from webhook.server.policy_store import PolicyStore

JSON = {"Content-Type": "application/json"}


# --- helpers shared by the other test_server_* modules -------------------------------------------

def review_for(request: AdmissionRequest, obj: Any = None, *, api_version: str = "admission.k8s.io/v1",
               uid: str | None = None) -> dict[str, Any]:
    """The AdmissionReview the API server would send for ``request`` (``obj`` replaces its object)."""
    obj = request.obj if obj is None else obj
    source = obj if isinstance(obj, dict) else (request.old_obj or {})
    group, _, version = str(source.get("apiVersion", "v1")).rpartition("/")
    kind = str(source.get("kind", ""))
    meta = source.get("metadata") if isinstance(source.get("metadata"), dict) else {}
    review_request: dict[str, Any] = {
        "uid": uid or request.uid or "00000000-0000-0000-0000-00000000cafe",
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": kind.lower() + "s"},
        "namespace": request.namespace,
        "name": meta.get("name", ""),
        "operation": request.operation,
        "userInfo": {"username": request.username, "groups": list(request.groups)},
        "object": obj,
        "oldObject": request.old_obj,
        "dryRun": request.dry_run,
    }
    if request.subresource:
        review_request["subResource"] = request.subresource
    return {"apiVersion": api_version, "kind": "AdmissionReview", "request": review_request}


def pod(name: str = "web", namespace: str = "shop", **spec: Any) -> dict[str, Any]:
    container = {"name": "app", "image": "registry.example/app:1",
                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"containers": [container], **spec}}


def review(obj: Any, *, namespace: str = "shop", operation: str = "CREATE", dry_run: bool = False,
           uid: str = "uid-1", api_version: str = "admission.k8s.io/v1", **extra: Any) -> dict[str, Any]:
    request = AdmissionRequest(obj=obj if operation != "DELETE" else None, namespace=namespace, operation=operation,
                               uid=uid, dry_run=dry_run, old_obj=extra.pop("old", None),
                               subresource=extra.pop("subresource", ""), username=extra.pop("username", "alice"),
                               groups=tuple(extra.pop("groups", ["dev"])))
    out = review_for(request, obj if operation != "DELETE" else None, api_version=api_version)
    if operation == "DELETE":
        out["request"]["oldObject"] = obj
    out["request"].update(extra)
    return out


def policy_set(*docs: dict[str, Any]) -> PolicySet:
    return build_policy_set([SourceDoc(d, "inline", i + 1) for i, d in enumerate(docs)])


def cluster_policy(name: str = "base", enforcement: str = "Enforce", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "tenantguard.io/v1alpha1", "kind": "ClusterPolicy", "metadata": {"name": name},
            "spec": {"enforcement": enforcement, **spec}}


def make_context(policies: PolicySet, view: Any = None, **kw: Any) -> WebhookContext:
    return WebhookContext(PolicyStore.from_policy_set(policies), view if view is not None else StaticClusterView(),
                          Metrics(), **kw)


async def post(client, path: str, body: Any, headers: dict[str, str] | None = None):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return await client.post(path, data=data, headers=JSON if headers is None else headers)


def decode_patch(response: dict[str, Any]) -> list[dict[str, Any]]:
    return json.loads(base64.b64decode(response["patch"])) if "patch" in response else []


class RecordingView(StaticClusterView):
    """A static view that records when the server locked it and what it recorded as admitted."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Any] = []

    def locked(self):
        self.calls.append("locked")
        return super().locked()

    def record_admitted(self, request, decision):
        self.calls.append(("recorded", request.uid, decision.allowed))


# --- golden cases through HTTP -------------------------------------------------------------------

def _truncated(warnings: list[str]) -> list[str]:
    return [w if len(w) <= MAX_WARNING_CHARS else w[: MAX_WARNING_CHARS - 3] + "..." for w in warnings]


@pytest.mark.parametrize("path,index", golden_case_params())
async def test_golden_case_through_http(aiohttp_client, suites, path: Path, index: int) -> None:
    suite = suites[path]
    case = suite.cases[index]
    captured: dict[str, InMemoryClusterState] = {}

    def evaluator(c, s, state):
        captured["state"] = copy.deepcopy(state)  # the view the core judged against, before it admits
        return core_evaluator(c, s, state)

    result = run_suite(Suite(suite.name, suite.source, suite.policies, suite.state_objects, [case]), evaluator)[0]
    assert result.passed, "\n".join(result.failures)
    core = result.decision
    ctx = make_context(suite.policies, StaticClusterView.copy_of(captured["state"]), today=lambda: case.request.today)
    client = await aiohttp_client(create_app(ctx))

    sent = review_for(case.request, uid=f"golden-{index}")
    resp = await post(client, "/mutate", sent)
    assert resp.status == 200, await resp.text()
    mutated = await resp.json()
    assert mutated["apiVersion"] == "admission.k8s.io/v1" and mutated["kind"] == "AdmissionReview"
    m = mutated["response"]
    assert m["uid"] == f"golden-{index}"
    patch = decode_patch(m)
    assert patch == core.patch_json()
    assert ("patchType" in m) == bool(patch) and ("patch" in m) == bool(patch)
    obj = case.request.obj
    patched = jsonpatch.apply_patch(copy.deepcopy(obj), patch) if patch else obj

    resp = await post(client, "/validate", review_for(case.request, patched, uid=f"golden-{index}"))
    assert resp.status == 200, await resp.text()
    v = (await resp.json())["response"]
    assert v["uid"] == f"golden-{index}"
    assert "patch" not in v and "patchType" not in v

    allowed = m["allowed"] and v["allowed"]
    assert allowed == core.allowed
    if "allowed" in case.expect:
        assert allowed == bool(case.expect["allowed"])
    assert m.get("warnings", []) + v.get("warnings", []) == _truncated(core.warnings)
    assert v.get("auditAnnotations", {}) == core.audit_annotations()
    if core.allowed:
        assert "status" not in v
    else:
        status = v["status"]
        assert status["code"] == 403 and status["reason"] == "Forbidden"
        assert status["message"] == core.message()
        for expected in case.expect.get("violations") or []:
            for key in ("message", "messageContains"):
                if key in expected:
                    assert expected[key] in status["message"]

    # the raw review sent straight to /validate is judged as received: the raw object's verdict
    as_received = evaluate(case.request, suite.policies, copy.deepcopy(captured["state"]), mutate=False)
    resp = await post(client, "/validate", review_for(case.request, obj, uid=f"golden-raw-{index}"))
    raw = (await resp.json())["response"]
    assert raw["allowed"] == as_received.allowed
    assert raw.get("status", {}).get("message", "") == as_received.message()
    assert raw.get("warnings", []) == _truncated(as_received.warnings)


# --- AdmissionReview fidelity --------------------------------------------------------------------

RESTRICTED = cluster_policy(
    "restricted", rules={"podSecurity": "restricted", "requireLimits": ["cpu", "memory"]},
    defaults={"resources": {"limits": {"cpu": "500m", "memory": "256Mi"}}},
)


@pytest.fixture
async def restricted_client(aiohttp_client):
    view = RecordingView()
    client = await aiohttp_client(create_app(make_context(policy_set(RESTRICTED), view)))
    client.view = view
    return client


def unfixable_pod() -> dict[str, Any]:
    """A pod the defaults cannot make compliant: its cpu request is above the default limit
    (so the limit stays unset) and it asks for nothing the restricted standard wants."""
    bad = pod()
    bad["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "1"
    return bad


async def test_denial_is_403_listing_every_violation(restricted_client) -> None:
    resp = await post(restricted_client, "/validate", review(unfixable_pod()))
    assert resp.status == 200
    body = await resp.json()
    r = body["response"]
    assert body["apiVersion"] == "admission.k8s.io/v1" and r["uid"] == "uid-1" and r["allowed"] is False
    assert r["status"]["code"] == 403 and r["status"]["reason"] == "Forbidden"
    lines = r["status"]["message"].splitlines()
    assert lines[0].startswith("tenantguard denied the request (") and len(lines) >= 4
    assert any("requireLimits" in line for line in lines) and any("podSecurity" in line for line in lines)
    # no patch on /validate, and not the mutation phase's warning ("limit left unset"): /mutate gave it
    assert "patch" not in r and "patchType" not in r and "warnings" not in r and "auditAnnotations" not in r


async def test_validate_judges_the_object_as_received_never_assuming_the_defaults(restricted_client) -> None:
    """/mutate fails open: a pod that reaches /validate without our defaults is judged without them."""
    fixable = pod()  # lacks limits, which the defaults would fill
    r = (await (await post(restricted_client, "/validate", review(fixable))).json())["response"]
    assert r["allowed"] is False
    lines = r["status"]["message"].splitlines()
    assert any("requireLimits" in line for line in lines) and any("podSecurity" in line for line in lines)
    raw = evaluate(AdmissionRequest(obj=fixable, namespace="shop"), policy_set(RESTRICTED), InMemoryClusterState(),
                   mutate=False)
    assert r["status"]["message"] == raw.message()
    # the API server's sequence: /mutate, apply its patch, /validate: the limits are there now
    m = (await (await post(restricted_client, "/mutate", review(fixable))).json())["response"]
    patched = jsonpatch.apply_patch(copy.deepcopy(fixable), decode_patch(m))
    r = (await (await post(restricted_client, "/validate", review(patched))).json())["response"]
    lines = r["status"]["message"].splitlines()
    assert not any("requireLimits" in line for line in lines) and any("podSecurity" in line for line in lines)
    full = evaluate(AdmissionRequest(obj=fixable, namespace="shop"), policy_set(RESTRICTED), InMemoryClusterState())
    assert r["status"]["message"] == full.message()


async def test_mutate_returns_the_patch_and_never_judges(restricted_client) -> None:
    resp = await post(restricted_client, "/mutate", review(pod()))
    r = (await resp.json())["response"]
    assert r["allowed"] is True and "status" not in r
    assert r["patchType"] == "JSONPatch"
    assert {"op": "add", "path": "/spec/containers/0/resources/limits",
            "value": {"cpu": "500m", "memory": "256Mi"}} in decode_patch(r)


async def test_no_patch_keys_when_nothing_to_set(restricted_client) -> None:
    complete = pod()
    complete["spec"]["containers"][0]["resources"]["limits"] = {"cpu": "1", "memory": "1Gi"}
    r = (await (await post(restricted_client, "/mutate", review(complete))).json())["response"]
    assert r == {"uid": "uid-1", "allowed": True}


@pytest.mark.parametrize("operation", ["DELETE", "CONNECT"])
async def test_delete_and_connect_are_allowed_untouched(restricted_client, operation: str) -> None:
    for path in ("/mutate", "/validate"):
        body = review(pod(), operation=operation)
        if operation == "CONNECT":
            body["request"]["object"] = {"apiVersion": "v1", "kind": "PodExecOptions", "command": ["sh"]}
        r = (await (await post(restricted_client, path, body)).json())["response"]
        assert r == {"uid": "uid-1", "allowed": True}


async def test_answers_in_the_request_api_version(restricted_client) -> None:
    body = await (await post(restricted_client, "/validate", review(pod(), api_version="admission.k8s.io/v1beta1"))
                  ).json()
    assert body["apiVersion"] == "admission.k8s.io/v1beta1" and body["response"]["uid"] == "uid-1"


async def test_request_namespace_is_authoritative(aiohttp_client) -> None:
    tenant = {"apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": "team-a"},
              "spec": {"namespaces": ["team-a"], "rules": {"requireLimits": ["cpu"]}}}
    client = await aiohttp_client(create_app(make_context(policy_set(tenant))))
    obj = pod(namespace="")
    del obj["metadata"]["namespace"]
    r = (await (await post(client, "/validate", review(obj, namespace="team-a"))).json())["response"]
    assert r["allowed"] is False and "team-a" in r["status"]["message"]


async def test_update_sees_old_object_and_ephemeral_containers_are_judged(restricted_client) -> None:
    old = pod()
    old["spec"]["containers"][0]["resources"]["limits"] = {"cpu": "1", "memory": "1Gi"}
    new = copy.deepcopy(old)
    new["spec"]["ephemeralContainers"] = [{"name": "debug", "image": "busybox", "securityContext": {"privileged": True}}]
    body = review(new, operation="UPDATE", old=old, subresource="ephemeralcontainers")
    r = (await (await post(restricted_client, "/validate", body)).json())["response"]
    assert r["allowed"] is False and "debug" in r["status"]["message"]
    # the same change without the subresource is not ours to judge (a pod's spec is immutable)
    status_update = review(new, operation="UPDATE", old=old, subresource="status")
    r = (await (await post(restricted_client, "/validate", status_update)).json())["response"]
    assert r == {"uid": "uid-1", "allowed": True}


async def test_user_info_feeds_exemptions(aiohttp_client) -> None:
    policy = cluster_policy("limits", rules={"requireLimits": ["cpu"]},
                            exemptions=[{"groups": ["platform"], "reason": "platform team"}])
    client = await aiohttp_client(create_app(make_context(policy_set(policy))))
    r = (await (await post(client, "/validate", review(pod(), groups=["platform"]))).json())["response"]
    assert r["allowed"] is True
    r = (await (await post(client, "/validate", review(pod(), groups=["dev"]))).json())["response"]
    assert r["allowed"] is False


async def test_only_a_real_creation_on_validate_locks_the_view_and_records_it(aiohttp_client) -> None:
    view = RecordingView()
    client = await aiohttp_client(create_app(make_context(policy_set(RESTRICTED), view, answers=None)))
    compliant = restricted_pod()
    await post(client, "/mutate", review(compliant, uid="m"))
    await post(client, "/validate", review(compliant, uid="d", dry_run=True))
    old = restricted_pod()
    await post(client, "/validate", review(compliant, uid="u", operation="UPDATE", old=old))
    assert view.calls == []  # the mutation phase, a dry run and an update change no usage
    r = (await (await post(client, "/validate", review(compliant, uid="c"))).json())["response"]
    assert r["allowed"] is True
    assert view.calls == ["locked", ("recorded", "c", True)]
    await post(client, "/validate", review(pod(), uid="x"))  # denied: judged under the lock, not recorded
    assert view.calls == ["locked", ("recorded", "c", True), "locked"]


def restricted_pod() -> dict[str, Any]:
    """A pod that passes RESTRICTED as written (no default needed)."""
    good = pod(securityContext={"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}})
    good["spec"]["containers"][0]["securityContext"] = {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    good["spec"]["containers"][0]["resources"]["limits"] = {"cpu": "500m", "memory": "256Mi"}
    return good


async def test_enforcement_modes(aiohttp_client) -> None:
    defaults = {"resources": {"limits": {"cpu": "500m"}}}
    warn = cluster_policy("warned", "Warn", rules={"requireLimits": ["memory"]})
    audit = cluster_policy("audited", "Audit", rules={"requireLimits": ["cpu"]}, defaults=defaults)
    client = await aiohttp_client(create_app(make_context(policy_set(warn, audit))))
    m = (await (await post(client, "/mutate", review(pod()))).json())["response"]
    assert "patch" not in m  # Audit mode does not patch ...
    assert any("(Audit) would set /spec/containers/0/resources/limits" in w for w in m["warnings"])  # ... it says
    v = (await (await post(client, "/validate", review(pod()))).json())["response"]
    assert v["allowed"] is True and "status" not in v
    assert any(w.startswith("[warned/requireLimits]") for w in v["warnings"])
    assert v["auditAnnotations"]["policies"] == "audited"
    assert v["auditAnnotations"]["rules"] == "audited/requireLimits"


async def test_shipped_policies_on_the_shared_fixtures(aiohttp_client) -> None:
    policies = load_policies([POLICIES])
    client = await aiohttp_client(create_app(make_context(policies)))
    for size in ("small", "medium", "large"):
        sent = fixture_review(size)
        body = await (await post(client, "/mutate", sent)).json()
        assert body["response"]["uid"] == sent["request"]["uid"]
        patched = jsonpatch.apply_patch(sent["request"]["object"], decode_patch(body["response"]))
        again = copy.deepcopy(sent)
        again["request"]["object"] = patched
        body = await (await post(client, "/validate", again)).json()
        assert isinstance(body["response"]["allowed"], bool)


# --- malformed input -------------------------------------------------------------------------------

def _mangled(mutate) -> dict[str, Any]:
    body = review(pod())
    mutate(body)
    return body


MALFORMED = {
    "truncated JSON": (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionRev', "not valid JSON"),
    "empty body": (b"", "not valid JSON"),
    "not an object": (b"[1, 2]", "body must be an object"),
    "not UTF-8": (b'{"kind": "\xff"}', "not valid JSON"),
    "wrong kind": (_mangled(lambda b: b.update(kind="Pod")), "kind must be AdmissionReview"),
    "wrong apiVersion": (_mangled(lambda b: b.update(apiVersion="admission.k8s.io/v2")), "unsupported apiVersion"),
    "no apiVersion": (_mangled(lambda b: b.pop("apiVersion")), "unsupported apiVersion"),
    "request missing": (_mangled(lambda b: b.pop("request")), "request must be an object"),
    "request a list": (_mangled(lambda b: b.update(request=[])), "request must be an object"),
    "uid missing": (_mangled(lambda b: b["request"].pop("uid")), "request.uid is required"),
    "uid a number": (_mangled(lambda b: b["request"].update(uid=7)), "request.uid must be a string"),
    "object a string": (_mangled(lambda b: b["request"].update(object="pod")), "request.object must be an object"),
    "object missing on CREATE": (_mangled(lambda b: b["request"].pop("object")), "request.object is required"),
    "groups not a list": (_mangled(lambda b: b["request"]["userInfo"].update(groups="dev")),
                          "request.userInfo.groups must be a list"),
    "userInfo a string": (_mangled(lambda b: b["request"].update(userInfo="alice")),
                          "request.userInfo must be an object"),
    "unknown operation": (_mangled(lambda b: b["request"].update(operation="PATCH")), "request.operation"),
    "dryRun a string": (_mangled(lambda b: b["request"].update(dryRun="yes")), "request.dryRun must be a boolean"),
    "namespace a number": (_mangled(lambda b: b["request"].update(namespace=3)), "request.namespace"),
}


@pytest.mark.parametrize("endpoint", ["/mutate", "/validate"])
@pytest.mark.parametrize("name", list(MALFORMED))
async def test_malformed_reviews_get_400_with_a_reason(restricted_client, endpoint: str, name: str) -> None:
    body, reason = MALFORMED[name]
    resp = await post(restricted_client, endpoint, body)
    assert resp.status == 400
    assert reason in await resp.text()
    ok = await post(restricted_client, endpoint, review(pod()))  # and the server goes on
    assert ok.status == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/yaml",
                                          None])
async def test_wrong_content_type_is_400(restricted_client, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    resp = await post(restricted_client, "/validate", json.dumps(review(pod())).encode(), headers=headers)
    assert resp.status == 400
    assert "Content-Type must be application/json" in await resp.text()


async def test_json_with_charset_is_fine(restricted_client) -> None:
    resp = await post(restricted_client, "/validate", review(pod()),
                      headers={"Content-Type": "application/json; charset=utf-8"})
    assert resp.status == 200


async def test_ten_megabytes_is_413(restricted_client) -> None:
    big = b'{"pad": "' + b"a" * (10 * 1024 * 1024) + b'"}'
    resp = await post(restricted_client, "/validate", big)
    assert resp.status == 413
    assert "exceeds the limit" in await resp.text()

    async def chunks():  # no Content-Length: caught while reading
        for _ in range(10):
            yield b"a" * (1024 * 1024)

    resp = await restricted_client.post("/mutate", data=chunks(), headers=JSON)
    assert resp.status == 413
    assert (await post(restricted_client, "/validate", review(pod()))).status == 200


async def test_just_under_the_limit_is_read(restricted_client) -> None:
    body = review(pod())
    body["request"]["object"]["metadata"]["annotations"] = {"pad": "x" * (3 * 1024 * 1024 - 2048)}
    resp = await post(restricted_client, "/validate", body)
    assert resp.status == 200


@pytest.mark.parametrize("method,path,status", [
    ("GET", "/mutate", 405), ("GET", "/validate", 405), ("PUT", "/validate", 405), ("DELETE", "/mutate", 405),
    ("GET", "/", 404), ("POST", "/admit", 404), ("GET", "/mutate/x", 404), ("POST", "/healthz", 405),
])
async def test_wrong_method_or_path_is_4xx(restricted_client, method: str, path: str, status: int) -> None:
    resp = await restricted_client.request(method, path, data=b"{}", headers=JSON)
    assert resp.status == status
    assert (await restricted_client.get("/healthz")).status == 200


HOSTILE_OBJECTS = {
    "metadata a list": {"apiVersion": "v1", "kind": "Pod", "metadata": [], "spec": {"containers": []}},
    "spec a string": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": "nope"},
    "containers an object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
                             "spec": {"containers": {"name": "a"}}},
    "container a number": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {"containers": [3]}},
    "resources garbage": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
                          "spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "lots"}}}]}},
    "kind missing": {"metadata": {"name": "x"}},
    "deployment without template": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
                                    "spec": {"template": 5}},
}


@pytest.mark.parametrize("endpoint", ["/mutate", "/validate"])
@pytest.mark.parametrize("name", list(HOSTILE_OBJECTS))
async def test_strange_objects_never_cost_a_500(restricted_client, endpoint: str, name: str) -> None:
    """Well-formed reviews of objects the API server would never send: answered (200), uid echoed."""
    resp = await post(restricted_client, endpoint, review(HOSTILE_OBJECTS[name]))
    assert resp.status == 200, await resp.text()
    r = (await resp.json())["response"]
    assert r["uid"] == "uid-1" and isinstance(r["allowed"], bool)


# --- fail posture ----------------------------------------------------------------------------------

class ExplodingView(StaticClusterView):
    def namespace_labels(self, namespace: str):
        raise RuntimeError("cluster view exploded")


async def test_internal_error_fails_open_on_mutate_and_closed_on_validate(aiohttp_client) -> None:
    ctx = make_context(policy_set(RESTRICTED), ExplodingView())
    client = await aiohttp_client(create_app(ctx))
    resp = await post(client, "/mutate", review(pod()))
    assert resp.status == 200
    m = (await resp.json())["response"]
    assert m["allowed"] is True and "patch" not in m
    assert "could not evaluate" in m["warnings"][0] and "cluster view exploded" in m["warnings"][0]
    resp = await post(client, "/validate", review(pod()))
    assert resp.status == 200
    v = (await resp.json())["response"]
    assert v["allowed"] is False and "cluster view exploded" in v["status"]["message"]
    assert "fail closed" in v["status"]["message"]
    families = {f.name: f for f in text_string_to_metric_families(await (await client.get("/metrics")).text())}
    errors = {s.labels["endpoint"]: s.value for s in families["tenantguard_admission_requests"].samples
              if s.name.endswith("_total") and s.labels["decision"] == "error"}
    assert errors == {"mutate": 1.0, "validate": 1.0}


# --- health ----------------------------------------------------------------------------------------

class UnsyncedView(StaticClusterView):
    synced = False


async def test_readyz_waits_for_the_cluster_view_and_healthz_does_not(aiohttp_client) -> None:
    ctx = make_context(policy_set(RESTRICTED), UnsyncedView())
    client = await aiohttp_client(create_app(ctx))
    assert (await client.get("/healthz")).status == 200
    resp = await client.get("/readyz")
    assert resp.status == 503 and "not synced" in await resp.text()
    ctx.view.synced = True
    assert (await client.get("/readyz")).status == 200
    ctx.draining = True
    resp = await client.get("/readyz")
    assert resp.status == 503 and "draining" in await resp.text()
    assert (await client.get("/healthz")).status == 200


async def test_today_decides_exemption_expiry(aiohttp_client) -> None:
    policy = cluster_policy("limits", rules={"requireLimits": ["cpu"]},
                            exemptions=[{"namespaces": ["shop"], "reason": "migration", "expires": "2030-01-01"}])
    ctx = make_context(policy_set(policy), today=lambda: date(2029, 12, 31))
    client = await aiohttp_client(create_app(ctx))
    assert (await (await post(client, "/validate", review(pod()))).json())["response"]["allowed"] is True
    ctx.today = lambda: date(2030, 1, 2)
    assert (await (await post(client, "/validate", review(pod()))).json())["response"]["allowed"] is False
