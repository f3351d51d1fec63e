"""`--output json` is ``json.dumps(document, indent=2, default=str)`` and a newline, byte for byte,
whichever writer produced it (orjson nearly always, json.dumps where orjson would differ).

- properties (hypothesis): generated documents of every kind, and result documents shaped like
  the dry-run's (Kubernetes objects with odd values in them), give json.dumps' exact text;
  documents of plain values go through orjson;
- every result the examples and the golden cases produce, through orjson, byte for byte;
- each case where orjson's own output differs (non-ASCII, DEL, small floats, NaN, dates, ...).
"""

from __future__ import annotations

import collections
import datetime
import enum
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import EXAMPLES, POLICIES, golden_suites, run_cli
from webhook.actions import dry_run as dryrun
from webhook.actions.policy_test import load_suite, run_suite
from webhook.cli.common import load_policy_set
from webhook.cli.output import document, json_text, orjson_text
from webhook.inputs.manifests import read_objects
from webhook.views.files import load_state


def reference(value: Any) -> str:
    """The contract: what the json output has always been."""
    return json.dumps(value, indent=2, default=str) + "\n"


def outcome(write: Any, value: Any) -> tuple[str, str]:
    try:
        return "text", write(value)
    except Exception as exc:  # noqa: BLE001 - both writers must fail alike too
        return "error", type(exc).__name__


# --- generated documents -------------------------------------------------------------------------------

UTC = datetime.UTC
text = st.one_of(
    st.text(st.characters(codec="ascii"), max_size=12),
    st.text(max_size=12),  # any code point, surrogates aside
    st.sampled_from(["é", "日本語", "😀", "\x7f", "\x00\x1f\b\f\n\r\t", "\u2028\u2029", '"\\/', "</script>",
                     ""]),
)
floats = st.one_of(
    st.floats(),  # NaN, infinities, subnormals, -0.0 included
    st.floats(min_value=-1e-3, max_value=1e-3),
    st.sampled_from([1e-5, 1.5e-7, 9.99e-5, 1e-4, 0.1, 1.0, 1e16, 1.2345678901234568e20, 5e-324, -0.0]),
)
integers = st.one_of(st.integers(min_value=-(2**63), max_value=2**64 - 1), st.integers(), st.just(2**64))
scalars = st.one_of(
    text, integers, floats, st.booleans(), st.none(),
    st.decimals(), st.dates(), st.datetimes(timezones=st.sampled_from([None, UTC])),
)
plain_scalars = st.one_of(  # what manifests are made of: orjson must write these itself
    text, st.integers(min_value=-(2**63), max_value=2**64 - 1), st.booleans(), st.none(),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f == 0 or abs(f) >= 1e-4),
    st.decimals(allow_nan=False), st.dates(), st.datetimes(timezones=st.sampled_from([None, UTC])),
)


def nested(leaves: st.SearchStrategy[Any], keys: st.SearchStrategy[Any] = text) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(keys, children, max_size=4),
            st.tuples(children, children),
            st.just({}), st.just([]),
        ),
        max_leaves=25,
    )


any_value = nested(scalars, st.one_of(text, text, st.integers(), st.booleans(), st.none(), st.floats()))
plain_value = nested(plain_scalars)

