"""pods/resize (in-place pod resize): the resources rules judge the new values, quota charges the increase,
nothing is mutated, and rules a resize cannot affect are not judged again."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest

from webhook.core.cluster_state import add_usage
from webhook.views.memory import InMemoryClusterState
from webhook.core.engine import evaluate
from webhook.core.plan import PolicySet
from webhook.core.request import AdmissionRequest, from_review
from webhook.policy.loader import SourceDoc, build_policy_set


def policies(*specs: dict[str, Any], name: str = "ml") -> PolicySet:
    docs = [{"apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": name},
             "spec": {"namespaces": [name, f"{name}-*"], **spec}} for spec in specs]
    return build_policy_set([SourceDoc(d, "inline", i) for i, d in enumerate(docs, 1)])


def pod(name: str, cpu: str | None, memory: str | None = "1Gi", *, namespace: str = "ml",
        limits: bool = True, **spec: Any) -> dict[str, Any]:
    values = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    resources: dict[str, Any] = {"requests": dict(values)}
    if limits:
        resources["limits"] = dict(values)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"containers": [{"name": "app", "image": "registry.example.com/ml/app:1",
                                     "resources": resources}], **spec},
            "status": {"phase": "Running"}}


def resize(old: dict[str, Any], cpu: str | None, memory: str | None = "1Gi", *, limits: bool = True
           ) -> AdmissionRequest:
    """The UPDATE the API server sends for pods/resize: the whole pod, only container resources changed."""
    new = copy.deepcopy(old)
    fresh = pod("x", cpu, memory, limits=limits)
    new["spec"]["containers"][0]["resources"] = fresh["spec"]["containers"][0]["resources"]
    return AdmissionRequest(obj=new, old_obj=old, namespace=old["metadata"]["namespace"], operation="UPDATE",
                            subresource="resize")


def cluster(*pods: dict[str, Any]) -> InMemoryClusterState:
    state = InMemoryClusterState()
    for ns in ("ml", "ml-2", "other"):
        state.add_namespace(ns)
    for p in pods:
        state.add_pod(p)
    return state


def messages(decision: Any) -> list[str]:
    return [v.summary() for v in decision.violations]


QUOTA = {"quota": {"hard": {"requests.cpu": "4", "requests.memory": "8Gi"}}}
QUOTA_LIMITS = {"quota": {"hard": {"requests.cpu": "4", "requests.memory": "8Gi", "limits.cpu": "4"}}}
MAXIMA = {"rules": {"maxResources": {"perContainer": {"cpu": "8"}, "perPod": {"memory": "16Gi"}}}}


def test_resizing_a_small_pod_to_a_huge_one_is_denied_by_maxima_and_quota() -> None:
    """The adversarial run: a running 1-cpu pod resized to 64 cpu / 256Gi passed every rule."""
    x = pod("x", "1")
    state = cluster(x, pod("y", "2"))
    d = evaluate(resize(x, "64", "256Gi"), policies({**QUOTA_LIMITS, **MAXIMA}), state)
    assert not d.allowed
    assert messages(d) == [
        '[ml/maxResources] container "app" cpu request 64 exceeds the per-container maximum 8 (resize of pod x)',
        '[ml/maxResources] container "app" cpu limit 64 exceeds the per-container maximum 8 (resize of pod x)',
        "[ml/maxResources] pod memory request 256Gi exceeds the per-pod maximum 16Gi (resize of pod x)",
        "[ml/maxResources] pod memory limit 256Gi exceeds the per-pod maximum 16Gi (resize of pod x)",
        "[ml/quota] tenant ml: requests.cpu 3 + 63 (resize of pod x) > 4 hard",
        "[ml/quota] tenant ml: requests.memory 2Gi + 255Gi (resize of pod x) > 8Gi hard",
        "[ml/quota] tenant ml: limits.cpu 3 + 63 (resize of pod x) > 4 hard",
    ]
    assert d.violations[4].actual == {"used": "3", "requested": "63"} and d.violations[4].required == "4"


def test_the_same_resize_through_an_admission_review() -> None:
    from webhook.server.admission import MUTATE, VALIDATE, answer
    from webhook.views.files import StaticClusterView

    x = pod("x", "1")
    view = StaticClusterView()
    view.add_namespace("ml")
    view.add_pod(x)
    request = resize(x, "64", "256Gi")
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
              "request": {"uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                          "resource": {"group": "", "version": "v1", "resource": "pods"}, "subResource": "resize",
                          "operation": "UPDATE", "namespace": "ml", "name": "x",
                          "object": request.obj, "oldObject": x}}
    assert from_review(review).subresource == "resize"
    ps = policies({**QUOTA, **MAXIMA, "defaults": {"labels": {"team": "ml"}}})
    outcome = answer(VALIDATE, copy.deepcopy(review), ps, view)
    assert outcome.verdict == "denied"
    assert "requests.cpu 1 + 63 (resize of pod x) > 4 hard" in outcome.review["response"]["status"]["message"]
    mutated = answer(MUTATE, copy.deepcopy(review), ps, view)
    assert "patch" not in mutated.review["response"]


@pytest.mark.parametrize("cpu,denial", [
    ("2", None),
    ("1500m", None),
    ("2001m", "requests.cpu 3 + 1001m (resize of pod x) > 4 hard"),
    ("3", "requests.cpu 3 + 2 (resize of pod x) > 4 hard"),
])
def test_quota_charges_the_increase_only(cpu: str, denial: str | None) -> None:
    x = pod("x", "1", limits=False)
    state = cluster(x, pod("y", "2", limits=False))  # the tenant uses 3 of 4 cpu, x's 1 included
    d = evaluate(resize(x, cpu, limits=False), policies(QUOTA), state)
    assert messages(d) == ([f"[ml/quota] tenant ml: {denial}"] if denial else [])


def test_quota_is_summed_over_the_tenants_namespaces_and_per_namespace() -> None:
    x = pod("x", "1", limits=False, namespace="ml-2")
    state = cluster(x, pod("y", "1", limits=False), pod("z", "1", limits=False, namespace="other"))
    ps = policies({"quota": {"hard": {"requests.cpu": "4"}, "perNamespace": {"requests.cpu": "2"}}})
    assert evaluate(resize(x, "2", limits=False), ps, state).allowed  # ml: 1, ml-2: 2; other is not ml's
    d = evaluate(resize(x, "3", limits=False), ps, state)
    assert messages(d) == ["[ml/quota] namespace ml-2: requests.cpu 1 + 2 (resize of pod x) > 2 hard"]
    d = evaluate(resize(x, "4", limits=False), ps, state)
    assert messages(d) == ["[ml/quota] tenant ml: requests.cpu 2 + 3 (resize of pod x) > 4 hard",
                           "[ml/quota] namespace ml-2: requests.cpu 1 + 3 (resize of pod x) > 2 hard"]


def test_shrinking_is_allowed_even_over_quota_and_only_growing_keys_count() -> None:
    x = pod("x", "2", "4Gi", limits=False)
    state = cluster(x, pod("y", "4", "4Gi", limits=False))  # 6 cpu used, hard lowered to 4 since
    ps = policies(QUOTA)
    assert evaluate(resize(x, "1", "4Gi", limits=False), ps, state).allowed
    assert evaluate(resize(x, "2", "4Gi", limits=False), ps, state).allowed  # nothing grows
    # cpu shrinks, memory grows: only memory is charged (8Gi used + 1Gi > 8Gi)
    d = evaluate(resize(x, "1", "5Gi", limits=False), ps, state)
    assert messages(d) == ["[ml/quota] tenant ml: requests.memory 8Gi + 1Gi (resize of pod x) > 8Gi hard"]


def test_a_pending_decrease_still_counts_at_its_allocated_value() -> None:
    """Usage reads the status as upstream does: a pod resized down whose kubelet has not acted yet holds its
    allocated resources, so growing it back up to them costs nothing."""
    x = pod("x", "1", limits=False)
    x["status"]["containerStatuses"] = [{"name": "app", "allocatedResources": {"cpu": "3"},
                                         "resources": {"requests": {"cpu": "3"}}}]
    state = cluster(x, pod("y", "1", limits=False))  # 3 + 1 = 4 used
    ps = policies(QUOTA)
    assert evaluate(resize(x, "3", limits=False), ps, state).allowed
    d = evaluate(resize(x, "3500m", limits=False), ps, state)
    assert messages(d) == ["[ml/quota] tenant ml: requests.cpu 4 + 500m (resize of pod x) > 4 hard"]


def test_a_pod_the_view_does_not_know_counts_as_its_old_object() -> None:
    """The view may not have seen the pod yet; the old object is the pod as the API server holds it."""
    x = pod("x", "1", limits=False)
    unseen = cluster(pod("y", "3", limits=False))  # 3 used without x
    d = evaluate(resize(x, "2", limits=False), policies(QUOTA), unseen)
    assert messages(d) == ["[ml/quota] tenant ml: requests.cpu 4 + 1 (resize of pod x) > 4 hard"]
    assert evaluate(resize(x, "2", limits=False), policies(QUOTA), cluster(x, pod("y", "2", limits=False))).allowed


class ReservingState(InMemoryClusterState):
    """A view that, like the watched one, counts an admitted resize's increase in the namespace usage until the
    watch reports the resized pod, while ``pod_usage`` still reports the pod as last watched."""

    def __init__(self) -> None:
        super().__init__()
        self.reserved: dict[str, dict[str, Decimal]] = {}

    def namespace_usage(self, namespace: str) -> Mapping[str, Decimal]:
        usage = dict(super().namespace_usage(namespace))
        add_usage(usage, self.reserved.get(namespace, {}))
        return usage

    def usage_of(self, namespaces: frozenset[str]) -> Mapping[str, Decimal]:
        usage = dict(super().usage_of(namespaces))
        for namespace in namespaces:
            add_usage(usage, self.reserved.get(namespace, {}))
        return usage


def test_successive_resizes_are_charged_once_each() -> None:
    x = pod("x", "1", limits=False)
    first = resize(x, "2", limits=False)
    assert first.obj is not None
    resized = copy.deepcopy(dict(first.obj))
    ps = policies(QUOTA)
    # a view that already reports the resized pod (the dry-run's in-memory view replaces it)
    state = cluster(resized, pod("y", "1", limits=False))  # 2 + 1 = 3 used
    assert evaluate(resize(resized, "3", limits=False), ps, state).allowed
    d = evaluate(resize(resized, "3500m", limits=False), ps, state)
    assert messages(d) == ["[ml/quota] tenant ml: requests.cpu 3 + 1500m (resize of pod x) > 4 hard"]
    # a view that still reports x at 1 cpu and reserves the first resize's increase (+1): 1 + 1 + 1 = 3 used
    reserving = ReservingState()
    reserving.add_namespace("ml")
    reserving.add_pod(x)
    reserving.add_pod(pod("y", "1", limits=False))
    reserving.reserved["ml"] = {"requests.cpu": Decimal(1), "cpu": Decimal(1)}
    assert evaluate(resize(resized, "3", limits=False), ps, reserving).allowed
    d = evaluate(resize(resized, "3500m", limits=False), ps, reserving)
    assert messages(d) == ["[ml/quota] tenant ml: requests.cpu 3 + 1500m (resize of pod x) > 4 hard"]


def test_a_resent_create_is_still_not_counted_twice() -> None:
    x = pod("x", "2", limits=False)
    state = cluster(x, pod("y", "2", limits=False))
    ps = policies(QUOTA)
    assert evaluate(AdmissionRequest(obj=x, namespace="ml"), ps, state).allowed
    d = evaluate(AdmissionRequest(obj=pod("z", "1", limits=False), namespace="ml"), ps, state)
    assert messages(d) == ["[ml/quota] tenant ml: requests.cpu 4 + 1 requested > 4 hard"]


def test_quota_demands_explicit_values_on_resize_too() -> None:
    x = pod("x", None, "1Gi", limits=False)
    d = evaluate(resize(x, None, "2Gi", limits=False), policies(QUOTA), cluster(x))
    assert messages(d) == ['[ml/quota] container "app" must specify requests.cpu: it is under quota (tenant ml) '
                           "(resize of pod x)"]


def test_resources_rules_judge_the_new_values() -> None:
    ps = policies({"rules": {"requireRequests": ["cpu", "memory"], "requireLimits": ["memory"],
                             "qosClass": "Guaranteed"}})
    x = pod("x", "1")
    assert evaluate(resize(x, "2", "2Gi"), ps, cluster(x)).allowed
    d = evaluate(resize(x, None, "2Gi", limits=False), ps, cluster(x))
    assert messages(d) == [
        '[ml/requireRequests] container "app" has no cpu request (policy requires requests for cpu, memory) '
        "(resize of pod x)",
        '[ml/requireLimits] container "app" has no memory limit (policy requires limits for memory) '
        "(resize of pod x)",
        '[ml/qosClass] pod QoS class is Burstable, policy requires Guaranteed: container "app" has no cpu limit '
        "(resize of pod x)",
    ]
    assert d.violations[0].field == "spec.containers[0].resources.requests.cpu"


def test_pod_level_resources_count_on_resize() -> None:
    x = pod("x", "1", resources={"requests": {"cpu": "1"}, "limits": {"cpu": "1"}})
    new = copy.deepcopy(x)
    new["spec"]["resources"] = {"requests": {"cpu": "16"}, "limits": {"cpu": "16"}}
    request = AdmissionRequest(obj=new, old_obj=x, namespace="ml", operation="UPDATE", subresource="resize")
    d = evaluate(request, policies({"rules": {"maxResources": {"perPod": {"cpu": "8"}}}, **QUOTA_LIMITS}),
                 cluster(x))
    assert messages(d) == ["[ml/maxResources] pod cpu request 16 exceeds the per-pod maximum 8 (resize of pod x)",
                           "[ml/maxResources] pod cpu limit 16 exceeds the per-pod maximum 8 (resize of pod x)",
                           "[ml/quota] tenant ml: requests.cpu 1 + 15 (resize of pod x) > 4 hard",
                           "[ml/quota] tenant ml: limits.cpu 1 + 15 (resize of pod x) > 4 hard"]


def test_rules_a_resize_cannot_affect_are_not_judged_again() -> None:
    """A pod admitted before stricter rules (privileged, foreign image, no probes, no pinned pool) can still be
    resized within its resource rules."""
    ps = policies({"rules": {"podSecurity": "restricted", "allowedRegistries": ["registry.example.com/other"],
                             "requireProbes": ["liveness"], "requiredNodeLabels": ["pool"],
                             "allowedPriorityClasses": ["low"], **MAXIMA["rules"]},
                   "quota": QUOTA["quota"]})
    x = pod("x", "1", priorityClassName="high", hostNetwork=True)
    x["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    state = cluster(x)
    assert not evaluate(AdmissionRequest(obj=x, namespace="ml"), ps, state).allowed  # as a new pod: denied
    d = evaluate(resize(x, "2", "2Gi"), ps, state)
    assert d.allowed and d.violations == [] and d.warnings == [], messages(d)
    d = evaluate(resize(x, "9", "2Gi"), ps, state)
    assert {v.rule for v in d.violations} == {"maxResources", "quota"}


def test_a_resize_is_never_mutated() -> None:
    tenant = {"apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": "ml"},
              "spec": {"namespaces": ["ml"],
                       "defaults": {"labels": {"team": "ml"}, "annotations": {"a": "b"},
                                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                                                  "limits": {"cpu": "1", "memory": "1Gi"}},
                                    "securityContext": {"preset": "restricted"},
                                    "tolerations": [{"key": "pool", "operator": "Exists"}],
                                    "nodeSelector": {"pool": "ml"}, "priorityClassName": "low"}}}
    audit = {"apiVersion": "tenantguard.io/v1alpha1", "kind": "ClusterPolicy", "metadata": {"name": "audit"},
             "spec": {"enforcement": "Audit", "defaults": {"labels": {"audit": "x"}}}}
    ps = build_policy_set([SourceDoc(tenant, "inline", 1), SourceDoc(audit, "inline", 2)])
    x = pod("x", None, None, limits=False)
    request = resize(x, None, None, limits=False)
    before = copy.deepcopy(request.obj)
    for validate in (False, True):
        d = evaluate(request, ps, cluster(x), mutate=True, validate=validate)
        assert d.patch == [] and d.warnings == [] and d.allowed
        assert d.mutated == before
    assert request.obj == before


def test_warn_and_audit_route_resize_findings() -> None:
    x = pod("x", "1")
    warn = evaluate(resize(x, "9"), policies({"enforcement": "Warn", **MAXIMA}), cluster(x))
    assert warn.allowed and warn.warnings == [
        '[ml/maxResources] container "app" cpu request 9 exceeds the per-container maximum 8 (resize of pod x)',
        '[ml/maxResources] container "app" cpu limit 9 exceeds the per-container maximum 8 (resize of pod x)']
    audit = evaluate(resize(x, "9"), policies({"enforcement": "Audit", **MAXIMA}), cluster(x))
    assert audit.allowed and len(audit.audit) == 2


def test_cluster_policies_judge_resizes_too() -> None:
    ps = build_policy_set([SourceDoc({"apiVersion": "tenantguard.io/v1alpha1", "kind": "ClusterPolicy",
                                      "metadata": {"name": "baseline"}, "spec": MAXIMA}, "inline", 1)])
    x = pod("x", "1", namespace="anywhere")
    d = evaluate(resize(x, "9"), ps, cluster(x))
    assert not d.allowed and {v.policy for v in d.violations} == {"baseline"}


def test_other_pod_subresources_stay_unjudged() -> None:
    x = pod("x", "1")
    for sub in ("status", "binding", "eviction"):
        request = AdmissionRequest(obj=pod("x", "64"), old_obj=x, namespace="ml", operation="UPDATE",
                                   subresource=sub)
        d = evaluate(request, policies({**QUOTA, **MAXIMA}), cluster(x))
        assert d.allowed and d.skipped == f"subresource {sub} is not judged"
