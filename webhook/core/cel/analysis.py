"""What a compiled expression costs and reads, from its checked syntax tree.

One walk over the tree (:func:`analyze`) gives:

- **cost**: an upper bound on the evaluation cost, in the units Kubernetes meters CEL in
  (about one per node visited; a comprehension costs its range's size times its body; a
  string scan a tenth of the string's length), as a small algebra over the *sizes of
  what the expression reads*: ``size(object.spec.containers) * (3 + 0.1 *
  len(object.spec.containers[*].image))``. The algebra is evaluated at load time with
  reference sizes (refusing expressions that are hopeless) and before each evaluation
  with the request's own sizes (:class:`Sizes`), which replaces Kubernetes' runtime cost
  meter: cel-cpp's Python binding has none, and an expression is never started when its
  bound exceeds the budget;
- **reads**: the paths of the bindings the expression consumes (``object.spec.containers``),
  from which a finding's ``field`` is derived and the answer cache learns whether a
  verdict may be reused;
- **variables**: the ``variables.NAME`` it references (lint: unused variables);
- **constant value** (:func:`constant`): expressions that are always false or true (constant
  folding, contradicting terms ANDed, sizes compared with a negative bound).

Sizes: ``("len", root, path)`` is the largest size (items of a list or map, characters of
a string) found at ``path`` under binding ``root``, where ``*`` steps into every element
of a list or value of a map, ``&`` into every key of a map and ``?`` into either (an
iteration whose range may be a list or a map); ``("deep", root, path)`` the largest number
of values under it (comparing whole structures); ``("any",)`` the largest size anywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from webhook.core.cel.ast import (
    UNSUPPORTED,
    Call,
    CheckedAst,
    Comprehension,
    Const,
    CreateList,
    CreateMap,
    Ident,
    Node,
    Select,
)

__all__ = [
    "Abs", "Analysis", "CostError", "Polynomial", "Size", "Sizes", "UNKNOWN", "analyze", "bound", "constant",
    "evaluate", "polynomial",
    "format_size", "reference_cost",
]

Size = tuple[Any, ...]
Path = tuple[str, ...]

# Kubernetes' budgets (k8s.io/apiserver/pkg/apis/cel: PerCallLimit, RuntimeCELCostBudget)
PER_CALL_LIMIT = 1_000_000
RULE_BUDGET = 10_000_000
# the sizes an expression is judged against when it is loaded: lists and maps of this many items
REFERENCE_ITEMS = 32
TRAVERSAL = 0.1  # cost per character of a string scan (as cel-go's estimator charges it)
SORT_FACTOR = 20.0  # n log n, for any n the API server can hold

ZERO: Size = ("c", 0.0)
ONE: Size = ("c", 1.0)
ANY: Size = ("any",)
BINDINGS = ("object", "oldObject", "request", "namespaceObject")


class CostError(ValueError):
    """An expression whose cost cannot be bounded (e.g. ``lists.range`` of a value read from the object)."""


# --- the size algebra ---------------------------------------------------------------------------

def const(value: float) -> Size:
    return ("c", float(value))


def add(*terms: Size) -> Size:
    fixed = 0.0
    rest: list[Size] = []
    for t in terms:
        if t[0] == "c":
            fixed += t[1]
        elif t[0] == "+":
            for sub in t[1:]:
                if sub[0] == "c":
                    fixed += sub[1]
                else:
                    rest.append(sub)
        else:
            rest.append(t)
    if not rest:
        return const(fixed)
    if fixed:
        rest.append(const(fixed))
    return rest[0] if len(rest) == 1 else ("+", *rest)


def mul(*factors: Size) -> Size:
    fixed = 1.0
    rest: list[Size] = []
    for f in factors:
        if f[0] == "c":
            fixed *= f[1]
        elif f[0] == "*":
            for sub in f[1:]:
                if sub[0] == "c":
                    fixed *= sub[1]
                else:
                    rest.append(sub)
        else:
            rest.append(f)
    if fixed == 0:
        return ZERO
    if not rest:
        return const(fixed)
    if fixed != 1:
        rest.insert(0, const(fixed))
    return rest[0] if len(rest) == 1 else ("*", *rest)


def biggest(*items: Size) -> Size:
    flat: list[Size] = []
    for s in items:
        flat.extend(s[1:] if s[0] == "max" else (s,))
    unique = list(dict.fromkeys(flat))
    fixed = [s for s in unique if s[0] == "c"]
    rest = [s for s in unique if s[0] != "c"]
    if fixed:
        top = max(s[1] for s in fixed)
        if top or not rest:
            rest.append(const(top))
    return rest[0] if len(rest) == 1 else ("max", *rest)


def evaluate(size: Size, resolve: Callable[[Size], float]) -> float:
    kind = size[0]
    if kind == "c":
        return float(size[1])
    if kind == "+":
        return sum(evaluate(s, resolve) for s in size[1:])
    if kind == "*":
        out = 1.0
        for s in size[1:]:
            out *= evaluate(s, resolve)
            if out == 0:
                return 0.0
        return out
    if kind == "max":
        return max(evaluate(s, resolve) for s in size[1:])
    return resolve(size)


Polynomial = tuple[tuple[float, tuple[Size, ...]], ...]


def polynomial(size: Size) -> Polynomial:
    """``size`` as a sum of monomials (coefficient, sizes multiplied), a ``max`` bounded by its sum: the form
    evaluated per request (a few multiplications, each size measured once)."""
    terms: dict[tuple[Size, ...], float] = {}
    for coef, factors in _expand(size):
        key = tuple(sorted(factors, key=repr))
        terms[key] = terms.get(key, 0.0) + coef
    return tuple((coef, key) for key, coef in terms.items() if coef)


def _expand(size: Size) -> list[tuple[float, tuple[Size, ...]]]:
    kind = size[0]
    if kind == "c":
        return [(float(size[1]), ())]
    if kind in ("+", "max"):
        return [term for s in size[1:] for term in _expand(s)]
    if kind == "*":
        out: list[tuple[float, tuple[Size, ...]]] = [(1.0, ())]
        for s in size[1:]:
            out = [(c1 * c2, f1 + f2) for c1, f1 in out for c2, f2 in _expand(s)]
        return out
    return [(1.0, (size,))]


def bound(poly: Polynomial, resolve: Callable[[Size], float]) -> float:
    total = 0.0
    for coef, factors in poly:
        term = coef
        for f in factors:
            term *= resolve(f)
            if not term:
                break
        total += term
    return total


def _reference(size: Size) -> float:
    return REFERENCE_ITEMS * (8 if size[0] == "deep" else 1)


def reference_cost(size: Size) -> float:
    """The cost on an object whose every list and map holds :data:`REFERENCE_ITEMS` items."""
    return evaluate(size, _reference)


def format_size(size: Size) -> str:
    kind = size[0]
    if kind == "c":
        value = size[1]
        return str(int(value)) if value == int(value) else f"{value:g}"
    if kind in ("+", "*"):
        return "(" + f" {kind} ".join(format_size(s) for s in size[1:]) + ")"
    if kind == "max":
        return "max(" + ", ".join(format_size(s) for s in size[1:]) + ")"
    if kind == "any":
        return "size(largest value)"
    return f"{'size' if kind == 'len' else 'values'}({format_path(size[1], size[2])})"


def format_path(root: str, path: Path) -> str:
    out = root
    for part in path:
        if part in ("*", "&", "?"):
            out += {"*": "[*]", "&": "{key}", "?": "[*]"}[part]
        elif part.isidentifier():
            out += "." + part
        else:
            out += f"[{part!r}]"
    return out


# --- the request's sizes ------------------------------------------------------------------------

class Sizes:
    """The sizes of one request's bindings, computed on demand and remembered (one per request)."""

    __slots__ = ("_bindings", "_cache", "_reached")

    def __init__(self, bindings: Mapping[str, Any]):
        self._bindings = bindings
        self._cache: dict[Size, float] = {}
        self._reached: dict[tuple[str, Path], list[Any]] = {}  # the values found at a path (shared prefixes)

    def __call__(self, size: Size) -> float:
        found = self._cache.get(size)
        if found is None:
            found = self._cache[size] = float(self._compute(size))
        return found

    def _values(self, root: str, path: Path) -> list[Any]:
        key = (root, path)
        found = self._reached.get(key)
        if found is not None:
            return found
        if not path:
            values = [self._bindings.get(root)]
        else:
            part = path[-1]
            values = []
            for v in self._values(root, path[:-1]):
                if part == "*":
                    if isinstance(v, list):
                        values.extend(v)
                    elif isinstance(v, dict):
                        values.extend(v.values())
                elif part == "&" or part == "?":
                    if isinstance(v, dict):
                        values.extend(v.keys())
                    elif isinstance(v, list) and part == "?":
                        values.extend(v)
                elif isinstance(v, dict):
                    item = v.get(part)
                    if item is not None:
                        values.append(item)
        self._reached[key] = values
        return values

    def _compute(self, size: Size) -> int:
        if size[0] == "len":
            return max((len(v) for v in self._values(size[1], size[2]) if isinstance(v, (list, dict, str, bytes))),
                       default=0)
        if size[0] == "deep":
            return max((_count(v) for v in self._values(size[1], size[2])), default=0)
        return max((_largest(v) for v in self._bindings.values()), default=0)