# shaped like a dry-run document: Kubernetes objects, with anything in the places users write anything
label_keys = st.sampled_from(["app", "team", "app.kubernetes.io/name", "example.com/owner", "tenant"])
labels = st.dictionaries(label_keys, text, max_size=3)
resource_names = st.sampled_from(["cpu", "memory", "nvidia.com/gpu"])
container = st.fixed_dictionaries(
    {"name": st.sampled_from(["app", "sidecar", "init"]),
     "image": st.sampled_from(["nginx", "ghcr.io/a/b:1.2"])},
    optional={
        "resources": st.fixed_dictionaries({}, optional={
            "requests": st.dictionaries(resource_names, st.one_of(text, integers, floats)),
            "limits": st.dictionaries(resource_names, st.one_of(text, integers))}),
        "env": st.lists(st.fixed_dictionaries({"name": text, "value": st.one_of(text, scalars)}), max_size=3),
        "ports": st.lists(st.fixed_dictionaries({"containerPort": integers}), max_size=2),
        "args": st.lists(text, max_size=3),
        "securityContext": any_value,
    },
)
k8s_object = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from(["v1", "apps/v1"]),
        "kind": st.sampled_from(["Pod", "Deployment"]),
        "metadata": st.fixed_dictionaries({"name": text}, optional={
            "namespace": text, "labels": labels, "annotations": st.dictionaries(text, text, max_size=3),
            "creationTimestamp": st.one_of(st.none(), st.datetimes(timezones=st.just(UTC)))}),
        "spec": st.fixed_dictionaries(
            {"containers": st.lists(container, min_size=1, max_size=3)},
            optional={"nodeSelector": labels, "tolerations": st.lists(any_value, max_size=2),
                      "x-anything": any_value}),
    },
)
violation = st.fixed_dictionaries(
    {"policy": text, "rule": st.sampled_from(["quota", "podSecurity", "requireLimits"]), "message": text},
    optional={"container": text, "field": st.tuples(text, st.integers(0, 3)), "actual": any_value,
              "required": any_value, "check": text,
              "enforcement": st.sampled_from(["Enforce", "Warn", "Audit"])},
)
patch_op = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "replace"]), "path": text, "value": any_value})
result = st.fixed_dictionaries(
    {"apiVersion": text, "kind": text, "namespace": text, "name": text, "tenant": st.one_of(st.none(), text),
     "allowed": st.booleans(), "violations": st.lists(violation, max_size=2),
     "warnings": st.lists(text, max_size=2), "patch": st.lists(patch_op, max_size=3), "object": k8s_object},
    optional={"auditAnnotations": st.dictionaries(text, text, max_size=2), "skipped": text},
)
result_document = st.builds(
    lambda results, denied: {"results": results,
                             "summary": {"allowed": len(results) - denied, "denied": denied}},
    st.lists(result, max_size=4), st.integers(0, 4),
)

PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(any_value)
def test_any_document_is_written_as_json_dumps_writes_it(value: Any) -> None:
    assert outcome(json_text, value) == outcome(reference, value)


@PROPERTY
@given(result_document)
def test_dry_run_shaped_documents_are_written_as_json_dumps_writes_them(doc: dict[str, Any]) -> None:
    assert json_text(doc) == reference(doc)


@PROPERTY
@given(plain_value)
def test_plain_documents_go_through_orjson(value: Any) -> None:
    """No fallback for what manifests hold: text in any script, 64-bit ints, floats, dates, booleans."""
    assert orjson_text(value) == reference(value)


# --- what the shipped policies, the examples and the golden cases produce --------------------------------

def test_every_example_result_is_written_by_orjson_byte_for_byte() -> None:
    results = dryrun.run(read_objects([str(EXAMPLES)]), load_policy_set([str(POLICIES)]), load_state([]))
    assert len(results) > 10
    doc = document(results)
    assert orjson_text(doc) == reference(doc)
    for one in results:
        assert orjson_text(document([one])) == reference(document([one]))


@pytest.mark.parametrize("path", golden_suites(), ids=lambda p: str(p.relative_to(p.parents[1])))
def test_every_golden_result_is_written_by_orjson_byte_for_byte(path: Path) -> None:
    suite = load_suite(path)
    results = []
    for case, ran in zip(suite.cases, run_suite(suite), strict=True):
        received = case.request.obj if case.request.obj is not None else case.request.old_obj
        results.append(dryrun.Result(case.request, ran.decision, dict(received or {})))
    doc = document(results)
    assert orjson_text(doc) == reference(doc)


