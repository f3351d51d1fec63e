"""Reading pod fields with the Kubernetes API's Go semantics, and upstream's message helpers.

The checks read plain dicts (decoded JSON/YAML). Go decodes them into typed
structs, so: an absent key or an explicit null is a nil pointer, an empty
object is a non-nil pointer whose string fields are ``""``; booleans count
only when they are real booleans. These helpers keep those rules in one place.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

EMPTY: Mapping[str, Any] = {}

# The visiting order of upstream's visitContainers: init, regular, then ephemeral containers.
CONTAINER_LISTS: tuple[str, ...] = ("initContainers", "containers", "ephemeralContainers")


def sub(parent: Mapping[str, Any] | None, key: str) -> Mapping[str, Any] | None:
    """A nested object, or None when absent/null (a nil pointer)."""
    if parent is None:
        return None
    value = parent.get(key)
    return value if isinstance(value, dict) else None


def string(parent: Mapping[str, Any] | None, key: str) -> str:
    """A string field: ``""`` when absent (Go's zero value)."""
    if parent is None:
        return ""
    value = parent.get(key)
    return value if isinstance(value, str) else ("" if value is None else str(value))


def items(parent: Mapping[str, Any] | None, key: str) -> list[Any]:
    if parent is None:
        return []
    value = parent.get(key)
    return value if isinstance(value, list) else []


def is_true(value: Any) -> bool:
    return value is True


def is_zero(value: Any) -> bool:
    """An integer field equal to 0 (``False`` is not 0 here)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value == 0


def is_windows(spec: Mapping[str, Any]) -> bool:
    return string(sub(spec, "os"), "name") == "windows"


def in_user_namespace(spec: Mapping[str, Any]) -> bool:
    """``spec.hostUsers: false``: the pod runs in its own user namespace."""
    return spec.get("hostUsers") is False


class ContainerRef:
    """One container with where it sits: ``spec.<list_name>[<index>]``."""

    __slots__ = ("container", "index", "list_name", "name", "security_context")

    def __init__(self, list_name: str, index: int, container: Mapping[str, Any]) -> None:
        self.list_name = list_name
        self.index = index
        self.container = container
        name = container.get("name")
        self.name: str = name if isinstance(name, str) else ("" if name is None else str(name))
        context = container.get("securityContext")
        self.security_context: Mapping[str, Any] | None = context if isinstance(context, dict) else None

    def path(self, *parts: str) -> str:
        return f"spec.{self.list_name}[{self.index}]" + "".join("." + p for p in parts)


class PodSpec(dict[str, Any]):
    """A pod spec prepared once per evaluation: a shallow copy that also holds its containers."""

    __slots__ = ("refs",)
    refs: tuple[ContainerRef, ...]


def _walk(spec: Mapping[str, Any]) -> Iterator[ContainerRef]:
    for list_name in CONTAINER_LISTS:
        values = spec.get(list_name)
        if not isinstance(values, list):
            continue
        for index, container in enumerate(values):
            yield ContainerRef(list_name, index, container if isinstance(container, dict) else EMPTY)


def prepare(spec: Mapping[str, Any]) -> PodSpec:
    view = PodSpec(spec)
    view.refs = tuple(_walk(spec))
    return view


def containers(spec: Mapping[str, Any]) -> tuple[ContainerRef, ...]:
    """Every init container, container and ephemeral container, in upstream's visiting order."""
    refs = getattr(spec, "refs", None)
    return refs if refs is not None else tuple(_walk(spec))


def join_quote(values: list[str] | tuple[str, ...]) -> str:
    """``"a", "b"`` (upstream's joinQuote: no escaping)."""
    if not values:
        return ""
    return '"' + '", "'.join(values) + '"'


def pluralize(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


def containers_phrase(names: list[str] | tuple[str, ...]) -> str:
    """``container "a"`` / ``containers "a", "b"``: how upstream names the containers at fault."""
    return f"{pluralize('container', 'containers', len(names))} {join_quote(names)}"


_GO_ESCAPES = {
    "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
    "\\": "\\\\", '"': '\\"',
}


def go_quote(value: str) -> str:
    """Go's ``%q`` / ``strconv.Quote`` for a string."""
    out = ['"']
    for ch in value:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch == " " or ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            if code < 0x80:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def setters_with_containers(pod_bad: bool, bad_containers: list[str]) -> list[str]:
    """``["pod", 'containers "a", "b"']``: who set a forbidden value, as upstream words it."""
    setters = ["pod"] if pod_bad else []
    if bad_containers:
        setters.append(f"{pluralize('container', 'containers', len(bad_containers))} {join_quote(bad_containers)}")
    return setters
