"""Compiling one CEL rule (variables, matchConditions, validations) into programs, once per load.

Each expression is compiled twice by cel-cpp:

1. **checked**, as written, in an environment where the bindings (``object``,
   ``oldObject``, ``request``, ``namespaceObject``) are ``dyn`` and each variable is declared
   as ``variables.NAME`` with the type its own expression checks to (variables see the ones
   declared before them). Syntax and type errors are reported here, with the field and the
   line and column in the expression as written; the checked tree gives the cost bound
   and what the expression reads (:mod:`webhook.core.cel.analysis`);
2. **for evaluation**, with each ``variables.NAME`` it reads (directly or through other
   variables) bound by ``cel.bind`` around it: evaluated lazily, once per expression reading
   it, and with no per-rule activation, so one activation per request serves every rule
   (the rule's cost budget counts each expression with the variables bound into it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from cel_expr_python import cel

from webhook.core.cel.analysis import (
    PER_CALL_LIMIT,
    REFERENCE_ITEMS,
    RULE_BUDGET,
    UNKNOWN,
    Analysis,
    CostError,
    Size,
    ZERO,
    add,
    analyze,
    constant,
    format_size,
    reference_cost,
)
from webhook.core.cel.ast import decode_checked
from webhook.core.cel.library import new_env
from webhook.core.cel.rewrite import bind_variables, variable_name
from webhook.core.errors import TenantguardError

__all__ = ["CelCompileError", "Expr", "RuleProgram", "Validation", "compile_rule", "runtime_error"]

BINDINGS = ("object", "oldObject", "request", "namespaceObject")
Path = tuple[str, ...]


class CelCompileError(TenantguardError):
    """Expressions that do not compile; ``problems`` holds (field, message) pairs, fields relative to the rule."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("; ".join(f"{f}: {m}" for f, m in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Expr:
    field: str  # e.g. "validations[0].expression", relative to the rule
    text: str  # as written
    program: Any  # the cel-cpp program evaluated (variables bound inside)
    cost: Size  # its bound, the variables it reads included
    constant: Any = UNKNOWN  # its value when it does not depend on the request (lint)


@dataclass(frozen=True, slots=True)
class Validation:
    expr: Expr
    message: str | None
    message_expr: Expr | None
    reason: str | None
    field_path: tuple[str, ...] | None  # the object path the expression reads (None: the object as a whole)


@dataclass(frozen=True, slots=True)
class RuleProgram:
    match_conditions: tuple[tuple[str, Expr], ...]
    validations: tuple[Validation, ...]
    variables: tuple[tuple[str, str], ...]  # (name, expression) as written
    costs: tuple[Size, ...]  # every expression's bound (variables included): checked before evaluating
    total_cost: Size  # everything the rule may evaluate on one request
    reads: frozenset[tuple[str, Path]]  # what the rule's expressions consume from the bindings
    unused_variables: tuple[str, ...]


# --- messages -----------------------------------------------------------------------------------

_POSITION = re.compile(r"ERROR: <input>:(\d+):(\d+): (.*)")
_STATUS = re.compile(r"^[A-Z_]+: ")


def compile_error(exc: Exception) -> str:
    """cel-cpp's compile error(s) as one line: ``line 1, column 5: Syntax error: ...`` (several joined by ``;``)."""
    found = [f"line {m.group(1)}, column {m.group(2)}: {m.group(3).removesuffix(' [INVALID_ARGUMENT]')}"
             for m in _POSITION.finditer(str(exc))]
    return "; ".join(found) if found else _STATUS.sub("", str(exc)).strip()


_RUNTIME_REWRITES = (
    (re.compile(r'Key not found in map : "(.*)"'), r"no such key: \1"),
    (re.compile(r"No matching overloads found : (.*)"), r"no matching overload for \1"),
    (re.compile(r"No such field '?([^']*)'?"), r"no such key: \1"),
)


def runtime_error(text: str) -> str:
    """An evaluation error's text in CEL's usual words (``no such key: foo``), without the status code."""
    out = _STATUS.sub("", str(text).strip())
    for pattern, replacement in _RUNTIME_REWRITES:
        out = pattern.sub(replacement, out)
    return out.removesuffix(" [INVALID_ARGUMENT]")


# --- environments -------------------------------------------------------------------------------

def _base() -> dict[str, Any]:
    return {name: cel.Type.DYN for name in BINDINGS}


@cache
def execution_env() -> Any:
    """The one environment every program is evaluated in (and the activations are built by)."""
    return new_env(_base())


def _is(found: Any, *types: Any) -> bool:
    return any(found == t for t in types)


# --- compiling ----------------------------------------------------------------------------------

@dataclass(slots=True)
class _Checked:
    field: str
    text: str
    analysis: Analysis | None  # None when it did not compile
    value: Any = UNKNOWN  # its constant value, when it has one


def _check(env: Any, field: str, text: str, problems: list[tuple[str, str]], variables: dict[str, Analysis],
           result: tuple[Any, ...] | None = None, what: str = "") -> tuple[_Checked, Any]:
    try:
        compiled = env.compile(text)
    except RuntimeError as exc:
        problems.append((field, compile_error(exc)))
        return _Checked(field, text, None), None
    if result is not None and not _is(compiled.return_type(), *result):
        problems.append((field, f"must evaluate to {what}, not {compiled.return_type().name().lower()}"))
    tree = decode_checked(compiled.serialize())
    try:
        analysis = analyze(tree, variables)
    except CostError as exc:
        problems.append((field, str(exc)))
        return _Checked(field, text, None), compiled
    return _Checked(field, text, analysis, constant(tree.root)), compiled


