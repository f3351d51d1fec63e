"""The checked syntax tree of a compiled CEL expression, as plain Python objects.

cel-expr-python serializes a compiled expression as a ``google.protobuf.Any`` holding a
``cel.expr.CheckedExpr`` (the same message cel-go and cel-cpp exchange). This module reads
that message with a small protobuf wire-format decoder (no protobuf runtime needed) into
the nodes below, which the cost estimate and the lint checks walk. Only the fields they
read are decoded; everything else is skipped.

``cel.expr`` field numbers (github.com/google/cel-spec, proto/cel/expr/checked.proto and
syntax.proto): CheckedExpr{reference_map=2, type_map=3, expr=4, source_info=5};
Expr{id=2, const=3, ident=4, select=5, call=6, list=7, struct=8, comprehension=9}.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Call", "CheckedAst", "Comprehension", "Const", "CreateList", "CreateMap", "Ident", "Node", "Select",
    "decode_checked",
]


@dataclass(slots=True)
class Node:
    id: int


@dataclass(slots=True)
class Const(Node):
    value: Any  # None, bool, int, float, str, bytes; ``UNSUPPORTED`` for durations and timestamps


@dataclass(slots=True)
class Ident(Node):
    name: str


@dataclass(slots=True)
class Select(Node):
    operand: Node
    field: str
    test_only: bool  # has(operand.field)


@dataclass(slots=True)
class Call(Node):
    function: str
    target: Node | None
    args: list[Node]


@dataclass(slots=True)
class CreateList(Node):
    elements: list[Node]


@dataclass(slots=True)
class CreateMap(Node):
    entries: list[tuple[Node | str, Node]]  # key (an expression, or a field name for a message), value


@dataclass(slots=True)
class Comprehension(Node):
    iter_var: str
    iter_var2: str
    iter_range: Node
    accu_var: str
    accu_init: Node
    loop_condition: Node
    loop_step: Node
    result: Node


@dataclass(slots=True)
class CheckedAst:
    root: Node
    types: dict[int, str] = field(default_factory=dict)  # node id -> bool, int, uint, double, string, ...
    references: dict[int, str] = field(default_factory=dict)  # node id -> the identifier it resolved to


UNSUPPORTED = object()


# --- protobuf wire format ----------------------------------------------------------------------

def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value): an int for varints and fixed widths, bytes for length-delimited."""
    i, end = 0, len(buf)
    value: Any
    while i < end:
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            size, i = _varint(buf, i)
            value, i = buf[i:i + size], i + size
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(value: bytes) -> str:
    return bytes(value).decode("utf-8")


# --- messages ----------------------------------------------------------------------------------

def _constant(buf: bytes) -> Any:
    for number, _, value in _fields(buf):
        if number == 1:
            return None
        if number == 2:
            return bool(value)
        if number in (3, 4):
            return _int64(value) if number == 3 else value
        if number == 5:
            return struct.unpack("<d", value)[0]
        if number == 6:
            return _text(value)
        if number == 7:
            return bytes(value)
        return UNSUPPORTED
    return None


def _expr(buf: bytes) -> Node:
    node_id = 0
    kind: tuple[int, bytes] | None = None
    for number, _, value in _fields(buf):
        if number == 2:
            node_id = _int64(value)
        elif 3 <= number <= 9:
            kind = (number, value)
    if kind is None:
        return Const(node_id, None)
    number, body = kind
    if number == 3:
        return Const(node_id, _constant(body))
    if number == 4:
        name = next((_text(v) for n, _, v in _fields(body) if n == 1), "")
        return Ident(node_id, name)
    if number == 5:
        operand: Node = Const(0, None)
        name, test = "", False
        for n, _, v in _fields(body):
            if n == 1:
                operand = _expr(v)
            elif n == 2:
                name = _text(v)
            elif n == 3:
                test = bool(v)
        return Select(node_id, operand, name, test)
    if number == 6:
        target: Node | None = None
        function, args = "", []
        for n, _, v in _fields(body):
            if n == 1:
                target = _expr(v)
            elif n == 2:
                function = _text(v)
            elif n == 3:
                args.append(_expr(v))
        return Call(node_id, function, target, args)
    if number == 7:
        return CreateList(node_id, [_expr(v) for n, _, v in _fields(body) if n == 1])
    if number == 8:
        entries: list[tuple[Node | str, Node]] = []
        for n, _, v in _fields(body):
            if n != 2:
                continue
            key: Node | str = ""
            val: Node = Const(0, None)
            for en, _, ev in _fields(v):
                if en == 2:
                    key = _text(ev)
                elif en == 3:
                    key = _expr(ev)
                elif en == 4:
                    val = _expr(ev)
            entries.append((key, val))
        return CreateMap(node_id, entries)
    parts: dict[int, Any] = {}
    for n, _, v in _fields(body):
        parts[n] = v
    empty = Const(0, None)
    return Comprehension(
        node_id,
        iter_var=_text(parts.get(1, b"")),
        iter_var2=_text(parts.get(8, b"")),
        iter_range=_expr(parts[2]) if 2 in parts else empty,
        accu_var=_text(parts.get(3, b"")),
        accu_init=_expr(parts[4]) if 4 in parts else empty,
        loop_condition=_expr(parts[5]) if 5 in parts else empty,
        loop_step=_expr(parts[6]) if 6 in parts else empty,
        result=_expr(parts[7]) if 7 in parts else empty,
    )


_PRIMITIVES = {1: "bool", 2: "int", 3: "uint", 4: "double", 5: "string", 6: "bytes"}


def _type(buf: bytes) -> str:
    for number, _, value in _fields(buf):
        if number == 1:
            return "dyn"
        if number == 2:
            return "null"
        if number == 3:
            return _PRIMITIVES.get(value, "dyn")
        if number == 6:
            return "list"
        if number == 7:
            return "map"
        if number == 12:
            return "error"
        return "other"
    return "dyn"


def _map_entry(buf: bytes) -> tuple[int, bytes | int]:
    key = 0
    value: bytes | int = b""
    for number, _, v in _fields(buf):
        if number == 1:
            key = _int64(v)
        elif number == 2:
            value = v
    return key, value


def decode_checked(serialized: bytes) -> CheckedAst:
    """The tree of ``Expression.serialize()`` (an Any holding a CheckedExpr)."""
    payload = serialized
    for number, _, value in _fields(serialized):
        if number == 2:
            payload = value
    root: Node = Const(0, None)
    types: dict[int, str] = {}
    references: dict[int, str] = {}
    for number, _, value in _fields(payload):
        if number == 4:
            root = _expr(value)
        elif number == 2:
            key, ref = _map_entry(value)
            if isinstance(ref, bytes):
                name = next((_text(v) for n, _, v in _fields(ref) if n == 1), "")
                if name:
                    references[key] = name
        elif number == 3:
            key, typ = _map_entry(value)
            if isinstance(typ, bytes):
                types[key] = _type(typ)
    return CheckedAst(root, types, references)
