"""Properties of mutation over generated pods (hypothesis).

For every generated pod and pod controller, under a policy that fills every default:
- the recorded patch equals jsonpatch's diff of original -> mutated, and rebuilds it;
- a second pass over the mutated object yields no patch (idempotence);
- nothing the user wrote is changed: every original value survives (lists only grow);
- garbage in any field never crashes the engine.
"""

from __future__ import annotations

import json
from typing import Any

import jsonpatch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webhook.views.memory import InMemoryClusterState
from webhook.core.engine import evaluate
from webhook.core.request import AdmissionRequest
from webhook.policy.loader import SourceDoc, build_policy_set

POLICY = {
    "apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": "t"},
    "spec": {
        "namespaces": ["t"],
        "defaults": {
            "labels": {"team": "t", "example.com/owner-x": "y"},
            "annotations": {"a/b": "c"},
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
            "probes": {"liveness": {"httpGet": {"path": "/h", "port": 8080}},
                       "readiness": {"tcpSocket": {"port": "http"}},
                       "startup": {"exec": {"command": ["true"]}}},
            "securityContext": {"pod": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                                "container": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                              "readOnlyRootFilesystem": True}},
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["t"]}]}]},
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 1, "preference": {"matchExpressions": [{"key": "z", "operator": "Exists"}]}}]},
                "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 5, "podAffinityTerm": {"topologyKey": "h", "labelSelector": {"matchLabels": {"a": "b"}}}}]},
            },
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "t", "effect": "NoSchedule"}],
            "nodeSelector": {"pool": "t", "disk": "ssd"},
            "priorityClassName": "t-default",
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}],
        },
    },
}
POLICIES = build_policy_set([SourceDoc(POLICY, "inline", 1)])
RESTRICTED = build_policy_set([SourceDoc({**POLICY, "spec": {**POLICY["spec"], "defaults": {
    "securityContext": "restricted"}}}, "inline", 1)])

names = st.sampled_from(["app", "side", "web", "db"])
quantity = st.sampled_from(["100m", "1", "2", "64Mi", "1Gi", "500m", 2])
resource_map = st.dictionaries(st.sampled_from(["cpu", "memory", "nvidia.com/gpu"]), quantity, max_size=3)
resources = st.one_of(st.none(), st.fixed_dictionaries({}, optional={"requests": resource_map, "limits": resource_map}))
ports = st.lists(st.one_of(st.fixed_dictionaries({"containerPort": st.sampled_from([80, 8080])}),
                           st.fixed_dictionaries({"name": st.sampled_from(["http", "grpc"]),
                                                  "containerPort": st.just(9000)})), max_size=2)
sec = st.fixed_dictionaries({}, optional={
    "allowPrivilegeEscalation": st.booleans(),
    "capabilities": st.fixed_dictionaries({}, optional={"drop": st.lists(st.sampled_from(["ALL", "NET_RAW"]),
                                                                             max_size=2),
                                                        "add": st.lists(st.just("NET_BIND_SERVICE"), max_size=1)}),
    "runAsUser": st.sampled_from([0, 1000]),
    "readOnlyRootFilesystem": st.booleans(),
    "seccompProfile": st.fixed_dictionaries({"type": st.sampled_from(["RuntimeDefault", "Unconfined"])}),
})
probe = st.fixed_dictionaries({"exec": st.fixed_dictionaries({"command": st.just(["x"])})})


@st.composite
def containers(draw: Any, unique: set[str] | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"name": draw(names), "image": "img:1"}
    for key, strategy in (("resources", resources), ("ports", ports), ("securityContext", sec),
                          ("livenessProbe", probe), ("readinessProbe", probe)):
        if draw(st.booleans()):
            value = draw(strategy)
            if value is not None:
                c[key] = value
    return c


label_keys = st.sampled_from(["team", "app", "example.com/owner-x", "a/b", "x~y"])
term = st.fixed_dictionaries({"matchExpressions": st.lists(st.fixed_dictionaries({
    "key": st.sampled_from(["pool", "arch"]), "operator": st.just("In"),
    "values": st.lists(st.sampled_from(["t", "u"]), min_size=1, max_size=2)}), max_size=2)})


