"""What a check reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping


@dataclass(frozen=True)
class CheckFailure:
    """One failed check: its upstream id, forbidden reason and forbidden detail.

    ``containers`` (names, in upstream's visiting order) and ``fields`` (paths
    relative to the pod, e.g. ``spec.containers[0].securityContext.privileged``
    or ``metadata.annotations[key]``) say where the fault is; they are extra
    information and do not take part in equality.
    """

    check: str
    reason: str
    detail: str
    containers: tuple[str, ...] = field(default=(), compare=False, repr=False)
    fields: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @property
    def message(self) -> str:
        """``reason (detail)``, as upstream prints one failure; just ``reason`` without detail."""
        return f"{self.reason} ({self.detail})" if self.detail else self.reason


@dataclass(frozen=True, slots=True)
class Finding:
    """A check function's verdict when it forbids the pod (None means allowed)."""

    reason: str
    detail: str
    containers: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()


CheckFn = Callable[[Mapping[str, Any], Mapping[str, Any]], "Finding | None"]
