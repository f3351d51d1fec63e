"""RFC 6902 JSON Patch operations, built as mutators change the working copy.

Every op goes through :func:`pointer` (the one place RFC 6901 escaping happens:
``~`` -> ``~0``, ``/`` -> ``~1``), and every op remembers the policy and rule that
made it, so reports can say who set what. Mutators never diff whole objects: they
record an op at the moment they fill a gap, which is both cheaper than a diff and
exact (tests check the ops equal jsonpatch's diff of original -> mutated).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple


def escape(token: str | int) -> str:
    """Escape one reference token of a JSON Pointer (RFC 6901 section 3)."""
    text = str(token)
    if "~" in text or "/" in text:
        return text.replace("~", "~0").replace("/", "~1")
    return text


# pointer per path: pods of one shape fill the same paths (spec/containers/0/resources/...), so each
# pointer is built once (bounded: cleared when full)
_POINTERS: dict[tuple[str | int, ...], str] = {}
POINTER_CACHE = 8192


def pointer(parts: Iterable[str | int]) -> str:
    """Build a JSON Pointer from unescaped path parts: ``("metadata", "labels", "a/b")`` -> ``/metadata/labels/a~1b``."""
    key = parts if isinstance(parts, tuple) else tuple(parts)
    found = _POINTERS.get(key)
    if found is None:
        if len(_POINTERS) >= POINTER_CACHE:
            _POINTERS.clear()
        found = _POINTERS[key] = "".join(["/" + escape(p) for p in key])
    return found


class PatchOp(NamedTuple):
    """One JSON Patch operation with its provenance (policy name and rule id); a plain tuple (built for
    every fill of every admission: cheap to make, immutable)."""

    op: str
    path: str
    value: Any
    policy: str
    rule: str

    def as_json(self) -> dict[str, Any]:
        """The RFC 6902 form, without provenance."""
        if self.op == "remove":
            return {"op": "remove", "path": self.path}
        return {"op": self.op, "path": self.path, "value": self.value}


@dataclass(slots=True)
class PatchRecorder:
    """Collects the ops of one mutation pass.

    ``policy`` and ``rule`` are set by the engine before each mutator runs, so a
    mutator only says what it added and where.
    """

    ops: list[PatchOp] = field(default_factory=list)
    policy: str = ""
    rule: str = ""

    def add(self, parts: Iterable[str | int], value: Any) -> None:
        """Record an ``add`` op; ``value`` must already be in the working copy (it is not copied again)."""
        self.ops.append(PatchOp("add", pointer(parts), value, self.policy, self.rule))

    def replace(self, parts: Iterable[str | int], value: Any) -> None:
        """Record a ``replace`` op (used only to fill a member that is an explicit null)."""
        self.ops.append(PatchOp("replace", pointer(parts), value, self.policy, self.rule))

    def remove(self, parts: Iterable[str | int]) -> None:
        self.ops.append(PatchOp("remove", pointer(parts), None, self.policy, self.rule))

    def as_json(self) -> list[dict[str, Any]]:
        return [op.as_json() for op in self.ops]