@st.composite
def pod_specs(draw: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": draw(st.lists(containers(), min_size=1, max_size=3))}
    if draw(st.booleans()):
        spec["initContainers"] = draw(st.lists(containers(), max_size=2))
    if draw(st.booleans()):
        spec["securityContext"] = draw(st.fixed_dictionaries({}, optional={
            "runAsNonRoot": st.booleans(), "fsGroup": st.just(1),
            "seccompProfile": st.fixed_dictionaries({"type": st.just("Localhost"),
                                                     "localhostProfile": st.just("p.json")})}))
    if draw(st.booleans()):
        spec["tolerations"] = draw(st.lists(st.fixed_dictionaries({
            "key": st.sampled_from(["dedicated", "other"]), "operator": st.sampled_from(["Exists", "Equal"])},
            optional={"effect": st.sampled_from(["NoSchedule", "NoExecute"])}), max_size=2))
    if draw(st.booleans()):
        spec["nodeSelector"] = draw(st.dictionaries(st.sampled_from(["pool", "zone"]), st.sampled_from(["a", "t"]),
                                                    max_size=2))
    if draw(st.booleans()):
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": draw(st.lists(term, min_size=1, max_size=3))}}}
    if draw(st.booleans()):
        spec["priorityClassName"] = "mine"
    elif draw(st.booleans()):
        spec["priority"] = 0
    if draw(st.booleans()):
        spec["topologySpreadConstraints"] = [{"maxSkew": 2, "topologyKey": draw(st.sampled_from(["zone", "host"])),
                                              "whenUnsatisfiable": "DoNotSchedule"}]
    return spec


@st.composite
def objects(draw: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "x"}
    if draw(st.booleans()):
        meta["labels"] = draw(st.dictionaries(label_keys, st.just("v"), max_size=3))
    if draw(st.booleans()):
        meta["annotations"] = draw(st.dictionaries(label_keys, st.just("v"), max_size=2))
    pod_part = {"metadata": meta, "spec": draw(pod_specs())}
    kind = draw(st.sampled_from(["Pod", "Deployment", "CronJob"]))
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", **pod_part}
    template = pod_part if draw(st.booleans()) else {"spec": pod_part["spec"]}
    if kind == "Deployment":
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": template}}
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}}


def preserved(original: Any, mutated: Any, path: str = "") -> list[str]:
    """Paths where a value the user wrote is not in the mutated object any more."""
    if path == "/spec/priority" or path.endswith("/template/spec/priority"):
        return []  # the API server's computed priority is removed when a class is filled
    if isinstance(original, dict):
        if not isinstance(mutated, dict):
            return [path]
        out = []
        for key, value in original.items():
            if value is None:
                continue
            if key not in mutated:
                if path + "/" + key in ("/spec/priority",) or (key == "priority" and path.endswith("spec")):
                    continue
                out.append(f"{path}/{key}")
            else:
                out.extend(preserved(value, mutated[key], f"{path}/{key}"))
        return out
    if isinstance(original, list):
        if not isinstance(mutated, list) or len(mutated) < len(original):
            return [path]
        out = []
        for i, value in enumerate(original):
            out.extend(preserved(value, mutated[i], f"{path}/{i}"))
        return out
    return [] if original == mutated else [path]


def _key(op: dict[str, Any]) -> str:
    return json.dumps(op, sort_keys=True)


def check(obj: dict[str, Any], policies: Any) -> None:
    original = json.loads(json.dumps(obj))
    request = AdmissionRequest(obj=obj, namespace="t")
    decision = evaluate(request, policies, InMemoryClusterState(), validate=False)
    assert obj == original, "the input object must not be modified"
    mutated = decision.mutated
    patch = decision.patch_json()
    assert sorted(map(_key, patch)) == sorted(map(_key, jsonpatch.make_patch(original, mutated).patch))
    assert jsonpatch.apply_patch(original, patch) == mutated
    assert preserved(original, mutated) == []
    again = evaluate(AdmissionRequest(obj=mutated, namespace="t"), policies, InMemoryClusterState(), validate=False)
    assert again.patch == [], again.patch_json()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(objects())
def test_patch_is_exact_minimal_idempotent_and_never_overwrites(obj: dict[str, Any]) -> None:
    check(obj, POLICIES)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(objects())
def test_restricted_preset_properties(obj: dict[str, Any]) -> None:
    check(obj, RESTRICTED)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children, max_size=3)),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(objects(), st.sampled_from(["containers", "initContainers", "securityContext", "affinity", "tolerations",
                                   "nodeSelector", "resources", "metadata", "spec", "ports"]), json_values)
def test_garbage_never_crashes(obj: dict[str, Any], field: str, garbage: Any) -> None:
    root = obj if obj["kind"] == "Pod" else None
    if root is None:
        return
    if field == "metadata":
        obj["metadata"] = garbage if isinstance(garbage, dict) else {"labels": garbage}
    elif field == "spec":
        obj["spec"]["containers"] = garbage
    elif field in ("resources", "ports"):
        obj["spec"]["containers"][0][field] = garbage
    else:
        obj["spec"][field] = garbage
    decision = evaluate(AdmissionRequest(obj=obj, namespace="t"), POLICIES, InMemoryClusterState())
    assert isinstance(decision.allowed, bool)
