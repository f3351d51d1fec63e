"""Engine behaviour that golden files express poorly: operations, subresources, failure posture."""

from __future__ import annotations

import base64
import json
from datetime import date
from typing import Any

import pytest

from webhook.views.memory import InMemoryClusterState
from webhook.core.engine import evaluate
from webhook.core.patch import escape, pointer
from webhook.core.decision import Status
from webhook.core.plan import MAIN_ONLY, CompiledPolicy, Enforcement, NamespaceMatch, PolicySet
from webhook.core.request import AdmissionRequest, ReviewError, from_manifest, from_review
from webhook.core.response import admission_response
from webhook.core.selectors import LabelSelector
from webhook.policy.loader import SourceDoc, build_policy_set


def policies(*docs: dict[str, Any]) -> PolicySet:
    return build_policy_set([SourceDoc(d, "inline", i) for i, d in enumerate(docs, 1)])


def tenant(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": name},
            "spec": {"namespaces": [name], **spec}}


def pod(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "app", "image": "i"}], **spec}}


SHOP = policies(tenant("shop", {"defaults": {"labels": {"a": "b"}}, "rules": {"requireLimits": ["cpu"]}}))


def req(obj: dict[str, Any] | None, **kw: Any) -> AdmissionRequest:
    kw.setdefault("namespace", "shop")
    return AdmissionRequest(obj=obj, **kw)


def test_pointer_escaping() -> None:
    assert escape("a/b~c") == "a~1b~0c"
    assert pointer(["metadata", "labels", "example.com/x~y"]) == "/metadata/labels/example.com~1x~0y"
    assert pointer(["spec", "containers", 0]) == "/spec/containers/0"


@pytest.mark.parametrize("operation", ["DELETE", "CONNECT"])
def test_delete_and_connect_are_allowed_untouched(operation: str) -> None:
    d = evaluate(req(None, operation=operation, old_obj=pod()), SHOP, InMemoryClusterState())
    assert d.allowed and not d.patch and d.skipped


def test_other_subresources_are_not_judged() -> None:
    d = evaluate(req(pod(), operation="UPDATE", subresource="status", old_obj=pod()), SHOP, InMemoryClusterState())
    assert d.allowed and not d.patch and "status" in (d.skipped or "")


def test_pod_update_is_not_mutated_and_unchanged_spec_not_rejudged() -> None:
    old = pod()
    new = pod()
    new["metadata"]["labels"] = {"x": "y"}  # metadata-only change of a pod that breaks requireLimits
    d = evaluate(req(new, operation="UPDATE", old_obj=old), SHOP, InMemoryClusterState())
    assert d.allowed and d.patch == [] and d.violations == []


def test_pod_update_changing_the_spec_is_judged() -> None:
    old = pod()
    new = pod()
    new["spec"]["containers"][0]["image"] = "other"
    d = evaluate(req(new, operation="UPDATE", old_obj=old), SHOP, InMemoryClusterState())
    assert not d.allowed and d.violations[0].rule == "requireLimits"
    assert d.patch == []  # a running pod's spec cannot be mutated


def test_controller_update_is_mutated_and_judged_when_the_template_changes() -> None:
    def deploy(image: str) -> dict[str, Any]:
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
                    "metadata": {"labels": {"a": "b"}},
                    "spec": {"containers": [{"name": "c", "image": image, "resources": {"limits": {"cpu": "1"}}}]}}}}
    d = evaluate(req(deploy("v2"), operation="UPDATE", old_obj=deploy("v1")), SHOP, InMemoryClusterState())
    assert d.allowed and d.patch == []  # template already carries the label
    # a non-compliant Deployment created before the policy can still be scaled: its template is unchanged
    legacy = deploy("v1")
    del legacy["spec"]["template"]["spec"]["containers"][0]["resources"]
    scaled = json.loads(json.dumps(legacy))
    scaled["spec"]["replicas"] = 5
    assert evaluate(req(scaled, operation="UPDATE", old_obj=legacy), SHOP, InMemoryClusterState()).allowed
    # but a template change is judged
    broken = json.loads(json.dumps(legacy))
    broken["spec"]["template"]["spec"]["containers"][0]["image"] = "v3"
    d = evaluate(req(broken, operation="UPDATE", old_obj=deploy("v1")), SHOP, InMemoryClusterState())
    assert not d.allowed and d.violations[0].rule == "requireLimits"


