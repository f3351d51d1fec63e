"""webhook.core.pod_resources against Kubernetes' own vectors (tests/data/pod_resources_vectors.yaml):
PodRequests/PodLimits, ComputePodQOS, the ResourceQuota pod evaluator (usage and Constraints),
plus a property test against the sidecar KEP formula and malformed-input robustness."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.views.memory import InMemoryClusterState
from webhook.core.pod_resources import (
    QuantityError,
    container_limits,
    container_requests,
    container_requests_and_limits,
    is_pod_level_resources_set,
    pod_is_charged,
    pod_limits,
    pod_requests,
    pod_requests_and_limits,
    qos_class,
    quota_demand,
    quota_missing,
    quota_usage,
)
from webhook.core.quantity import parse_quantity

VECTORS: dict[str, Any] = yaml.safe_load((Path(__file__).parent / "data" / "pod_resources_vectors.yaml").read_text())
NOW = datetime(2025, 1, 1, 0, 1, 0, tzinfo=UTC)


def decimals(resources: Mapping[str, Any]) -> dict[str, Decimal]:
    return {name: parse_quantity(value) for name, value in resources.items()}


def names(cases: list[dict[str, Any]]) -> list[str]:
    return [case["name"] for case in cases]


def upstream_options(case: Mapping[str, Any]) -> dict[str, Any]:
    """PodResourcesOptions as keyword arguments; upstream evaluates the objects as given (no defaulting)."""
    options = dict(case.get("options") or {})
    use_status = options.pop("use_status", False)
    return {"apply_defaults": False, "status": case.get("status") if use_status else None, **options}


# --- PodRequests / PodLimits --------------------------------------------------------------------------


@pytest.mark.parametrize("case", VECTORS["requests_and_limits"], ids=names(VECTORS["requests_and_limits"]))
def test_pod_requests_and_limits(case: dict[str, Any]) -> None:
    options = upstream_options(case)
    assert pod_requests(case["spec"], **options) == decimals(case["requests"])
    assert pod_limits(case["spec"], **options) == decimals(case["limits"])


@pytest.mark.parametrize("case", VECTORS["requests"], ids=names(VECTORS["requests"]))
def test_pod_requests(case: dict[str, Any]) -> None:
    assert pod_requests(case["spec"], **upstream_options(case)) == decimals(case["requests"])


@pytest.mark.parametrize("case", VECTORS["limits"], ids=names(VECTORS["limits"]))
def test_pod_limits(case: dict[str, Any]) -> None:
    assert pod_limits(case["spec"], **upstream_options(case)) == decimals(case["limits"])


@pytest.mark.parametrize("resources,expected", VECTORS["pod_level_set"])
def test_is_pod_level_resources_set(resources: Any, expected: bool) -> None:
    spec = {} if resources is None else {"resources": resources}
    assert is_pod_level_resources_set(spec) is expected


def test_defaulting_is_applied_by_default() -> None:
    spec = {"containers": [{"name": "app", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}
    assert pod_requests(spec) == {"cpu": Decimal(1), "memory": Decimal(2**30)}
    assert pod_requests(spec, apply_defaults=False) == {}


def test_api_server_rounds_resource_lists_to_milli() -> None:
    spec = {"containers": [{"resources": {"requests": {"cpu": "100u"}, "limits": {"cpu": "1500u"}}}]}
    assert pod_requests(spec) == {"cpu": Decimal("0.001")}
    assert pod_limits(spec) == {"cpu": Decimal("0.002")}
    assert pod_requests(spec, apply_defaults=False) == {"cpu": Decimal("0.0001")}


# --- container helpers ---------------------------------------------------------------------------------

CONTAINER_CASES = [
    ({"resources": {"limits": {"cpu": "1"}}}, {"cpu": "1"}, {"cpu": "1"}),
    ({"resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "1", "memory": "1Gi"}}},
     {"cpu": "250m", "memory": "1Gi"}, {"cpu": "1", "memory": "1Gi"}),
    ({"resources": {"requests": {"memory": "64Mi"}}}, {"memory": "64Mi"}, {}),
    ({"resources": {"requests": {"cpu": None}, "limits": {"cpu": "2"}}}, {"cpu": "0"}, {"cpu": "2"}),  # null = 0
    ({"resources": {"requests": {"cpu": "0.5m"}}}, {"cpu": "1m"}, {}),
    ({"resources": {"limits": {"nvidia.com/gpu": 1}}}, {"nvidia.com/gpu": "1"}, {"nvidia.com/gpu": "1"}),
    ({}, {}, {}),
    ({"resources": None}, {}, {}),
    ({"resources": {"requests": "lots"}}, {}, {}),
    ({"resources": {"requests": {1: "1"}}}, {}, {}),
    ("not a container", {}, {}),
    (None, {}, {}),
]


@pytest.mark.parametrize("container,requests,limits", CONTAINER_CASES)
def test_container_requests_and_limits(container: Any, requests: dict[str, str], limits: dict[str, str]) -> None:
    assert container_requests(container) == decimals(requests)
    assert container_limits(container) == decimals(limits)


# --- QoS ------------------------------------------------------------------------------------------------


def qos_spec(case: Mapping[str, Any]) -> dict[str, Any]:
    def container(row: list[Any], index: int) -> dict[str, Any]:
        resources = {k: v for k, v in (("requests", row[0]), ("limits", row[1])) if v is not None}
        out: dict[str, Any] = {"name": f"c{index}", "resources": resources}
        if len(row) > 2:
            out["restartPolicy"] = row[2]
        return out

    spec: dict[str, Any] = {"containers": [container(r, i) for i, r in enumerate(case["containers"])]}
    if "initContainers" in case:
        spec["initContainers"] = [container(r, i) for i, r in enumerate(case["initContainers"])]
    if "pod" in case:
        requests, limits = case["pod"]
        spec["resources"] = {k: v for k, v in (("requests", requests), ("limits", limits)) if v is not None}
    return spec


@pytest.mark.parametrize("case", VECTORS["qos"], ids=names(VECTORS["qos"]))
def test_qos_class(case: dict[str, Any]) -> None:
    assert qos_class(qos_spec(case), apply_defaults=case.get("apply_defaults", True)) == case["expected"]


# --- quota usage -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", VECTORS["usage"], ids=names(VECTORS["usage"]))
def test_quota_usage(case: dict[str, Any]) -> None:
    assert quota_usage(case["pod"], now=NOW) == decimals(case["usage"])


def make_pod(name: str, phase: str, cpu: str | None) -> dict[str, Any]:
    resources = {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}} if cpu is not None else {}
    return {"kind": "Pod", "metadata": {"name": name, "namespace": "ns"},
            "spec": {"containers": [{"name": "c", "resources": resources}]}, "status": {"phase": phase}}


@pytest.mark.parametrize("case", VECTORS["usage_stats"], ids=names(VECTORS["usage_stats"]))
def test_usage_stats_through_cluster_state(case: dict[str, Any]) -> None:
    state = InMemoryClusterState()
    for index, (phase, cpu) in enumerate(case["pods"]):
        state.add_object(make_pod(f"p{index}", phase, cpu))
    assert dict(state.namespace_usage("ns")) == decimals(case["usage"])


def test_deletion_needs_a_clock() -> None:
    pod = {"metadata": {"deletionTimestamp": "2025-01-01T00:00:00Z", "deletionGracePeriodSeconds": 30},
           "spec": {"containers": [{"resources": {"requests": {"cpu": "1"}}}]}}
    assert pod_is_charged(pod) is True  # without "now" the core cannot tell
    assert pod_is_charged(pod, now=NOW) is False
    assert pod_is_charged(pod, now=datetime(2025, 1, 1, 0, 0, 30)) is True  # naive = UTC; not after the grace
    assert quota_usage(pod) == decimals({"count/pods": "1", "pods": "1", "cpu": "1", "requests.cpu": "1"})


@pytest.mark.parametrize("pod", [None, "pod", 3, []])
def test_quota_usage_of_non_objects_is_empty(pod: Any) -> None:
    assert quota_usage(pod) == {}


# --- quota constraints ----------------------------------------------------------------------------------------


def upstream_message(missing: list[tuple[str, str]]) -> str:
    """Render quota_missing like pods.go Constraints: 'must specify <key> for: <names>; ...'."""
    if not missing:
        return ""
    by_key: dict[str, list[str]] = {}
    for container, key in missing:
        by_key.setdefault(key, []).append(container)
    return "must specify " + "; ".join(f"{key} for: {','.join(names)}" for key, names in by_key.items())


@pytest.mark.parametrize("case", VECTORS["constraints"], ids=names(VECTORS["constraints"]))
def test_quota_constraints(case: dict[str, Any]) -> None:
    missing = quota_missing(case["spec"], case["required"])
    assert missing == sorted(missing, key=lambda pair: (pair[1], pair[0]))
    assert upstream_message(missing) == case["error"]


ALL_SPECS = ([c["spec"] for c in VECTORS["requests_and_limits"] + VECTORS["requests"] + VECTORS["limits"]]
             + [c["spec"] for c in VECTORS["constraints"]] + [c["pod"].get("spec") for c in VECTORS["usage"]])


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_one_reading_gives_what_the_separate_functions_give(spec: Any) -> None:
    """The combined readers the rules use (one parse of the pod) agree with the functions mirroring upstream."""
    assert pod_requests_and_limits(spec) == (pod_requests(spec), pod_limits(spec))
    for container in (spec or {}).get("containers") or []:
        assert container_requests_and_limits(container) == (container_requests(container), container_limits(container))
    keys = ["cpu", "memory", "requests.cpu", "limits.memory", "pods", "requests.nvidia.com/gpu"]
    for pod in ({"spec": spec}, {"spec": spec, "status": {"phase": "Succeeded"}}):
        assert quota_demand(pod, keys) == (quota_usage(pod), quota_missing(spec, keys))


def test_quota_missing_ignores_non_string_keys() -> None:
    assert quota_missing({"containers": [{"name": "a"}]}, [None, 3, "cpu"]) == [("a", "cpu")]  # type: ignore[list-item]


# --- malformed input -----------------------------------------------------------------------------------------

GARBAGE_SPECS: list[Any] = [
    None, "spec", 42, [], {},
    {"containers": None}, {"containers": "x"}, {"containers": [None, 1, "c", []]},
    {"containers": [{"resources": []}]}, {"containers": [{"resources": {"requests": None, "limits": 7}}]},
    {"initContainers": {"a": 1}}, {"initContainers": [{"restartPolicy": ["Always"]}]},
    {"overhead": "1"}, {"overhead": None}, {"resources": "big"}, {"resources": {"requests": [1]}},
    {"containers": [{"name": 7, "resources": {"requests": {"cpu": "1"}}}]},
]


@pytest.mark.parametrize("spec", GARBAGE_SPECS, ids=[repr(s)[:40] for s in GARBAGE_SPECS])
def test_garbage_specs_do_not_crash(spec: Any) -> None:
    pod_requests(spec)
    pod_limits(spec)
    pod_requests(spec, status={"containerStatuses": "x", "conditions": [None, {"type": 1}]})
    assert qos_class(spec) in ("Guaranteed", "Burstable", "BestEffort")
    quota_missing(spec, ["cpu", "limits.memory"])
    is_pod_level_resources_set(spec)
    usage = quota_usage({"spec": spec, "status": {"containerStatuses": [None, {"name": None, "resources": 5}]},
                         "metadata": {"deletionTimestamp": "yesterday", "deletionGracePeriodSeconds": "30"}},
                        now=NOW)
    assert usage["count/pods"] == 1 and usage["pods"] == 1


BAD_QUANTITIES: list[Any] = ["1 core", "lots", True, {"value": 1}, [1], "1.5.3", "NaN"]


@pytest.mark.parametrize("bad", BAD_QUANTITIES, ids=[repr(b) for b in BAD_QUANTITIES])
def test_unparseable_quantities_raise(bad: Any) -> None:
    spec = {"containers": [{"name": "a", "resources": {"requests": {"cpu": bad}}}]}
    with pytest.raises(QuantityError):
        pod_requests(spec)
    with pytest.raises(QuantityError):
        quota_usage({"spec": spec})
    with pytest.raises(QuantityError):
        qos_class({"containers": [{"resources": {"limits": {"memory": bad}}}]})
    with pytest.raises(QuantityError):
        pod_requests({"overhead": {"cpu": bad}})


def test_inputs_are_not_mutated() -> None:
    spec = {"containers": [{"name": "a", "resources": {"limits": {"cpu": "1"}}}],
            "resources": {"limits": {"cpu": "2"}}}
    before = repr(spec)
    pod_requests(spec)
    qos_class(spec)
    quota_usage({"spec": spec})
    quota_missing(spec, ["cpu"])
    assert repr(spec) == before


# --- property: the sidecar KEP formula --------------------------------------------------------------------------

_millis = st.integers(min_value=0, max_value=5000)
_container = st.fixed_dictionaries({"cpu": _millis, "always": st.booleans()})


@settings(max_examples=300)
@given(st.lists(_millis, max_size=4), st.lists(_container, max_size=5), st.one_of(st.none(), _millis))
def test_requests_follow_the_sidecar_formula(app: list[int], init: list[dict[str, Any]], overhead: int | None) -> None:
    """max(sum(app) + sum(sidecars), max_i(init_i + sidecars started before i)) + overhead."""
    spec: dict[str, Any] = {
        "containers": [{"name": f"a{i}", "resources": {"requests": {"cpu": f"{m}m"}}} for i, m in enumerate(app)],
        "initContainers": [
            {"name": f"i{i}", "resources": {"requests": {"cpu": f"{c['cpu']}m"}},
             **({"restartPolicy": "Always"} if c["always"] else {})}
            for i, c in enumerate(init)
        ],
    }
    if overhead is not None:
        spec["overhead"] = {"cpu": f"{overhead}m"}
    sidecars, peak = 0, 0
    for c in init:
        if c["always"]:
            sidecars += c["cpu"]
            peak = max(peak, sidecars)
        else:
            peak = max(peak, c["cpu"] + sidecars)
    expected = max(sum(app) + sidecars, peak) + (overhead or 0)
    result = pod_requests(spec)
    if not app and not init and overhead is None:
        assert result == {}
    else:
        assert result["cpu"] == Decimal(expected) / 1000
    usage = quota_usage({"spec": spec})
    assert usage.get("requests.cpu") == result.get("cpu")