def _count(value: Any) -> int:
    total, stack = 0, [value]
    while stack:
        v = stack.pop()
        total += 1
        if isinstance(v, dict):
            stack.extend(v.values())
            total += len(v)
        elif isinstance(v, list):
            stack.extend(v)
    return total


def _largest(value: Any) -> int:
    top, stack = 0, [value]
    while stack:
        v = stack.pop()
        if isinstance(v, (str, bytes)):
            top = max(top, len(v))
        elif isinstance(v, dict):
            top = max(top, len(v))
            stack.extend(v.values())
            stack.extend(v.keys())
        elif isinstance(v, list):
            top = max(top, len(v))
            stack.extend(v)
    return top


# --- abstract values ----------------------------------------------------------------------------

UNKNOWN: Any = object()


@dataclass(frozen=True, slots=True)
class Abs:
    """What is known of a value: its size, its elements' (and keys'), where it was read from."""

    size: Size = ANY
    elem: Abs | None = None
    key: Abs | None = None
    root: str | None = None  # a binding, when the value was read from one
    path: Path = ()
    origins: frozenset[tuple[str, Path]] = frozenset()  # paths a computed value was read from


SCALAR = Abs(size=ONE)
ANY_ABS = Abs()


def _from_path(root: str, path: Path) -> Abs:
    return Abs(size=("len", root, path), root=root, path=path)


