"""What a check reports."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CheckFailure:
    """One failed check: its upstream id, forbidden reason and forbidden detail.

    ``containers`` (names, in upstream's visiting order) and ``fields`` (paths
    relative to the pod, e.g. ``spec.containers[0].securityContext.privileged``
    or ``metadata.annotations[key]``) say where the fault is; ``pod_level`` is
    true when something outside the containers (a pod field, an annotation, a
    volume) is at fault too. They are extra information and do not take part in
    equality. For "pod or container X must set ..." failures ``fields`` lists
    both places the value may be set.
    """

    check: str
    reason: str
    detail: str
    containers: tuple[str, ...] = field(default=(), compare=False, repr=False)
    fields: tuple[str, ...] = field(default=(), compare=False, repr=False)
    pod_level: bool = field(default=False, compare=False, repr=False)

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
    pod_level: bool = False


CheckFn = Callable[[Mapping[str, Any], Mapping[str, Any]], "Finding | None"]
