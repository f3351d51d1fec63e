"""Kubernetes ``resource.Quantity`` semantics, exactly, on :class:`decimal.Decimal`.

Mirrors k8s.io/apimachinery/pkg/api/resource (quantity.go, suffix.go, amount.go)
as of upstream master:

* :func:`parse_quantity` accepts what the API server accepts when it decodes a
  quantity (``Quantity.UnmarshalJSON`` -> ``ParseQuantity``): the same scanner,
  the same suffix table, the same rounding (away from zero, to 10^-9) and the
  same silent cap of binary-suffixed values at 2^63-1.
* :func:`format_quantity` prints like ``Quantity.CanonicalizeBytes``.
* :func:`canonical` is what the API server stores and echoes for an input
  string (``Quantity.String()`` after parsing, including the reuse of an
  already-canonical input string verbatim).

Pure: stdlib only (the ``kubernetes`` package would pull in its whole client).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import MAX_EMAX, MIN_EMIN, ROUND_UP, Context, Decimal
from functools import lru_cache
from typing import Literal

from webhook.core.errors import TenantguardError

__all__ = [
    "MAX_INT64",
    "Format",
    "QuantityError",
    "canonical",
    "exact_add",
    "format_quantity",
    "format_resource",
    "parse_quantity",
    "parse_quantity_format",
    "round_up",
]

Format = Literal["DecimalSI", "BinarySI", "DecimalExponent"]

DECIMAL_SI: Format = "DecimalSI"
BINARY_SI: Format = "BinarySI"
DECIMAL_EXPONENT: Format = "DecimalExponent"

MAX_INT64 = (1 << 63) - 1
_MAX_INT32 = (1 << 31) - 1
_NANO = -9

# Arithmetic on quantities must not round where Kubernetes (big.Int / inf.Dec)
# would not: 200 significant digits cover any realistic sum exactly.
_EXACT = Context(prec=200, rounding=ROUND_UP, Emax=MAX_EMAX, Emin=MIN_EMIN)

_SPLIT_RE = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_ERR_FORMAT = f"quantities must match the regular expression '{_SPLIT_RE}'"
_ERR_NUMERIC = "unable to parse numeric part of quantity"
_ERR_SUFFIX = "unable to parse quantity's suffix"

_DIGITS = frozenset("0123456789")
_SUFFIX_CHARS = frozenset("eEinumkKMGTP")

# suffix -> (base, exponent, format); suffix.go newSuffixer + fastLookup
_SUFFIXES: dict[str, tuple[int, int, Format]] = {
    "n": (10, -9, DECIMAL_SI),
    "u": (10, -6, DECIMAL_SI),
    "m": (10, -3, DECIMAL_SI),
    "": (10, 0, DECIMAL_SI),
    "k": (10, 3, DECIMAL_SI),
    "M": (10, 6, DECIMAL_SI),
    "G": (10, 9, DECIMAL_SI),
    "T": (10, 12, DECIMAL_SI),
    "P": (10, 15, DECIMAL_SI),
    "E": (10, 18, DECIMAL_SI),
    "Ki": (2, 10, BINARY_SI),
    "Mi": (2, 20, BINARY_SI),
    "Gi": (2, 30, BINARY_SI),
    "Ti": (2, 40, BINARY_SI),
    "Pi": (2, 50, BINARY_SI),
    "Ei": (2, 60, BINARY_SI),
}
_DECIMAL_SUFFIX_FOR_EXP = {exp: s for s, (base, exp, _) in _SUFFIXES.items() if base == 10}
_BINARY_SUFFIX_FOR_EXP = {exp // 10: s for s, (base, exp, _) in _SUFFIXES.items() if base == 2}

# Go's unicode.IsSpace, minus the ASCII control characters a JSON string can
# only carry escaped (the API server trims the raw, still-escaped text).
_JSON_TRIMMED_SPACE = " \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
    "\u2028\u2029\u202f\u205f\u3000"


class QuantityError(TenantguardError, ValueError):
    """A value the Kubernetes API server would refuse as a resource.Quantity."""


@dataclass(frozen=True, slots=True)
class _Parsed:
    value: Decimal
    fmt: Format
    cached: str | None  # the input string when upstream reuses it as String()


@dataclass(frozen=True, slots=True)
class _Scanned:
    positive: bool
    value: str  # sign + number, as handed to inf.Dec.SetString on the slow path
    num: str  # integer digits without leading zeros ("0" when none)
    denom: str  # fraction digits
    suffix: str


# --- scanning and suffixes (quantity.go parseQuantityString, suffix.go interpret) ---


def _scan_digits(text: str, start: int) -> int:
    """Index of the first non-digit at or after ``start``."""
    end = start
    while end < len(text) and text[end] in _DIGITS:
        end += 1
    return end


def _scan(text: str) -> _Scanned:
    """Mirror of parseQuantityString: split sign, integer digits, fraction digits, suffix."""
    end = len(text)
    pos = 0
    positive = True
    if text[0] in "+-":
        positive = text[0] == "+"
        pos = 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return _Scanned(positive, "0", "0", "", "")
    num_end = _scan_digits(text, pos)
    num = text[pos:num_end] or "0"
    if num_end >= end:
        return _Scanned(positive, text, num, "", "")
    pos = num_end
    denom = ""
    if text[pos] == ".":
        denom_end = _scan_digits(text, pos + 1)
        denom = text[pos + 1:denom_end]
        if denom_end >= end:
            return _Scanned(positive, text, num, denom, "")
        pos = denom_end
    value = text[:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    if _scan_digits(text, pos) != end:
        raise QuantityError(_ERR_FORMAT)
    return _Scanned(positive, value, num, denom, text[suffix_start:])


def _parse_go_int64(text: str) -> int | None:
    """strconv.ParseInt(text, 10, 64): optional sign, ASCII digits, int64 range."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body or any(c not in _DIGITS for c in body):
        return None
    value = int(text)
    return value if -MAX_INT64 - 1 <= value <= MAX_INT64 else None