def element(a: Abs, step: str = "*") -> Abs:
    if a.root is not None:
        return _from_path(a.root, (*a.path, step))
    if step == "&" and a.key is not None:
        return a.key
    if a.elem is not None:
        return a.elem
    return ANY_ABS


def _elem(a: Abs) -> Abs | None:
    return _from_path(a.root, (*a.path, "*")) if a.root is not None else a.elem


def merge(a: Abs | None, b: Abs | None) -> Abs:
    if a is None:
        return b if b is not None else ANY_ABS
    if b is None or a == b:
        return a
    same_path = a.root is not None and a.root == b.root and a.path == b.path
    ea, eb = _elem(a), _elem(b)
    return Abs(
        size=biggest(a.size, b.size),
        elem=merge(ea, eb) if (ea is not None or eb is not None) else None,
        key=None,
        root=a.root if same_path else None,
        path=a.path if same_path else (),
        origins=a.origins | b.origins | _origin(a) | _origin(b),
    )


def _origin(a: Abs) -> frozenset[tuple[str, Path]]:
    return frozenset({(a.root, a.path)}) if a.root is not None else frozenset()


def _string(size: Size) -> Abs:
    return Abs(size=size)


def _list(size: Size, elem: Abs) -> Abs:
    return Abs(size=size, elem=elem)


# --- the walk -----------------------------------------------------------------------------------

