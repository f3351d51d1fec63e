"""Label selectors and namespace globs, evaluated as Kubernetes evaluates them."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

GLOB_CHARS = frozenset("*?[")

# Namespace names are DNS-1123 labels; glob overlap is decided over this alphabet.
_NAMESPACE_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-"


def is_glob(pattern: str) -> bool:
    return not GLOB_CHARS.isdisjoint(pattern)


@lru_cache(maxsize=4096)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern))


def glob_match(pattern: str, name: str) -> bool:
    """Shell-glob match (``*``, ``?``, ``[...]``), case-sensitive, whole name."""
    if not is_glob(pattern):
        return pattern == name
    return _glob_regex(pattern).match(name) is not None


def _glob_tokens(pattern: str) -> list[tuple[str, frozenset[str] | None]]:
    """Tokens: ("*", None), ("?", None) or ("set", chars) over the namespace alphabet."""
    tokens: list[tuple[str, frozenset[str] | None]] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            tokens.append(("*", None))
        elif c == "?":
            tokens.append(("set", frozenset(_NAMESPACE_ALPHABET)))
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                tokens.append(("set", frozenset("[")))
            else:
                chars = frozenset(ch for ch in _NAMESPACE_ALPHABET if glob_match(pattern[i:end + 1], ch))
                tokens.append(("set", chars))
                i = end
        else:
            tokens.append(("set", frozenset(c)))
        i += 1
    return tokens


def glob_start(pattern: str) -> str:
    """The literal start of a shell glob (before its first wildcard): every name it matches starts so."""
    for index, char in enumerate(pattern):
        if char in "*?[":
            return pattern[:index]
    return pattern


def globs_overlap(a: str, b: str) -> bool:
    """True when some namespace name matches both globs (search over the product of both patterns)."""
    ta, tb = _glob_tokens(a), _glob_tokens(b)
    seen: set[tuple[int, int]] = set()
    stack = [(0, 0)]
    while stack:
        i, j = stack.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        a_done, b_done = i == len(ta), j == len(tb)
        if a_done and b_done:
            return True
        # a star may match the empty string
        if not a_done and ta[i][0] == "*":
            stack.append((i + 1, j))
        if not b_done and tb[j][0] == "*":
            stack.append((i, j + 1))
        if a_done or b_done:
            continue
        ka, sa = ta[i]
        kb, sb = tb[j]
        chars_a = frozenset(_NAMESPACE_ALPHABET) if ka == "*" else sa
        chars_b = frozenset(_NAMESPACE_ALPHABET) if kb == "*" else sb
        assert chars_a is not None and chars_b is not None
        if chars_a & chars_b:
            stack.append((i if ka == "*" else i + 1, j if kb == "*" else j + 1))
    return False


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A metav1.LabelSelector: matchLabels AND every matchExpression.

    An empty selector matches everything; Kubernetes' ``null`` selector (matches
    nothing) is represented by not having a LabelSelector at all.
    """

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelSelector:
        labels = data.get("matchLabels") or {}
        exprs = data.get("matchExpressions") or []
        return cls(
            match_labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
            match_expressions=tuple(
                (str(e.get("key", "")), str(e.get("operator", "")), tuple(str(v) for v in e.get("values") or ()))
                for e in exprs
            ),
        )

    @property
    def is_empty(self) -> bool:
        return not self.match_labels and not self.match_expressions

    def matches(self, labels: Mapping[str, str]) -> bool:
        for key, value in self.match_labels:
            if labels.get(key) != value:
                return False
        for key, op, values in self.match_expressions:
            present = key in labels
            if op == "In":
                if not present or labels[key] not in values:
                    return False
            elif op == "NotIn":
                if present and labels[key] in values:
                    return False
            elif op == "Exists":
                if not present:
                    return False
            elif op == "DoesNotExist":
                if present:
                    return False
            else:
                return False
        return True

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.match_labels:
            out["matchLabels"] = dict(self.match_labels)
        if self.match_expressions:
            out["matchExpressions"] = [
                {"key": k, "operator": op, **({"values": list(v)} if v else {})} for k, op, v in self.match_expressions
            ]
        return out