def test_ephemeral_containers_subresource_is_judged() -> None:
    ps = policies(tenant("shop", {"rules": {"podSecurity": "baseline", "allowedRegistries": ["registry.local"]},
                                  "defaults": {"securityContext": {"container": {"allowPrivilegeEscalation": False}},
                                               "labels": {"l": "v"}}}))
    old = pod()
    old["spec"]["containers"][0]["image"] = "registry.local/app"
    new = json.loads(json.dumps(old))
    new["spec"]["ephemeralContainers"] = [{"name": "debugger", "image": "busybox",
                                           "securityContext": {"privileged": True}}]
    d = evaluate(req(new, operation="UPDATE", subresource="ephemeralcontainers", old_obj=old), ps,
                 InMemoryClusterState())
    assert not d.allowed
    assert {(v.rule, v.check) for v in d.violations} == {("podSecurity", "privileged"), ("allowedRegistries", None)}
    # only ephemeral containers are filled on that subresource, never labels or app containers
    assert [op.path for op in d.patch] == ["/spec/ephemeralContainers/0/securityContext/allowPrivilegeEscalation"]


def test_namespace_claimed_twice_through_labels_is_denied_clearly() -> None:
    ps = policies(
        {"apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": "a"},
         "spec": {"namespaceSelector": {"matchLabels": {"team": "x"}}}},
        {"apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": "b"},
         "spec": {"namespaceSelector": {"matchLabels": {"env": "prod"}}}},
    )
    state = InMemoryClusterState()
    state.add_namespace("both", {"team": "x", "env": "prod"})
    d = evaluate(req(pod(), namespace="both"), ps, state)
    assert not d.allowed and "claimed by several tenants: a, b" in d.violations[0].message


class Boom:
    rule = "boom"
    kinds = None
    subresources = MAIN_ONLY
    def reads_cluster(self, obj: Any) -> bool:
        return False

    def mutate(self, ctx: Any) -> None:
        raise RuntimeError("mutator bug")

    def validate(self, ctx: Any):
        raise RuntimeError("validator bug")


def test_mutators_fail_open_and_validators_fail_closed() -> None:
    policy = CompiledPolicy(name="p", kind="TenantPolicy", source="x", match=NamespaceMatch.build(["shop"], None),
                            mutators=(Boom(),), validators=(Boom(),))
    d = evaluate(req(pod()), PolicySet(tenants=(policy,)), InMemoryClusterState())
    assert any("default not applied: mutator bug" in w for w in d.warnings)
    assert not d.allowed and "rule could not be evaluated (RuntimeError: validator bug)" in d.violations[0].message
    # not an ordinary violation: a finding with status error, and the rule's result says so
    [error] = d.errors
    assert error.status is Status.ERROR and error.as_json()["status"] == "error"
    assert [(r.rule, r.status) for r in d.results] == [("boom", Status.ERROR), ("boom", Status.ERROR)]


@pytest.mark.parametrize("mode, allowed", [("Enforce", False), ("Warn", True), ("Audit", True)])
def test_a_crashing_rule_follows_its_policys_mode_and_is_never_silent(mode: str, allowed: bool) -> None:
    policy = CompiledPolicy(name="p", kind="TenantPolicy", source="x", match=NamespaceMatch.build(["shop"], None),
                            validators=(Boom(),), enforcement=Enforcement(mode))
    d = evaluate(req(pod()), PolicySet(tenants=(policy,)), InMemoryClusterState())
    assert d.allowed is allowed
    [error] = d.errors
    assert "rule could not be evaluated" in error.message
    if mode == "Warn":
        assert any("rule could not be evaluated" in w for w in d.warnings)
    if mode == "Audit":
        assert "rule could not be evaluated" in d.audit_annotations()["violations"]