@dataclass(slots=True)
class Analysis:
    cost: Size = ZERO
    result: Abs = ANY_ABS
    reads: set[tuple[str, Path]] = field(default_factory=set)  # consumed binding paths
    variables: set[str] = field(default_factory=set)  # variables.NAME referenced


_SCALAR_OPS = frozenset({
    "_&&_", "_||_", "!_", "-_", "_<_", "_<=_", "_>_", "_>=_", "_-_", "_*_", "_/_", "_%_", "@not_strictly_false",
    "size", "int", "uint", "double", "bool", "duration", "timestamp", "type", "getFullYear", "getMonth",
    "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear", "getHours", "getMinutes", "getSeconds",
    "getMilliseconds", "math.abs", "math.sign", "math.ceil", "math.floor", "math.round", "math.trunc", "math.isNaN",
    "math.isInf", "math.isFinite", "math.sqrt", "math.bitOr", "math.bitAnd", "math.bitXor", "math.bitNot",
    "math.bitShiftLeft", "math.bitShiftRight", "hasValue",
})
_STRING_SCANS = frozenset({"contains", "startsWith", "endsWith", "charAt", "lastIndexOf", "indexOf"})
_STRING_TRANSFORMS = frozenset({"lowerAscii", "upperAscii", "trim", "reverse", "substring", "strings.quote",
                                "string", "base64.encode", "base64.decode", "bytes"})
_REGEX = frozenset({"matches", "find", "findAll", "regex.extract", "regex.extractAll", "regex.replace"})
_LIBRARY_CONSTANT = frozenset({
    "quantity", "isQuantity", "sign", "isInteger", "asInteger", "asApproximateFloat", "add", "sub", "compareTo",
    "isGreaterThan", "isLessThan", "url", "isURL", "getScheme", "getHost", "getHostname", "getPort",
    "getEscapedPath", "getQuery", "ip", "isIP", "ip.isCanonical", "family", "isUnspecified", "isLoopback",
    "isLinkLocalMulticast", "isLinkLocalUnicast", "isGlobalUnicast", "cidr", "isCIDR", "containsIP",
    "containsCIDR", "masked", "prefixLength",
})
_LIST_SCANS = frozenset({"isSorted", "sum", "min", "max", "distinct", "reverse", "slice", "first", "last",
                         "math.greatest", "math.least"})
LIBRARY_CALL = 5.0  # a function of this library runs in Python: count it as a few nodes