def _interpret(suffix: str) -> tuple[int, int, Format]:
    """Mirror of suffixHandler.interpret: (base, exponent, format) or QuantityError.

    Upstream master rejects decimal exponents outside [-MaxInt32, MaxInt32]
    (kubernetes/kubernetes#141203); older releases truncated them to int32.
    """
    known = _SUFFIXES.get(suffix)
    if known is not None:
        return known
    if len(suffix) > 1 and suffix[0] in "eE":
        exponent = _parse_go_int64(suffix[1:])
        if exponent is not None and -_MAX_INT32 <= exponent <= _MAX_INT32:
            return 10, exponent, DECIMAL_EXPONENT
    raise QuantityError(_ERR_SUFFIX)


# --- ParseQuantity --------------------------------------------------------------


def _wrap_int32(value: int) -> int:
    """Go int32 arithmetic wraps; the scale bookkeeping in ParseQuantity is int32."""
    return (value + (1 << 31)) % (1 << 32) - (1 << 31)


def _fast_path(scan: _Scanned, base: int, exponent: int, fmt: Format) -> tuple[bool, int]:
    """Whether ParseQuantity takes its int64 fast path, and the base-10 scale it uses there."""
    if fmt == BINARY_SI:
        if scan.denom:
            return False, 0
        precision = 15 - len(scan.num) - (exponent * 3 // 10) - 1
        return precision >= 0 and int(scan.num) << exponent <= MAX_INT64, 0
    precision = 18 - (len(scan.num) + len(scan.denom))
    scale = _wrap_int32(exponent - len(scan.denom))
    return precision >= 0 and scale >= _NANO, scale


def _reuses_input(scan: _Scanned, exponent: int, fmt: Format, scale: int) -> bool:
    """ParseQuantity keeps the input as String() when it judges it canonical already."""
    shifted = scan.num + scan.denom
    if fmt == BINARY_SI:
        return exponent % 10 == 0 and int(shifted) & 0x07 != 0
    return scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0"


def _exact_value(scan: _Scanned, base: int, exponent: int, fast: bool, scale: int) -> Decimal:
    """The number before rounding, computed the way the chosen upstream path computes it."""
    sign = "" if scan.positive else "-"
    digits = scan.num + scan.denom
    if base == 2:
        return Decimal(f"{sign}{int(digits) << exponent}E{-len(scan.denom)}")
    if fast:
        return Decimal(f"{sign}{digits}E{scale}")
    # slow path: inf.Dec scale = fraction digits - exponent, in (wrapping) int32
    inf_scale = _wrap_int32(len(scan.denom) - exponent)
    return Decimal(f"{sign}{digits}E{-inf_scale}")


def _round_to_nano(value: Decimal) -> Decimal:
    """Round a non-zero value away from zero to 10^-9 (inf.RoundUp at Nano)."""
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int) or exponent >= _NANO or value.is_zero():
        return value
    ctx = Context(prec=len(value.as_tuple().digits) + 12, rounding=ROUND_UP, Emax=MAX_EMAX, Emin=MIN_EMIN)
    return value.quantize(Decimal("1e-9"), context=ctx)


