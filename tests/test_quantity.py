"""webhook.core.quantity against Kubernetes' own quantity test vectors (tests/data/quantity_vectors.yaml),
plus a differential test against the kubernetes Python client and round-trip properties."""

from __future__ import annotations

import subprocess
import sys
from decimal import ROUND_UP, Context, Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from webhook.core import quantity as q
from webhook.core.quantity import (
    MAX_INT64,
    QuantityError,
    canonical,
    exact_add,
    format_quantity,
    format_resource,
    parse_quantity,
    parse_quantity_format,
    round_up,
)

VECTORS: dict[str, Any] = yaml.safe_load((Path(__file__).parent / "data" / "quantity_vectors.yaml").read_text())


def ids(rows: list[Any]) -> list[str]:
    return [repr(row[0]) if isinstance(row, list) else repr(row) for row in rows]


# --- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize("text,value,fmt", VECTORS["parse"] + VECTORS["parse_derived"],
                         ids=ids(VECTORS["parse"] + VECTORS["parse_derived"]))
def test_parse_value_and_format(text: str, value: str, fmt: str) -> None:
    assert parse_quantity_format(text) == (Decimal(value), fmt)


@pytest.mark.parametrize("sign", ["-", "+"])
@pytest.mark.parametrize("text,value,fmt", VECTORS["parse"], ids=ids(VECTORS["parse"]))
def test_parse_signed_variants(sign: str, text: str, value: str, fmt: str) -> None:
    expected = Decimal(value) if sign == "+" else -Decimal(value)
    got, got_fmt = parse_quantity_format(sign + text)
    assert got == expected
    assert got_fmt == fmt


@pytest.mark.parametrize("text,positive,value,num,denom,suffix", VECTORS["scan"], ids=ids(VECTORS["scan"]))
def test_scanner_splits_like_upstream(text: str, positive: bool, value: str, num: str, denom: str,
                                      suffix: str) -> None:
    scanned = q._scan(text)
    assert (scanned.positive, scanned.value, scanned.num, scanned.denom, scanned.suffix) == (
        positive, value, num, denom, suffix)


@pytest.mark.parametrize("text", VECTORS["invalid"] + VECTORS["invalid_derived"],
                         ids=ids(VECTORS["invalid"] + VECTORS["invalid_derived"]))