def test_the_cli_prints_what_json_dumps_prints(tmp_path: Path) -> None:
    """End to end, with what YAML makes of odd scalars: dates, timestamps, floats, non-ASCII, DEL."""
    f = tmp_path / "odd.yaml"
    f.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: odd\n  namespace: trading\n"
        "  annotations: {note: \"café ☕ 😀 \\x7f\", since: '2024-01-02'}\n"
        "spec:\n  containers:\n  - name: app\n    image: nginx\n"
        "    env:\n    - {name: A, value: 2024-01-02}\n    - {name: B, value: 2024-01-02T03:04:05Z}\n"
        "    - {name: C, value: 1.5e-7}\n    - {name: D, value: .inf}\n    - {name: E, value: 0.25}\n"
        "    - {name: F, value: 123456789012345678901234567890}\n",
        encoding="utf-8",
    )
    result = run_cli("dry-run", "--policies", str(POLICIES), "--output", "json", str(f))
    assert result.code in (0, 1), result.err
    objects = read_objects([str(f)])
    results = dryrun.run(objects, load_policy_set([str(POLICIES)]), load_state([]))
    assert result.out == reference(document(results))
    assert result.out.isascii()
    assert "\\u00e9" in result.out and "\\ud83d\\ude00" in result.out and "\\u007f" in result.out
    assert '"value": 1.5e-07' in result.out and '"value": Infinity' in result.out
    assert '"value": "2024-01-02 03:04:05+00:00"' in result.out


# --- each difference between orjson and json.dumps, one by one --------------------------------------------

class Colour(enum.Enum):
    RED = 1


class Shade(enum.StrEnum):
    DARK = "dark"


Point = collections.namedtuple("Point", "x y")


def _reordered() -> collections.OrderedDict[str, int]:
    od = collections.OrderedDict(a=1, b=2)
    od.move_to_end("a")
    return od


def _deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = {"x": [value]}
    return value


@pytest.mark.parametrize("value", [
    {"s": "é"}, {"é": "key"}, {"s": "😀"}, {"s": "\x7f"}, {"s": "\u2028"},
    {"s": "\x00\x01\x1f\b\f\n\r\t\"\\/"},
    {"f": 1e-5}, {"f": 1.5e-7}, {"f": 9.99e-5}, {"f": 1e-4}, {"f": 1e16}, {"f": 1e22}, {"f": -0.0},
    {"f": 5e-324},
    {"f": float("nan")}, {"f": float("inf")}, {"f": -float("inf")},
    {"i": 2**63}, {"i": 2**64 - 1}, {"i": 2**64}, {"i": -(2**63) - 1}, {"i": 10**40},
    {"d": datetime.date(2027, 6, 30)}, {"t": datetime.datetime(2024, 1, 2, 3, 4, 5)},
    {"t": datetime.datetime(2024, 1, 2, 3, 4, 5, 600, tzinfo=UTC)},
    {"n": Decimal("0.25")}, {"n": Decimal("1E+3")},
    {"empty": {}, "none": [], "nested": [{}, [], [[]], {"a": {}}]}, {}, [], "", 0, None, True,
    {1: "int key"}, {True: "bool key"}, {None: "null key"}, {1.5: "float key"}, {"a": 1, 1: "b"},
    {"e": Colour.RED}, {"e": Shade.DARK}, {"p": Point(1, 2)}, {"o": _reordered()}, {"s": {1, 2}}, {"b": b"x"},
    {"lone": "\ud800"}, {"t": (1, "two", None)}, _deep(300), _deep(100),
])
def test_each_difference_from_orjson_is_resolved(value: Any) -> None:
    assert json_text(value) == reference(value)


def test_a_structure_inside_itself_fails_as_json_dumps_fails() -> None:
    loop: list[Any] = []
    loop.append(loop)
    assert outcome(json_text, loop) == outcome(reference, loop) == ("error", "ValueError")


@pytest.mark.parametrize("value", [{"s": "é"}, {"s": "😀 \x7f"}, {"f": 0.5}, {"d": datetime.date(2027, 6, 30)},
                                   {"n": Decimal("1.5")}, {"i": 2**64 - 1}, _deep(100)])
def test_orjson_writes_the_common_cases_itself(value: Any) -> None:
    assert orjson_text(value) == reference(value)