def test_an_audit_mode_default_that_crashes_is_reported_not_hidden() -> None:
    policy = CompiledPolicy(name="p", kind="TenantPolicy", source="x", match=NamespaceMatch.build(["shop"], None),
                            mutators=(Boom(),), enforcement=Enforcement.AUDIT)
    d = evaluate(req(pod()), PolicySet(tenants=(policy,)), InMemoryClusterState())
    assert d.allowed and any("(Audit) default could not be evaluated: mutator bug" in w for w in d.warnings)
    assert [(r.rule, r.status) for r in d.results] == [("boom", Status.ERROR)]


def test_every_rule_leaves_a_result_with_its_status_and_time() -> None:
    ps = policies(tenant("shop", {"rules": {"requireLimits": ["cpu"], "requireRequests": ["cpu"]},
                                  "enforcement": "Warn"}))
    ticks = iter(range(100))
    requested = pod()
    requested["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "1"}}
    d = evaluate(req(requested), ps, InMemoryClusterState(), timer=lambda: float(next(ticks)))
    by_rule = {r.rule: r for r in d.results}
    assert by_rule["requireLimits"].status is Status.WARN and by_rule["requireLimits"].findings == 1
    assert by_rule["requireRequests"].status is Status.PASS
    assert all(r.seconds == 1.0 for r in d.results)  # one tick per rule: the timer brackets each rule
    netpol = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "n"},
              "spec": {"podSelector": {}}}
    d = evaluate(req(netpol), ps, InMemoryClusterState())
    assert {r.status for r in d.results} == {Status.SKIP}  # pod rules do not judge a NetworkPolicy


def test_invalid_quantity_in_the_pod_is_a_named_violation_not_a_crash() -> None:
    ps = policies(tenant("shop", {"rules": {"qosClass": "Guaranteed"}}))
    bad = pod()
    bad["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1 Gi"}}
    d = evaluate(req(bad), ps, InMemoryClusterState())
    assert not d.allowed and "invalid quantity" in d.violations[0].message


def test_selector_semantics() -> None:
    s = LabelSelector.from_dict({"matchLabels": {"a": "1"},
                                 "matchExpressions": [{"key": "b", "operator": "NotIn", "values": ["x"]},
                                                      {"key": "c", "operator": "Exists"}]})
    assert s.matches({"a": "1", "c": ""})
    assert not s.matches({"a": "1", "b": "x", "c": ""})
    assert not s.matches({"a": "1"})
    assert LabelSelector.from_dict({}).matches({"anything": "x"})


# --- AdmissionReview in and out ----------------------------------------------------------------

def review(**request: Any) -> dict[str, Any]:
    body = {"uid": "u-1", "operation": "CREATE", "namespace": "shop", "object": pod(),
            "userInfo": {"username": "alice", "groups": ["dev"]}}
    body.update(request)
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": body}


def test_review_parsing_uses_the_request_namespace_and_user() -> None:
    r = from_review(review(namespace="shop"), today=date(2026, 1, 1))
    assert (r.namespace, r.username, r.groups, r.uid) == ("shop", "alice", ("dev",), "u-1")
    obj = pod()
    obj["metadata"]["namespace"] = "elsewhere"
    assert from_review(review(object=obj)).namespace == "shop"


@pytest.mark.parametrize("mutation,reason", [
    (lambda r: r.update(kind="Pod"), "kind must be AdmissionReview"),
    (lambda r: r.update(apiVersion="admission.k8s.io/v2"), "unsupported apiVersion"),
    (lambda r: r.update(request="x"), "request must be an object"),
    (lambda r: r["request"].pop("uid"), "request.uid is required"),
    (lambda r: r["request"].update(object="pod"), "request.object must be an object"),
    (lambda r: r["request"].update(operation="PATCH"), "request.operation"),
    (lambda r: r["request"].update(userInfo={"groups": "dev"}), "groups must be a list"),
    (lambda r: r["request"].update(dryRun="yes"), "dryRun must be a boolean"),
    (lambda r: r["request"].pop("object"), "request.object is required for CREATE"),
])
def test_malformed_reviews_are_review_errors(mutation, reason: str) -> None:
    body = review()
    mutation(body)
    with pytest.raises(ReviewError, match=reason):
        from_review(body)