class _Walker:
    def __init__(self, ast: CheckedAst, variables: Mapping[str, Analysis]):
        self.ast = ast
        self.variables = variables
        self.scopes: list[dict[str, Abs]] = []
        self.out = Analysis()

    # -- helpers --
    def type_of(self, node: Node) -> str:
        return self.ast.types.get(node.id, "dyn")

    def consume(self, a: Abs) -> None:
        if a.root is not None:
            self.out.reads.add((a.root, a.path))
        self.out.reads.update(a.origins)

    def lookup(self, name: str) -> Abs | None:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return None

    # -- nodes --
    def visit(self, node: Node) -> tuple[Size, Abs]:
        if isinstance(node, Const):
            value = node.value
            if isinstance(value, (str, bytes)):
                return ZERO, _string(const(len(value)))
            return ZERO, SCALAR
        if isinstance(node, Ident):
            return ONE, self.ident(node)
        if isinstance(node, Select):
            cost, operand = self.visit(node.operand)
            if node.test_only:
                self.consume(self.select(operand, node.field))
                return add(cost, ONE), SCALAR
            return add(cost, ONE), self.select(operand, node.field)
        if isinstance(node, CreateList):
            costs, elems = [const(10)], None
            for e in node.elements:
                c, a = self.visit(e)
                self.consume(a)
                costs.append(c)
                elems = merge(elems, a)
            return add(*costs), _list(const(len(node.elements)), elems or ANY_ABS)
        if isinstance(node, CreateMap):
            costs, keys, values = [const(30)], None, None
            for key, value in node.entries:
                if isinstance(key, Node):
                    c, k = self.visit(key)
                    costs.append(c)
                    keys = merge(keys, k)
                c, v = self.visit(value)
                self.consume(v)
                costs.append(c)
                values = merge(values, v)
            return add(*costs), Abs(size=const(len(node.entries)), elem=values, key=keys)
        if isinstance(node, Comprehension):
            return self.comprehension(node)
        assert isinstance(node, Call)
        return self.call(node)

    def ident(self, node: Ident) -> Abs:
        name = self.ast.references.get(node.id, node.name)
        local = self.lookup(node.name)
        if local is not None:
            return local
        if name.startswith("variables."):
            var = name[len("variables."):]
            self.out.variables.add(var)
            found = self.variables.get(var)
            return found.result if found is not None else ANY_ABS
        if name in BINDINGS:
            return _from_path(name, ())
        return ANY_ABS

    def select(self, operand: Abs, name: str) -> Abs:
        if operand.root is not None:
            return _from_path(operand.root, (*operand.path, name))
        if operand.elem is not None and operand.key is not None:  # a map literal
            return operand.elem
        return ANY_ABS

    def comprehension(self, node: Comprehension) -> tuple[Size, Abs]:
        range_cost, rng = self.visit(node.iter_range)
        self.consume(rng)
        init_cost, init = self.visit(node.accu_init)
        rtype = self.type_of(node.iter_range)
        scope: dict[str, Abs] = {}
        if node.iter_var2:
            scope[node.iter_var] = element(rng, "&") if rtype == "map" else SCALAR
            scope[node.iter_var2] = element(rng, "*")
        else:
            scope[node.iter_var] = element(rng, "&" if rtype == "map" else "*" if rtype == "list" else "?")
        empty_list = isinstance(node.accu_init, CreateList) and not node.accu_init.elements
        accu = Abs(size=rng.size, elem=None) if empty_list else init
        scope[node.accu_var] = accu
        self.scopes.append(scope)
        try:
            cond_cost, _ = self.visit(node.loop_condition)
            step_cost, step = self.visit(node.loop_step)
            if empty_list:
                accu = Abs(size=rng.size, elem=step.elem if step.elem is not None else ANY_ABS,
                           origins=step.origins)
                scope[node.accu_var] = accu
            elif isinstance(node.accu_init, CreateMap) and not node.accu_init.entries:
                scope[node.accu_var] = Abs(size=rng.size, elem=step.elem, key=step.key)
            result_cost, result = self.visit(node.result)
        finally:
            self.scopes.pop()
        iterations = rng.size if not (isinstance(node.iter_range, CreateList) and not node.iter_range.elements) \
            else ZERO
        cost = add(range_cost, init_cost, mul(iterations, add(cond_cost, step_cost)), result_cost)
        return cost, result

    def call(self, node: Call) -> tuple[Size, Abs]:
        fn = node.function
        operands = ([node.target] if node.target is not None else []) + node.args
        costs: list[Size] = []
        values: list[Abs] = []
        for i, operand in enumerate(operands):
            c, a = self.visit(operand)
            costs.append(c)
            values.append(a)
            structural = fn in ("_[_]", "_[?_]", "_?._") and i == 0
            if not structural:
                self.consume(a)
        base = add(*costs)
        first = values[0] if values else ANY_ABS
        # indexing and optional selection navigate like a select
        if fn in ("_[_]", "_[?_]", "_?._"):
            key = operands[1] if len(operands) > 1 else None
            if isinstance(key, Const) and isinstance(key.value, str):
                return add(base, ONE), self.select(first, key.value)
            return add(base, ONE), element(first, "*")
        if fn in ("_==_", "_!=_"):
            if any(isinstance(n, Const) and not isinstance(n.value, (str, bytes)) for n in operands):
                return add(base, ONE), SCALAR  # against null, a bool or a number: one comparison
            sizes = [self.compare_size(a, n) for a, n in zip(values, operands)]
            return add(base, ONE, mul(const(TRAVERSAL), biggest(*sizes))), SCALAR
        if fn == "_?_:_":
            return add(base, ONE), merge(values[1], values[2]) if len(values) == 3 else ANY_ABS
        if fn == "_+_":
            kind = self.type_of(node)
            if kind in ("string", "bytes", "list") or (kind == "dyn" and any(
                    self.type_of(o) in ("string", "list") for o in operands)):
                total = add(*(v.size for v in values))
                if kind == "list" or self.type_of(operands[0]) == "list":
                    accumulator = isinstance(operands[0], Ident) and operands[0].name.startswith("@")
                    size = first.size if accumulator else total
                    elems = merge(values[0].elem, values[1].elem if len(values) > 1 else None)
                    return add(base, ONE) if accumulator else add(base, ONE, mul(const(TRAVERSAL), total)), \
                        Abs(size=size, elem=elems, origins=first.origins)
                return add(base, ONE, mul(const(TRAVERSAL), total)), _string(total)
            return add(base, ONE), SCALAR
        if fn == "@in":
            container = values[1] if len(values) > 1 else ANY_ABS
            ctype = self.type_of(operands[1]) if len(operands) > 1 else "dyn"
            return add(base, ONE if ctype == "map" else add(ONE, container.size)), SCALAR
        if fn in _SCALAR_OPS:
            return add(base, ONE), SCALAR
        if fn in ("dyn", "orValue", "value", "optional.of", "optional.ofNonZeroValue", "or"):
            return add(base, ONE), merge(*values[:2]) if len(values) > 1 else first
        if fn in _STRING_SCANS:
            if self.type_of(operands[0]) == "list" or first.elem is not None:
                return add(base, ONE, first.size), SCALAR
            return add(base, ONE, mul(const(TRAVERSAL), first.size)), SCALAR
        if fn in _STRING_TRANSFORMS:
            return add(base, ONE, mul(const(TRAVERSAL), first.size)), _string(first.size)
        if fn in _REGEX:
            scan = add(ONE, mul(const(TRAVERSAL), first.size, const(self.regex_factor(operands))))
            if fn in ("findAll", "regex.extractAll", "split"):
                return add(base, scan), _list(first.size, _string(first.size))
            if fn == "regex.replace":
                return add(base, scan), ANY_ABS
            return add(base, scan), _string(first.size) if fn != "matches" else SCALAR
        if fn == "split":
            return add(base, ONE, mul(const(TRAVERSAL), first.size)), _list(add(first.size, ONE),
                                                                             _string(first.size))
        if fn == "replace" or fn == "format":
            grown = mul(first.size, biggest(ONE, *(v.size for v in values[1:])))
            return add(base, ONE, mul(const(TRAVERSAL), grown)), _string(grown)
        if fn == "join":
            elem = element(first)
            total = mul(first.size, add(elem.size, values[1].size if len(values) > 1 else ZERO))
            return add(base, ONE, mul(const(TRAVERSAL), total)), _string(total)
        if fn in _LIST_SCANS:
            return add(base, ONE, first.size), element(first) if fn in (
                "min", "max", "first", "last", "sum", "math.greatest", "math.least") else first
        if fn in ("sort", "sortBy", "@sortByAssociatedKeys"):
            return add(base, ONE, mul(const(SORT_FACTOR), first.size)), first
        if fn == "flatten":
            inner = element(first)
            return add(base, ONE, mul(first.size, inner.size)), _list(mul(first.size, inner.size), element(inner))
        if fn in ("sets.contains", "sets.equivalent", "sets.intersects"):
            return add(base, ONE, *(v.size for v in values)), SCALAR
        if fn == "lists.range":
            arg = operands[0] if operands else None
            if not (isinstance(arg, Const) and isinstance(arg.value, int)):
                raise CostError("lists.range() of a value that is not a constant cannot be bounded")
            n = const(max(arg.value, 0))
            return add(base, ONE, n), _list(n, SCALAR)
        if fn in _LIBRARY_CONSTANT:
            scan = mul(const(TRAVERSAL), biggest(*(v.size for v in values))) if values else ZERO
            return add(base, const(LIBRARY_CALL), scan), Abs(size=const(8))
        # any other function: a scan of its arguments
        return add(base, ONE, *(v.size for v in values)), ANY_ABS

    def compare_size(self, a: Abs, node: Node) -> Size:
        kind = self.type_of(node)
        if kind in ("bool", "int", "uint", "double", "null"):
            return ONE
        if kind in ("string", "bytes"):
            return a.size
        if a.root is not None:
            return ("deep", a.root, a.path)
        return a.size

    @staticmethod
    def regex_factor(operands: list[Node]) -> float:
        pattern = operands[1] if len(operands) > 1 else None
        if isinstance(pattern, Const) and isinstance(pattern.value, str):
            return max(1.0, math.ceil(len(pattern.value) / 4))
        return 4.0


