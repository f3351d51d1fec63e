"""Filling gaps in a working copy while recording the minimal JSON Patch.

Mutators call :meth:`MutationContext.put` and :meth:`MutationContext.append`;
those change the working copy and record one ``add`` op, except inside a member
this same pass created (its ``add`` op carries the parent by reference, so later
fills show up in it). The result is the patch jsonpatch would compute by diffing
original and mutated objects, at the cost of a few dict look-ups.

Values are copied as they are put (copy-on-put): a mutator may hand over a default
straight from its compiled plan, and the plan never sees what later fills do to the
object.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from webhook.core.patch import PatchRecorder
from webhook.core.request import AdmissionRequest
from webhook.core.workloads import PodTarget, PodTemplatePath, pod_prefix


def json_copy(value: Any) -> Any:
    """Deep copy of JSON-shaped data (dicts, lists, scalars); several times faster than copy.deepcopy.

    Shared members (YAML aliases) become separate copies, so a fill in one never shows in another.
    """
    if isinstance(value, dict):
        out = {}
        for key, member in value.items():
            out[key] = json_copy(member) if isinstance(member, (dict, list)) else member  # no call per scalar
        return out
    if isinstance(value, list):
        return [json_copy(v) for v in value]
    return value


def working_copy(obj: dict[str, Any], templates: Iterable[PodTemplatePath] = ()) -> dict[str, Any]:
    """A copy of ``obj`` that mutators may change: the pod (template)'s spec and its metadata
    maps are copied deeply; everything else (status, managedFields, other members) is shared
    with the original, which nobody writes to. Much cheaper than a full deep copy on real pods.
    ``templates``: where other kinds keep their pod template (``PolicySet.pod_templates``).
    """
    out = dict(obj)
    prefix = pod_prefix(obj, templates)
    if prefix is None:
        return out
    src: Any = obj
    dst = out
    for part in prefix:
        child = src.get(part)
        if not isinstance(child, dict):
            return out
        dst[part] = dict(child)
        src, dst = child, dst[part]
    meta = src.get("metadata")
    if isinstance(meta, dict):
        meta_copy = dict(meta)
        for key in ("labels", "annotations"):
            if isinstance(meta.get(key), dict):
                meta_copy[key] = dict(meta[key])
        dst["metadata"] = meta_copy
    if isinstance(src.get("spec"), dict):
        dst["spec"] = json_copy(src["spec"])
    return out


@dataclass(slots=True)
class MutationContext:
    """One mutation pass over one pod (or pod template)."""

    request: AdmissionRequest
    target: PodTarget
    recorder: PatchRecorder = field(default_factory=PatchRecorder)
    warnings: list[str] = field(default_factory=list)
    _fresh: set[int] = field(default_factory=set)

    # --- paths -------------------------------------------------------------
    def path(self, *parts: str | int) -> tuple[str | int, ...]:
        """Path parts from the object root to ``parts`` under the pod (template) root."""
        return self.target.prefix + parts

    # --- recording fills ---------------------------------------------------
    def _adopt(self, value: Any) -> Any:
        """A copy of ``value`` for the working copy, every container in it marked as created by this pass."""
        if isinstance(value, dict):
            out = {k: self._adopt(v) if isinstance(v, (dict, list)) else v for k, v in value.items()}
        elif isinstance(value, list):
            out = [self._adopt(v) if isinstance(v, (dict, list)) else v for v in value]  # type: ignore[assignment]
        else:
            return value
        self._fresh.add(id(out))
        return out

    def put(self, parent: dict[str, Any], parent_path: tuple[str | int, ...], key: str, value: Any) -> None:
        """Set ``parent[key] = value`` (the caller checked it is unset) and record the op.

        An explicit null counts as unset; it is replaced, which jsonpatch also
        expresses as ``replace``, so such a fill is recorded as ``replace``.
        """
        had_null = key in parent
        if isinstance(value, (dict, list)):
            value = self._adopt(value)
        parent[key] = value
        if id(parent) not in self._fresh:
            if had_null:
                self.recorder.replace(parent_path + (key,), value)
            else:
                self.recorder.add(parent_path + (key,), value)

    def put_deep(self, parent: dict[str, Any], parent_path: tuple[str | int, ...], keys: tuple[str, ...],
                 value: Any) -> None:
        """Set ``parent[k0][k1]...[kn] = value``, creating missing dicts on the way as one op."""
        node = parent
        path = parent_path
        for i, key in enumerate(keys[:-1]):
            child = node.get(key)
            if not isinstance(child, dict):
                nested: Any = value
                for inner in reversed(keys[i + 1:]):
                    nested = {inner: nested}
                self.put(node, path, key, nested)
                return
            node = child
            path = path + (key,)
        self.put(node, path, keys[-1], value)

    def remove(self, parent: dict[str, Any], parent_path: tuple[str | int, ...], key: str) -> None:
        """Remove a member the API server derived (never one a user chose) and record the op."""
        del parent[key]
        if id(parent) not in self._fresh:
            self.recorder.remove(parent_path + (key,))

    def append(self, lst: list[Any], list_path: tuple[str | int, ...], value: Any) -> None:
        """Append to an existing list and record ``add`` at the new index."""
        index = len(lst)
        if isinstance(value, (dict, list)):
            value = self._adopt(value)
        lst.append(value)
        if id(lst) not in self._fresh:
            self.recorder.add(list_path + (index,), value)

