"""What a policy author probably meant: the closest field name, the intended spelling of a quantity.

Load errors end with these hints (``spec.defualts: unknown field (did you mean defaults?)``,
``invalid quantity '256MB': ... (did you mean 256M or 256Mi?)``). A hint is offered only when it
is itself valid: every quantity suggested parses, and a field name is suggested only from the
names the schema accepts at that place. Lower-case ``m`` is milli, a valid suffix, and is never
"corrected" (``500m`` is half a CPU); ``mi`` is not a suffix, so ``500mi`` suggests ``500Mi``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from webhook.core.quantity import QuantityError, parse_quantity

_NUMBER_AND_SUFFIX = re.compile(r"([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))([A-Za-z]*)")
_VALID_SUFFIXES = frozenset({"n", "u", "m", "", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"})
# binary suffixes in any case, with or without a trailing b: mi, MI, MiB, mib -> Mi
_BINARY = {p.lower(): p + "i" for p in "KMGTPE"}
# a byte unit written as in `df -h` (MB, gb, K): the decimal suffix or its binary sibling
_DECIMAL = {"k": "k", "m": "M", "g": "G", "t": "T", "p": "P", "e": "E"}
_BYTES = frozenset({"b", "byte", "bytes"})
_CORES = frozenset({"cpu", "cpus", "core", "cores", "vcpu", "vcpus"})
_MILLICORES = frozenset({"mcpu", "millicpu", "millicore", "millicores"})


def _parses(text: str) -> bool:
    try:
        parse_quantity(text)
    except (QuantityError, TypeError):
        return False
    return True


def _number(text: str) -> str:
    """``1,5`` -> ``1.5``; ``1,000`` -> ``1000`` (a comma before exactly three digits groups thousands)."""
    return re.sub(r",(?=[0-9]{3}(?![0-9]))", "", text).replace(",", ".")


def _candidates(number: str, suffix: str) -> list[str]:
    if suffix in _VALID_SUFFIXES:
        return [number + suffix]
    lower = suffix.lower()
    if len(lower) == 3 and lower.endswith("ib") and lower[0] in _BINARY:  # MiB, gib
        lower = lower[:2]
    if len(lower) == 2 and lower.endswith("i") and lower[0] in _BINARY:  # mi, KI
        return [number + _BINARY[lower[0]]]
    if len(lower) == 2 and lower.endswith("b") and lower[0] in _DECIMAL:  # MB, kb
        return [number + _DECIMAL[lower[0]], number + _BINARY[lower[0]]]
    if len(lower) == 1 and lower in _DECIMAL and lower != "e":  # K, g (m and M are valid as written)
        return [number + _DECIMAL[lower], number + _BINARY[lower]]
    if lower in _BYTES or lower in _CORES:
        return [number]
    if lower in _MILLICORES:
        return [number + "m"]
    return []


def quantity_suggestions(value: object) -> list[str]:
    """Valid quantities ``value`` was probably meant to be (empty when none is likely or it is valid)."""
    if not isinstance(value, str):
        return []
    text = _number("".join(value.split()))
    match = _NUMBER_AND_SUFFIX.fullmatch(text)
    if match is None:
        return []
    found = [c for c in _candidates(match.group(1), match.group(2)) if c != value and _parses(c)]
    return list(dict.fromkeys(found))


def did_you_mean(options: Iterable[str]) -> str:
    """`` (did you mean A?)``, `` (did you mean A or B?)``; empty for no options."""
    shown = list(options)
    if not shown:
        return ""
    return f" (did you mean {' or '.join(shown)}?)"


def quantity_hint(value: object) -> str:
    return did_you_mean(quantity_suggestions(value))


def closest_name(word: str, names: Iterable[str]) -> str | None:
    """The name ``word`` most probably misspells (case ignored first), or None when none is close."""
    names = sorted(set(names))
    folded = {n.lower(): n for n in names}
    if word.lower() in folded and folded[word.lower()] != word:
        return folded[word.lower()]
    close = difflib.get_close_matches(word.lower(), list(folded), n=1, cutoff=0.6)
    return folded[close[0]] if close else None