def analyze(ast: CheckedAst, variables: Mapping[str, Analysis]) -> Analysis:
    """Cost, reads and variable references of one expression; ``variables``: the rule's analysed variables."""
    walker = _Walker(ast, variables)
    cost, result = walker.visit(ast.root)
    walker.consume(result)
    out = walker.out
    out.cost = cost
    out.result = replace(result, origins=result.origins | frozenset(out.reads)) if result.root is None else result
    return out


# --- constant values (lint) ---------------------------------------------------------------------

def constant(node: Node) -> Any:
    """The expression's value when it does not depend on the request, else :data:`UNKNOWN`."""
    if isinstance(node, Const):
        return UNKNOWN if node.value is UNSUPPORTED else node.value
    if isinstance(node, CreateList):
        values = [constant(e) for e in node.elements]
        return UNKNOWN if any(v is UNKNOWN for v in values) else values
    if not isinstance(node, Call):
        return UNKNOWN
    fn, args = node.function, node.args
    if fn == "_&&_" or fn == "_||_":
        decisive = fn == "_||_"
        values = [constant(a) for a in args]
        if any(v is decisive for v in values):
            return decisive
        if all(isinstance(v, bool) for v in values):
            return not decisive
        if fn == "_&&_" and _contradicts(_conjuncts(node)):
            return False
        return UNKNOWN
    if fn == "!_":
        value = constant(args[0])
        return (not value) if isinstance(value, bool) else UNKNOWN
    if fn == "_?_:_":
        cond = constant(args[0])
        if isinstance(cond, bool):
            return constant(args[1] if cond else args[2])
        return UNKNOWN
    if fn in _ORDER:
        sized = _never_negative(node)
        if sized is not None:
            return sized
    values = [constant(a) for a in args]
    if any(v is UNKNOWN for v in values) or node.target is not None:
        return UNKNOWN
    try:
        if fn == "_==_":
            return _same_type(*values) and values[0] == values[1]
        if fn == "_!=_":
            return not (_same_type(*values) and values[0] == values[1])
        if fn == "@in" and isinstance(values[1], list):
            return any(_same_type(values[0], v) and values[0] == v for v in values[1])
        if fn in ("_<_", "_<=_", "_>_", "_>=_") and _same_type(*values):
            a, b = values
            return _ORDER[fn](a, b)
        if fn == "size" and isinstance(values[0], (str, list)):
            return len(values[0])
    except TypeError:
        return UNKNOWN
    return UNKNOWN