def _cap_binary(value: Decimal, fmt: Format) -> tuple[Decimal, Format]:
    """Binary-suffixed values are capped at 2^63-1; a fraction below one becomes DecimalSI."""
    if fmt != BINARY_SI:
        return value, fmt
    magnitude = abs(value)
    if magnitude > MAX_INT64:
        value = Decimal(MAX_INT64).copy_sign(value)
    elif 0 < magnitude < 1:
        fmt = DECIMAL_SI
    return value, fmt


def _trim_json_space(text: str) -> str:
    """Quantity.UnmarshalJSON trims surrounding whitespace before ParseQuantity."""
    return text.strip(_JSON_TRIMMED_SPACE)


@lru_cache(maxsize=8192)
def _parse_string(raw: str) -> _Parsed:
    """Mirror of UnmarshalJSON(string) -> ParseQuantity: value, format and String() reuse."""
    text = _trim_json_space(raw)
    if not text:
        raise QuantityError(_ERR_FORMAT)
    if text == "0":
        return _Parsed(Decimal(0), DECIMAL_SI, "0")
    scan = _scan(text)
    base, exponent, fmt = _interpret(scan.suffix)
    fast, scale = _fast_path(scan, base, exponent, fmt)
    if not fast and not any(c in _DIGITS for c in scan.value):
        raise QuantityError(_ERR_NUMERIC)  # inf.Dec.SetString needs a digit
    value = _round_to_nano(_exact_value(scan, base, exponent, fast, scale))
    value, fmt = _cap_binary(value, fmt)
    cached = text if fast and _reuses_input(scan, exponent, fmt, scale) else None
    return _Parsed(value, fmt, cached)


def _to_text(value: object) -> str:
    """The text the API server would see for a decoded JSON scalar."""
    if isinstance(value, bool) or value is None:
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(f"{value!r} is not a quantity")
        return repr(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise QuantityError(f"{value!r} is not a quantity")
        return str(value)
    raise QuantityError(f"{type(value).__name__} is not a quantity")


def _parse(value: str | float | Decimal) -> _Parsed:
    text = _to_text(value)
    try:
        return _parse_string(text)
    except QuantityError as exc:
        raise QuantityError(f"{text!r}: {exc}") from None


def parse_quantity(value: str | int | float) -> Decimal:  # noqa: PYI041 (ints are JSON integers)
    """Parse a quantity exactly as the API server decodes it (UnmarshalJSON + ParseQuantity).

    Strings follow the upstream grammar (sign, digits, optional fraction, one of
    the suffixes ``n u m k M G T P E Ki Mi Gi Ti Pi Ei`` or ``e``/``E`` with a
    signed integer); surrounding whitespace is trimmed as the API server's JSON
    decoding does, inner whitespace is an error. JSON numbers (``int``,
    ``float``; never ``bool``) are read as their JSON text. Values are rounded
    away from zero to 10^-9 and binary-suffixed ones capped at 2^63-1.

    Raises :class:`QuantityError` for anything the API server would refuse.
    """
    return _parse(value).value


def parse_quantity_format(value: str | int | float) -> tuple[Decimal, Format]:  # noqa: PYI041 (ints are JSON integers)
    """:func:`parse_quantity` plus the format family upstream remembers for printing."""
    parsed = _parse(value)
    return parsed.value, parsed.fmt


# --- printing (Quantity.CanonicalizeBytes) ------------------------------------------


def _require_finite(value: Decimal) -> Decimal:
    if not isinstance(value, Decimal):
        value = Decimal(value)
    if not value.is_finite():
        raise QuantityError(f"{value!r} is not a quantity")
    return value


def _base10_canonical(value: Decimal) -> tuple[str, int]:
    """Mirror of AsCanonicalBytes: integer mantissa text and an exponent that is a multiple of 3."""
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits)).lstrip("0") or "0"
    stripped = text.rstrip("0")
    exponent += len(text) - len(stripped)
    shift = exponent % 3  # floor to the multiple of 3 below
    mantissa = stripped + "0" * shift
    return ("-" if sign else "") + mantissa, exponent - shift


def _exponent_suffix(exponent: int) -> str:
    return "" if exponent == 0 else f"e{exponent}"


def _format_base10(value: Decimal, fmt: Format) -> str:
    mantissa, exponent = _base10_canonical(value)
    if fmt == DECIMAL_SI:
        suffix = _DECIMAL_SUFFIX_FOR_EXP.get(exponent)
        if suffix is not None:
            return mantissa + suffix
        # no SI suffix beyond E / below n: exponent form (kubernetes/kubernetes#140459)
    return mantissa + _exponent_suffix(exponent)