def test_invalid_strings_are_rejected(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


@pytest.mark.parametrize("value", [True, False, None, [], {}, float("inf"), float("nan"), Decimal("NaN"), object()])
def test_non_quantities_are_rejected(value: Any) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(value)


def test_quantity_error_is_a_value_error() -> None:
    assert issubclass(QuantityError, ValueError)
    with pytest.raises(ValueError, match="1 Gi"):
        parse_quantity("1 Gi")


@pytest.mark.parametrize("text,expected", VECTORS["json_whitespace"], ids=ids(VECTORS["json_whitespace"]))
def test_surrounding_whitespace_is_trimmed_like_json_decoding(text: str, expected: str) -> None:
    assert canonical(text) == expected


@pytest.mark.parametrize("number,expected", VECTORS["json_numbers"], ids=ids(VECTORS["json_numbers"]))
def test_json_numbers(number: int | float, expected: str) -> None:  # noqa: PYI041 (ints are JSON integers)
    assert canonical(number) == expected
    assert parse_quantity(number) == parse_quantity(expected)


def test_parse_is_cached_and_fast() -> None:
    q._parse_string.cache_clear()
    for _ in range(1000):
        parse_quantity("1536Mi")
    info = q._parse_string.cache_info()
    assert info.misses == 1 and info.hits == 999


# --- printing -------------------------------------------------------------------------------


@pytest.mark.parametrize("value,fmt,expected,alternate", VECTORS["string"], ids=ids(VECTORS["string"]))
def test_format_matches_quantity_string(value: str, fmt: str, expected: str, alternate: str) -> None:
    assert format_quantity(Decimal(value), fmt) == expected
    # the canonical string is reused verbatim on parse, and means the same value
    assert canonical(expected) == expected
    assert q._parse_string(expected).cached == expected
    assert parse_quantity(expected) == Decimal(value)
    if alternate:
        assert q._parse_string(alternate).cached is None
        assert canonical(alternate) == expected
    if Decimal(value) != 0:
        assert format_quantity(-Decimal(value), fmt) == "-" + expected


@pytest.mark.parametrize("value,fmt,expected", VECTORS["string_unparsed"], ids=ids(VECTORS["string_unparsed"]))
def test_format_values_only_arithmetic_reaches(value: str, fmt: str, expected: str) -> None:
    assert format_quantity(Decimal(value), fmt) == expected


def test_binary_past_ei_round_trips() -> None:
    value = parse_quantity("1Ei") * 1024
    text = format_quantity(value, "BinarySI")
    assert text == "1180591620717411303424"
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text,expected", VECTORS["parse_emit"], ids=ids(VECTORS["parse_emit"]))
def test_parse_emit(text: str, expected: str) -> None:
    assert canonical(text) == expected
    assert canonical("-" + text) == "-" + expected


@pytest.mark.parametrize("text,expected", VECTORS["canonical_derived"], ids=ids(VECTORS["canonical_derived"]))
def test_canonical_derived(text: str, expected: str) -> None:
    assert canonical(text) == expected


@pytest.mark.parametrize("text,value,expected", VECTORS["big"], ids=ids(VECTORS["big"]))
def test_values_around_int64(text: str, value: str, expected: str) -> None:
    assert parse_quantity(text) == Decimal(value)
    assert canonical(text) == (expected or text)


def test_zero_prints_zero() -> None:
    assert canonical("0") == "0"
    for fmt in ("DecimalSI", "BinarySI", "DecimalExponent"):
        assert format_quantity(Decimal("-0"), fmt) == "0"  # type: ignore[arg-type]


def test_adding_zero_keeps_the_suffix() -> None:
    for text in ("100m", "1Gi"):
        value, fmt = parse_quantity_format(text)
        assert format_quantity(exact_add(value, Decimal(0)), fmt) == text
        assert format_quantity(exact_add(Decimal(0), value), fmt) == text


def test_format_rejects_non_finite() -> None:
    with pytest.raises(QuantityError):
        format_quantity(Decimal("Infinity"), "DecimalSI")


# --- comparison and rounding ------------------------------------------------------------------


@pytest.mark.parametrize("x,y,sign", VECTORS["cmp"], ids=ids(VECTORS["cmp"]))
def test_compare(x: str, y: str, sign: int) -> None:
    a, b = parse_quantity(x), parse_quantity(y)
    assert (a > b) - (a < b) == sign
    assert (b > a) - (b < a) == -sign


@pytest.mark.parametrize("text,scale,expected", VECTORS["round_up"], ids=ids(VECTORS["round_up"]))
def test_round_up(text: str, scale: int, expected: str) -> None:
    assert round_up(parse_quantity(text), scale) == Decimal(expected)


@pytest.mark.parametrize("text,value,milli", VECTORS["value_milli"], ids=ids(VECTORS["value_milli"]))
def test_value_and_milli_value_round_away_from_zero(text: str, value: int, milli: int) -> None:
    parsed = parse_quantity(text)
    assert round_up(parsed, 0) == value
    assert round_up(parsed, -3) * 1000 == milli


@pytest.mark.parametrize("milli,fmt,expected", VECTORS["milli_new"], ids=ids(VECTORS["milli_new"]))
def test_milli_quantities(milli: int, fmt: str, expected: str) -> None:
    value = Decimal(milli).scaleb(-3)
    assert format_quantity(value, fmt) == expected  # type: ignore[arg-type]
    assert parse_quantity(expected) == value


@pytest.mark.parametrize("value,fmt,expected", VECTORS["new_set"], ids=ids(VECTORS["new_set"]))
def test_new_quantities(value: int, fmt: str, expected: str) -> None:
    assert format_quantity(Decimal(value), fmt) == expected  # type: ignore[arg-type]
    assert parse_quantity(expected) == value


@pytest.mark.parametrize("value,scale,expected", VECTORS["new_scaled"], ids=ids(VECTORS["new_scaled"]))
def test_scaled_quantities(value: int, scale: int, expected: str) -> None:
    quantity = Decimal(value).scaleb(scale)
    assert format_quantity(quantity, "DecimalSI") == expected
    assert parse_quantity(expected) == quantity


@pytest.mark.parametrize("from_scale,to_scale,expected", VECTORS["scaled_value"], ids=ids(VECTORS["scaled_value"]))
def test_scaled_value(from_scale: int, to_scale: int, expected: int) -> None:
    value = Decimal(1).scaleb(from_scale)
    assert round_up(value, to_scale).scaleb(-to_scale) == expected


def test_exact_add_does_not_round_to_28_digits() -> None:
    big = parse_quantity("9223372036854775807.123456789")
    assert exact_add(big, big) == Decimal("18446744073709551614.246913578")
    assert big + big != Decimal("18446744073709551614.246913578")  # the default context would round


# --- human formatting ----------------------------------------------------------------------------


@pytest.mark.parametrize("resource,value,expected", VECTORS["format_resource"], ids=ids(VECTORS["format_resource"]))
def test_format_resource(resource: str, value: str, expected: str) -> None:
    assert format_resource(resource, Decimal(value)) == expected


# --- purity ------------------------------------------------------------------------------------------


def test_core_modules_do_not_import_forbidden_packages() -> None:
    code = (
        "import sys; import webhook.core.quantity, webhook.core.pod_resources; "
        "bad = [m for m in ('kubernetes', 'aiohttp', 'yaml', 'asyncio') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
    for module in ("quantity", "pod_resources"):
        source = (Path(q.__file__).parent / f"{module}.py").read_text()
        for forbidden in ("import os", "import kubernetes", "import yaml", "import asyncio", "import aiohttp"):
            assert forbidden not in source


# --- differential test against the kubernetes Python client ------------------------------------

from kubernetes.utils.quantity import parse_quantity as k8s_parse

_NANO = Decimal("1e-9")
_BINARY = ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_SUFFIXES = ("", "n", "u", "m", "k", "M", "G", "T", "P", "E", *_BINARY)


def _k8s_value(text: str) -> Decimal | None:
    try:
        with localcontext(Context(prec=200)):  # the client multiplies in the current context
            value = k8s_parse(text)
    except (ValueError, ArithmeticError):
        return None
    return value if value.is_finite() else None


def _expected_from_python_client(text: str, value: Decimal) -> Decimal:
    """The Python client is exact but neither rounds to nano nor caps binary values; the API server does."""
    if value.as_tuple().exponent < -9:  # type: ignore[operator]
        value = value.quantize(_NANO, rounding=ROUND_UP, context=Context(prec=200))
    if text.endswith(_BINARY) and abs(value) > MAX_INT64:
        value = Decimal(MAX_INT64).copy_sign(value)
    return value


_digits = st.text(alphabet="0123456789", min_size=0, max_size=12)
_number = st.builds(lambda i, dot, f: i + (dot + f if dot else ""), _digits, st.sampled_from(["", "."]), _digits)
_exponent = st.builds(lambda e, sign, d: e + sign + d, st.sampled_from(["e", "E"]), st.sampled_from(["", "+", "-"]),
                      st.integers(min_value=0, max_value=30).map(str))
_quantity = st.builds(
    lambda sign, number, suffix: sign + number + suffix,
    st.sampled_from(["", "+", "-"]),
    _number,
    st.one_of(st.sampled_from(_SUFFIXES), _exponent),
)
_noise = st.text(alphabet="0123456789.+-eEinumkKMGTPi _xX\t", max_size=14)


@settings(max_examples=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_quantity, _noise))
@example("1.5Gi")
@example("0.0000000001")
@example("100.035Ki")
@example("9Ei")
def test_agrees_with_kubernetes_client_where_both_accept(text: str) -> None:
    expected = _k8s_value(text)
    try:
        ours = parse_quantity(text)
    except QuantityError:
        return
    if expected is None:
        return
    if text.strip() != text:  # the client keeps surrounding space inside Decimal(); same value
        expected = _k8s_value(text.strip())
        assert expected is not None
    assert ours == _expected_from_python_client(text.strip(), expected)


@settings(max_examples=1000)
@given(_quantity)
def test_grammar_strings_with_a_digit_are_accepted(text: str) -> None:
    """Every sign/number/suffix string with at least one digit parses (and re-prints to the same value)."""
    if not any(c.isdigit() for c in text.split("e")[0].split("E")[0]):
        return
    value = parse_quantity(text)
    assert parse_quantity(canonical(text)) == value


# Strings the kubernetes client accepts and the API server refuses.
CLIENT_ONLY = ["1 Gi", "1\tGi", "\t1", "1\n", "1K", "1_000", "Infinity", "NaN", "1e3Ki", "1e3k", "\u0661",
               " 1 Mi", "1e5M", "-Infinity", "+1_0", "1.0E+3k", "1.5e3E"]


@pytest.mark.parametrize("text", CLIENT_ONLY)
def test_strings_only_the_python_client_accepts(text: str) -> None:
    k8s_parse(text)  # the client is lenient
    with pytest.raises(QuantityError):
        parse_quantity(text)


@settings(max_examples=1000)
@given(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers(min_value=-9, max_value=30),
    st.sampled_from(["DecimalSI", "BinarySI", "DecimalExponent"]),
)
def test_format_round_trips(coefficient: int, exponent: int, fmt: str) -> None:
    value = Decimal(coefficient).scaleb(exponent)
    text = format_quantity(value, fmt)  # type: ignore[arg-type]
    assert " " not in text and "." not in text
    expected = value
    if fmt == "BinarySI" and abs(value) > MAX_INT64 and text.endswith(_BINARY):
        expected = Decimal(MAX_INT64).copy_sign(value)  # parsing caps binary-suffixed values
    assert parse_quantity(text) == expected
    assert parse_quantity(canonical(text)) == expected


@settings(max_examples=500)
@given(st.decimals(allow_nan=False, allow_infinity=False, places=9, min_value=-(10**12), max_value=10**12))
def test_canonical_is_stable(value: Decimal) -> None:
    for fmt in ("DecimalSI", "DecimalExponent"):
        text = format_quantity(value, fmt)  # type: ignore[arg-type]
        assert canonical(text) == text  # the API server keeps what it printed
    # A BinarySI value without a binary suffix prints as a plain number, which reads back as
    # DecimalSI ("3125000" -> "3125k"), exactly as upstream; one more round is stable.
    once = canonical(format_quantity(value, "BinarySI"))
    assert canonical(once) == once
    assert parse_quantity(once) == value