def _same_type(a: Any, b: Any) -> bool:
    return type(a) is type(b) or (isinstance(a, (int, float)) and isinstance(b, (int, float))
                                  and not isinstance(a, bool) and not isinstance(b, bool))


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "_<_": lambda a, b: a < b, "_<=_": lambda a, b: a <= b, "_>_": lambda a, b: a > b, "_>=_": lambda a, b: a >= b,
}
_FLIPPED = {"_<_": "_>_", "_<=_": "_>=_", "_>_": "_<_", "_>=_": "_<=_"}


def _is_size(node: Node) -> bool:
    return isinstance(node, Call) and node.function == "size" and len(node.args) + (node.target is not None) == 1


def _never_negative(node: Call) -> bool | None:
    """``size(x) < 0`` is always false, ``size(x) >= 0`` always true (and the same turned around)."""
    if len(node.args) != 2:
        return None
    left, right = node.args
    fn = node.function
    if _is_size(right) and not _is_size(left):
        left, right, fn = right, left, _FLIPPED[fn]
    if not _is_size(left) or not isinstance(right, Const) or isinstance(right.value, bool) \
            or not isinstance(right.value, (int, float)) or right.value > 0:
        return None
    if fn == "_<_":
        return False  # size(x) < 0, or < a negative number
    if fn == "_>=_":
        return True
    if right.value < 0:
        return fn == "_>_"  # size(x) > -1 always, size(x) <= -1 never
    return None  # size(x) <= 0, size(x) > 0: they depend on x