def _closure(names: Iterable[str], uses: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen or name not in uses:
            continue
        seen.add(name)
        todo.extend(uses[name])
    return seen


def _common_path(paths: Iterable[Path]) -> Path | None:
    cut = []
    for path in paths:
        stop = next((i for i, part in enumerate(path) if part in ("*", "&", "?")), len(path))
        cut.append(path[:stop])
    if not cut:
        return None
    prefix = cut[0]
    for path in cut[1:]:
        n = 0
        while n < min(len(prefix), len(path)) and prefix[n] == path[n]:
            n += 1
        prefix = prefix[:n]
    return prefix


def compile_rule(variables: Sequence[tuple[str, str]], conditions: Sequence[tuple[str, str]],
                 validations: Sequence[tuple[str, str | None, str | None, str | None]]) -> RuleProgram:
    """Compile a rule; raise CelCompileError naming every field that does not compile or cannot be bounded.

    ``variables`` and ``conditions``: (name, expression); ``validations``: (expression, message,
    messageExpression, reason).
    """
    problems: list[tuple[str, str]] = []
    declared = _base()
    analyses: dict[str, Analysis] = {}
    var_checked: list[_Checked] = []
    for i, (name, text) in enumerate(variables):
        checked, compiled = _check(new_env(declared), f"variables[{i}].expression", text, problems, analyses)
        declared[f"variables.{name}"] = compiled.return_type() if compiled is not None else cel.Type.DYN
        if checked.analysis is not None:
            analyses[name] = checked.analysis
        var_checked.append(checked)
    env = new_env(declared)
    bool_types = (cel.Type.BOOL, cel.Type.DYN)
    string_types = (cel.Type.STRING, cel.Type.DYN)
    cond_checked = [_check(env, f"matchConditions[{i}].expression", text, problems, analyses, bool_types, "bool")[0]
                    for i, (_, text) in enumerate(conditions)]
    val_checked: list[tuple[_Checked, _Checked | None]] = []
    for i, (text, _, message_expression, _) in enumerate(validations):
        checked = _check(env, f"validations[{i}].expression", text, problems, analyses, bool_types, "bool")[0]
        message_checked = None
        if message_expression is not None:
            message_checked = _check(env, f"validations[{i}].messageExpression", message_expression, problems,
                                     analyses, string_types, "string")[0]
        val_checked.append((checked, message_checked))

    var_texts = dict(variables)
    uses = {name: a.variables for name, a in analyses.items()}
    order = [name for name, _ in variables]

    def build(checked: _Checked | None) -> Expr:
        if checked is None or checked.analysis is None:
            return Expr("", "", None, ZERO)  # reported already; nothing is returned while problems remain
        needed = _closure(checked.analysis.variables, uses)
        body, _ = bind_variables(checked.text)
        for name in reversed([n for n in order if n in needed]):
            init, _ = bind_variables(var_texts[name])
            body = f"cel.bind({variable_name(name)}, ({init}), ({body}))"
        cost = add(checked.analysis.cost, *(analyses[n].cost for n in needed))
        bound = reference_cost(cost)
        if bound > PER_CALL_LIMIT:
            problems.append((checked.field, f"estimated cost {bound:,.0f} exceeds the limit of {PER_CALL_LIMIT:,} "
                                            f"per expression already for lists of {REFERENCE_ITEMS} items "
                                            f"(cost {format_size(cost)})"))
        try:
            program = execution_env().compile(body)
        except RuntimeError as exc:  # the checked text compiled: only the binding can fail here
            problems.append((checked.field, f"cannot be prepared for evaluation: {compile_error(exc)}"))
            program = None
        return Expr(checked.field, checked.text, program, cost, checked.value)

    conditions_out = tuple((name, build(c)) for (name, _), c in zip(conditions, cond_checked))
    validations_out = []
    for (text, message, _, reason), (checked, message_checked) in zip(validations, val_checked):
        reads = set(checked.analysis.reads) if checked.analysis is not None else set()
        for name in _closure(checked.analysis.variables if checked.analysis is not None else (), uses):
            reads.update(analyses[name].reads)
        path = _common_path(p for root, p in reads if root == "object")
        validations_out.append(Validation(build(checked), message,
                                          build(message_checked) if message_checked is not None else None,
                                          reason, path))
    used = _closure(set().union(*(c.analysis.variables for c in cond_checked if c.analysis),
                                *(v.analysis.variables for v, _ in val_checked if v.analysis),
                                *(m.analysis.variables for _, m in val_checked if m is not None and m.analysis)),
                    uses)
    costs = [e.cost for _, e in conditions_out]
    costs += [v.expr.cost for v in validations_out]
    costs += [v.message_expr.cost for v in validations_out if v.message_expr is not None]
    # what really runs: each expression with the variables bound into it (a variable read by several
    # expressions is evaluated by each of them)
    total = add(*costs) if costs else ZERO
    if reference_cost(total) > RULE_BUDGET and not any("estimated cost" in m for _, m in problems):
        problems.append(("validations", f"estimated cost {reference_cost(total):,.0f} of the rule exceeds its budget "
                                        f"of {RULE_BUDGET:,} already for lists of {REFERENCE_ITEMS} items"))
    if problems:
        raise CelCompileError(problems)
    reads_all: set[tuple[str, Path]] = set()
    for a in (*analyses.values(), *(c.analysis for c in cond_checked if c.analysis),
              *(v.analysis for v, _ in val_checked if v.analysis),
              *(m.analysis for _, m in val_checked if m is not None and m.analysis)):
        reads_all.update(a.reads)
    return RuleProgram(
        match_conditions=conditions_out,
        validations=tuple(validations_out),
        variables=tuple(variables),
        costs=tuple(costs),
        total_cost=total,
        reads=frozenset(reads_all),
        unused_variables=tuple(n for n in order if n not in used),
    )