def test_response_omits_empty_keys_and_encodes_patch() -> None:
    r = from_review(review())
    allowed = evaluate(r, SHOP, InMemoryClusterState())
    assert not allowed.allowed
    out = admission_response(r, allowed, include_patch=True)
    resp = out["response"]
    assert out["apiVersion"] == "admission.k8s.io/v1" and resp["uid"] == "u-1"
    assert resp["status"]["code"] == 403 and "requireLimits" in resp["status"]["message"]
    assert json.loads(base64.b64decode(resp["patch"])) == allowed.patch_json()
    assert resp["patchType"] == "JSONPatch"
    assert "warnings" not in resp and "auditAnnotations" not in resp
    clean = pod()
    clean["metadata"]["labels"] = {"a": "b"}
    clean["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1"}}
    ok = evaluate(from_review(review(object=clean)), SHOP, InMemoryClusterState())
    resp = admission_response(from_review(review(object=clean)), ok, include_patch=True)["response"]
    assert resp == {"uid": "u-1", "allowed": True}


def test_response_answers_in_the_request_api_version() -> None:
    body = review()
    body["apiVersion"] = "admission.k8s.io/v1beta1"
    r = from_review(body)
    assert admission_response(r, evaluate(r, SHOP, InMemoryClusterState()), include_patch=False)["apiVersion"] == \
        "admission.k8s.io/v1beta1"


def test_audit_mode_annotations() -> None:
    ps = policies(tenant("shop", {"enforcement": "Audit", "rules": {"requireLimits": ["cpu"]}}))
    r = from_review(review())
    d = evaluate(r, ps, InMemoryClusterState())
    assert d.allowed and d.audit
    resp = admission_response(r, d, include_patch=True)["response"]
    assert resp["auditAnnotations"]["tenant"] == "shop"
    assert resp["auditAnnotations"]["rules"] == "shop/requireLimits"
    assert ps.tenants[0].enforcement is Enforcement.AUDIT


def test_invalid_quantity_violation_names_container_and_field() -> None:
    ps = policies(tenant("shop", {"rules": {"qosClass": "Guaranteed"}}))
    bad = pod()
    bad["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1 Gi"}}
    [found] = evaluate(req(bad), ps, InMemoryClusterState()).violations
    assert 'container "app" resources.limits.cpu' in found.message


def test_tenant_resolution_follows_relabelled_namespaces() -> None:
    """A PolicySet remembers each namespace's tenant per label mapping; a new mapping is judged anew."""
    ps = policies({"apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": "a"},
                   "spec": {"namespaceSelector": {"matchLabels": {"team": "a"}}}},
                  {"apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": "b"},
                   "spec": {"namespaceSelector": {"matchLabels": {"env": "prod"}}}})
    state = InMemoryClusterState()
    state.add_namespace("ns", {"team": "a"})
    assert evaluate(req(pod(), namespace="ns"), ps, state).tenant == "a"
    assert evaluate(req(pod(), namespace="ns"), ps, state).tenant == "a"  # remembered
    state.add_namespace("ns", {"team": "b"})
    assert evaluate(req(pod(), namespace="ns"), ps, state).tenant is None
    state.add_namespace("ns", {"team": "a", "env": "prod"})
    for _ in range(2):  # a remembered conflict is still a conflict
        d = evaluate(req(pod(), namespace="ns"), ps, state)
        assert not d.allowed and "claimed by several tenants: a, b" in d.violations[0].message


def test_the_namespace_name_label_cannot_be_faked() -> None:
    state = InMemoryClusterState()
    state.add_object({"apiVersion": "v1", "kind": "Namespace",
                      "metadata": {"name": "red", "labels": {"kubernetes.io/metadata.name": "blue"}}})
    assert state.namespace_labels("red") == {"kubernetes.io/metadata.name": "red"}