_NO_SHAPE = object()


def _shape(node: Node) -> Any:
    """A structural key of ``node`` (its ids left out), or ``_NO_SHAPE`` for what is not compared so (loops)."""
    if isinstance(node, Const):
        return ("k", type(node.value).__name__, node.value) if node.value is not UNSUPPORTED else _NO_SHAPE
    if isinstance(node, Ident):
        return ("i", node.name)
    if isinstance(node, Select):
        inner = _shape(node.operand)
        return _NO_SHAPE if inner is _NO_SHAPE else ("s", inner, node.field, node.test_only)
    if isinstance(node, Call):
        parts = [_shape(n) for n in ([node.target] if node.target is not None else []) + node.args]
        if any(p is _NO_SHAPE for p in parts):
            return _NO_SHAPE
        return ("c", node.function, node.target is not None, tuple(parts))
    return _NO_SHAPE


def _conjuncts(node: Node) -> list[Node]:
    if isinstance(node, Call) and node.function == "_&&_":
        return [c for a in node.args for c in _conjuncts(a)]
    return [node]


def _comparison(node: Node) -> tuple[str, Any, Any] | None:
    """(``==``, ``!=`` or ``in``; the shape of the compared expression; the constant) for ``x == 'a'``,
    ``'a' != x``, ``!(x == 'a')``, ``x in ['a', 'b']``; None for anything else."""
    negate = False
    while isinstance(node, Call) and node.function == "!_" and len(node.args) == 1:
        negate, node = not negate, node.args[0]
    if not isinstance(node, Call) or node.target is not None or len(node.args) != 2:
        return None
    fn = node.function
    left, right = node.args
    if fn == "@in":
        values = constant(right)
        if negate or not isinstance(values, list) or constant(left) is not UNKNOWN:
            return None
        shape = _shape(left)
        return None if shape is _NO_SHAPE else ("in", shape, values)
    if fn not in ("_==_", "_!=_"):
        return None
    if constant(left) is not UNKNOWN:
        left, right = right, left
    value = constant(right)
    if value is UNKNOWN or isinstance(value, list) or constant(left) is not UNKNOWN:
        return None
    shape = _shape(left)
    if shape is _NO_SHAPE:
        return None
    equal = (fn == "_==_") != negate
    return ("==" if equal else "!=", shape, value)


def _equal(a: Any, b: Any) -> bool:
    return _same_type(a, b) and a == b


def _contradicts(terms: list[Node]) -> bool:
    """Terms ANDed that no value can satisfy together: ``x == 'a' && x == 'b'``, ``x == 'a' && x != 'a'``,
    ``x == 'a' && x in ['b', 'c']`` (the same expression ``x`` on both sides)."""
    equal: dict[Any, list[Any]] = {}
    unequal: dict[Any, list[Any]] = {}
    among: dict[Any, list[list[Any]]] = {}
    for term in terms:
        found = _comparison(term)
        if found is None:
            continue
        op, shape, value = found
        if op == "in":
            among.setdefault(shape, []).append(value)
        else:
            (equal if op == "==" else unequal).setdefault(shape, []).append(value)
    for shape, values in equal.items():
        first = values[0]
        if any(not _equal(first, v) for v in values[1:]):
            return True
        if any(_equal(first, v) for v in unequal.get(shape, ())):
            return True
        if any(not any(_equal(first, v) for v in options) for options in among.get(shape, ())):
            return True
    return False
