"""Token-level rewrites of CEL source text.

Two uses, both on identifiers at the root of a selection (never a field after a dot, never
inside a string literal or a comment):

- :func:`bind_variables`: ``variables.NAME`` -> a ``cel.bind`` variable, so that every
  rule of a request is evaluated against one activation (the object is converted to CEL
  values once per request, not once per rule) while variables stay lazy (evaluated only
  when an expression reads them, once by that expression);
- :func:`replace_roots`: ``object`` -> ``object.spec.template`` and the like, which turns a
  rule written for Pods into its pod-controller variant for a ValidatingAdmissionPolicy.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Token", "bind_variables", "replace_roots", "tokens", "variable_name"]

_IDENT = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
_NUMBER = re.compile(r"(?:0[xX][0-9a-fA-F]+|[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?)[uU]?")
_STRING_START = re.compile(r"(?:[rR][bB]?|[bB][rR]?)?(?:'''|\"\"\"|'|\")")
_SPACE = re.compile(r"\s+")
_PATH = re.compile(r"[_A-Za-z][_A-Za-z0-9]*(?:\.[_A-Za-z][_A-Za-z0-9]*)*")

BOUND_PREFIX = "tgv__"


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # ident, string, number, punct, space, comment
    start: int
    end: int
    text: str


def _string_end(text: str, start: int, prefix_end: int) -> int:
    quote = text[prefix_end:prefix_end + 3] if text[prefix_end:prefix_end + 3] in ("'''", '"""') \
        else text[prefix_end]
    raw = "r" in text[start:prefix_end].lower()
    i = prefix_end + len(quote)
    while i < len(text):
        if not raw and text[i] == "\\":
            i += 2
            continue
        if text.startswith(quote, i):
            return i + len(quote)
        if len(quote) == 1 and text[i] == "\n":
            break
        i += 1
    return len(text)  # unterminated: the compiler reports it


def tokens(text: str) -> Iterator[Token]:
    i = 0
    while i < len(text):
        m = _SPACE.match(text, i)
        if m:
            yield Token("space", i, m.end(), m.group())
            i = m.end()
            continue
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = len(text) if end == -1 else end
            yield Token("comment", i, end, text[i:end])
            i = end
            continue
        m = _STRING_START.match(text, i)
        if m:
            end = _string_end(text, i, m.end() - (3 if m.group().endswith(("'''", '"""')) else 1))
            yield Token("string", i, end, text[i:end])
            i = end
            continue
        m = _IDENT.match(text, i)
        if m:
            yield Token("ident", i, m.end(), m.group())
            i = m.end()
            continue
        m = _NUMBER.match(text, i)
        if m and m.end() > i:
            yield Token("number", i, m.end(), m.group())
            i = m.end()
            continue
        yield Token("punct", i, i + 1, text[i])
        i += 1


def _significant(toks: Sequence[Token]) -> list[int]:
    return [k for k, t in enumerate(toks) if t.kind not in ("space", "comment")]


def _roots(toks: Sequence[Token], name: str) -> Iterator[tuple[int, list[int]]]:
    """Positions (in ``toks``) of ``name`` used as a root identifier, with the significant token indexes."""
    sig = _significant(toks)
    for n, k in enumerate(sig):
        tok = toks[k]
        if tok.kind != "ident" or tok.text != name:
            continue
        if n > 0 and toks[sig[n - 1]].text == ".":
            continue  # a field of something else
        yield n, sig


def variable_name(name: str) -> str:
    """The ``cel.bind`` identifier that holds variable ``name``."""
    return BOUND_PREFIX + name


def bind_variables(text: str, names: Mapping[str, str] | None = None) -> tuple[str, set[str]]:
    """``text`` with every ``variables.NAME`` replaced by its bound identifier; and the NAMEs it read."""
    toks = list(tokens(text))
    out = [t.text for t in toks]
    used: set[str] = set()
    for n, sig in _roots(toks, "variables"):
        if n + 2 >= len(sig) or toks[sig[n + 1]].text != "." or toks[sig[n + 2]].kind != "ident":
            continue
        name = toks[sig[n + 2]].text
        replacement = names.get(name) if names is not None else variable_name(name)
        if replacement is None:
            continue
        used.add(name)
        first, last = sig[n], sig[n + 2]
        out[first] = replacement
        for k in range(first + 1, last + 1):
            out[k] = ""
    return "".join(out), used


def replace_roots(text: str, replacements: Mapping[str, str]) -> str:
    """``text`` with each root identifier named in ``replacements`` replaced by its text (parenthesized)."""
    toks = list(tokens(text))
    out = [t.text for t in toks]
    for name, replacement in replacements.items():
        text = replacement if _PATH.fullmatch(replacement) else f"({replacement})"
        for n, sig in _roots(toks, name):
            out[sig[n]] = text
    return "".join(out)