def test_usage_sums_are_exact_beyond_28_digits() -> None:
    state = InMemoryClusterState()
    for name, cpu in (("a", "123456789012345678901234567890"), ("b", "1m")):
        state.add_pod({"kind": "Pod", "metadata": {"name": name, "namespace": "n"},
                       "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}})
    assert str(state.namespace_usage("n")["requests.cpu"]) == "123456789012345678901234567890.001"
    state.add_pod({"kind": "Pod", "metadata": {"name": "a", "namespace": "n"},  # replaces pod a
                   "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}})
    assert str(state.namespace_usage("n")["requests.cpu"]) == "1.001"


@pytest.mark.parametrize("image,repository", [
    ("nginx", "docker.io/library/nginx"),
    ("nginx:1.27@sha256:abc", "docker.io/library/nginx"),
    ("docker.io/nginx", "docker.io/library/nginx"),
    ("index.docker.io/nginx:1", "docker.io/library/nginx"),
    ("index.docker.io/team/app", "docker.io/team/app"),
    ("team/app:v1", "docker.io/team/app"),
    ("localhost:5000/app:v1", "localhost:5000/app"),
    ("registry.example.com/blue/app:1.2", "registry.example.com/blue/app"),
])
def test_images_normalise_as_the_container_runtime_resolves_them(image: str, repository: str) -> None:
    from webhook.core.validators.boundaries import normalize_image

    assert normalize_image(image) == repository


def test_docker_hub_spellings_of_one_image_are_judged_alike() -> None:
    ps = policies(tenant("shop", {"rules": {"allowedRegistries": ["docker.io/library"]}}))
    for image in ("nginx", "docker.io/nginx", "index.docker.io/library/nginx", "docker.io/library/nginx:1"):
        obj = pod()
        obj["spec"]["containers"][0]["image"] = image
        assert evaluate(req(obj), ps, InMemoryClusterState()).allowed, image


def test_a_review_the_caller_keeps_is_never_written_to() -> None:
    """The server hands its freshly parsed body over (consume=True: filled in place); other callers' reviews
    stay as they were."""
    from webhook.server.admission import MUTATE, answer
    from webhook.views.files import StaticClusterView

    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
              "request": {"uid": "u", "operation": "CREATE", "namespace": "shop", "object": pod()}}
    before = json.loads(json.dumps(review))
    kept = answer(MUTATE, review, SHOP, StaticClusterView())
    assert review == before and kept.decision is not None and kept.decision.patch
    consumed = answer(MUTATE, review, SHOP, StaticClusterView(), consume=True)
    assert consumed.review == kept.review
    assert review["request"]["object"]["metadata"]["labels"] == {"a": "b"}  # filled in place


@pytest.mark.parametrize("kind", [{"a": 1}, ["Pod"], None, 7])
def test_a_malformed_kind_is_judged_not_an_internal_error(kind: Any) -> None:
    from webhook.server.admission import MUTATE, VALIDATE, answer
    from webhook.views.files import StaticClusterView

    ps = policies(tenant("shop", {"quota": {"hard": {"pods": "5"}}}))  # quota judges kind Pod only
    for endpoint in (MUTATE, VALIDATE):
        review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                  "request": {"uid": "u", "operation": "CREATE", "namespace": "shop", "object": {**pod(), "kind": kind}}}
        outcome = answer(endpoint, review, ps, StaticClusterView())
        assert outcome.exception is None and outcome.verdict == "allowed", outcome.error


def test_evaluating_never_changes_the_compiled_plan() -> None:
    """Plans are shared by every request: whatever a mutation does to an object, the defaults stay as loaded
    (copy-on-put), and the flat maps of a plan are read-only."""
    from tests.conftest import EXAMPLES, POLICIES
    from webhook.inputs.manifests import read_objects
    from webhook.policy import load_policies

    ps = load_policies([str(POLICIES)])
    before = [repr(m) for p in (*ps.cluster, *ps.tenants) for m in p.mutators]
    for item in read_objects([str(EXAMPLES)]):
        decision = evaluate(from_manifest(item.obj, default_namespace="default"), ps, InMemoryClusterState())
        for op in decision.patch:  # scribble over what the patch carries: it must not be the plan's own data
            if isinstance(op.value, dict):
                op.value["scribbled"] = True
            elif isinstance(op.value, list):
                op.value.append("scribbled")
    assert [repr(m) for p in (*ps.cluster, *ps.tenants) for m in p.mutators] == before
    labels = next(m for p in ps.tenants for m in p.mutators if m.rule == "defaults.labels")
    with pytest.raises(TypeError):
        labels.values["x"] = "y"  # type: ignore[attr-defined]