def _format_binary(value: Decimal) -> str | None:
    """Base-1024 form of an integral value >= 1024 in magnitude; None when upstream falls back."""
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent >= 70:  # divisible by 2^70, so past Ei: no need to build a huge int
        return None
    integral = int(value)
    magnitude, power = abs(integral), 0
    while magnitude % 1024 == 0:
        magnitude //= 1024
        power += 1
    if power > max(_BINARY_SUFFIX_FOR_EXP):
        return None
    sign = "-" if integral < 0 else ""
    return f"{sign}{magnitude}{_BINARY_SUFFIX_FOR_EXP.get(power, '')}"


def format_quantity(value: Decimal, fmt: Format) -> str:
    """Mirror of Quantity.CanonicalizeBytes (what ``Quantity.String()`` prints).

    No fractional digits, the largest exponent that loses nothing, the sign only
    when negative. BinarySI prints base-1024 suffixes; it falls back to
    DecimalSI for magnitudes below 1024 and for non-integral values, and to the
    exact decimal (exponent form) past ``Ei``. DecimalSI falls back to the
    exponent form where it has no suffix (above ``E``, below ``n``). Any other
    format string is treated as DecimalExponent, as upstream does.
    """
    value = _require_finite(value)
    if value.is_zero():
        return "0"
    if fmt == BINARY_SI:
        if -1024 < value < 1024 or value != value.to_integral_value(rounding=ROUND_UP, context=_EXACT):
            return _format_base10(value, DECIMAL_SI)
        binary = _format_binary(value)
        return binary if binary is not None else _format_base10(value, DECIMAL_EXPONENT)
    if fmt != DECIMAL_SI:
        fmt = DECIMAL_EXPONENT
    return _format_base10(value, fmt)


def canonical(value: str | int | float) -> str:  # noqa: PYI041 (ints are JSON integers)
    """The string the API server stores for this quantity: ``ParseQuantity(value).String()``.

    Prints in the input's format family (``"1.5Gi"`` -> ``"1536Mi"``,
    ``"0.1"`` -> ``"100m"``, ``"1e3"`` -> ``"1e3"``). Like upstream, an input
    that ParseQuantity's fast path judges canonical is returned verbatim (after
    whitespace trimming), which keeps spellings such as ``"+1"`` or ``"1."``.
    """
    parsed = _parse(value)
    if parsed.cached is not None:
        return parsed.cached
    return format_quantity(parsed.value, parsed.fmt)


# --- arithmetic helpers ----------------------------------------------------------


def round_up(value: Decimal, scale: int) -> Decimal:
    """Mirror of Quantity.RoundUp(scale): round away from zero to a multiple of 10^scale.

    ``round_up(v, -3)`` is the milli rounding the API server applies to every
    ResourceList (SetDefaults_ResourceList); ``round_up(v, 0)`` is ``Value()``.
    """
    value = _require_finite(value)
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent >= scale:
        return value
    ctx = Context(prec=max(1, value.adjusted() - scale + 2), rounding=ROUND_UP, Emax=MAX_EMAX, Emin=MIN_EMIN)
    return value.quantize(Decimal(f"1E{scale}"), context=ctx)


def exact_add(left: Decimal, right: Decimal) -> Decimal:
    """Sum of two quantities without the 28-digit rounding of the default decimal context."""
    return _EXACT.add(left, right)


# --- human-readable values -----------------------------------------------------------

_BYTE_RESOURCES = frozenset({"memory", "ephemeral-storage", "storage"})
_QUOTA_PREFIXES = ("requests.", "limits.")


def _resource_kind(resource: str) -> str:
    """'cpu', 'bytes' or 'count' for a resource or ResourceQuota key."""
    name = resource
    for prefix in _QUOTA_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    if name == "cpu":
        return "cpu"
    if name in _BYTE_RESOURCES or name.startswith("hugepages-") or name.endswith("/requests.storage"):
        return "bytes"
    return "count"


def format_resource(resource: str, value: Decimal) -> str:
    """Print a value for humans in the unit family its resource is written in.

    cpu: DecimalSI (``2500m``, ``3``). Byte-like resources (memory,
    ephemeral-storage, storage, hugepages-*, also as ``requests.``/``limits.``
    quota keys): BinarySI when that prints with a binary suffix and no longer
    than DecimalSI (``1536Mi``), else DecimalSI (``1G``, ``500m``). Counts
    (pods, extended resources): DecimalSI.
    """
    value = _require_finite(value)
    decimal = format_quantity(value, DECIMAL_SI)
    if _resource_kind(resource) == "bytes" and abs(value.adjusted()) <= 40:
        binary = format_quantity(value, BINARY_SI)
        if binary.endswith(tuple(_BINARY_SUFFIX_FOR_EXP.values())) and len(binary) <= len(decimal):
            return binary
    return decimal
