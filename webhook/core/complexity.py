"""How big a pod is, and the bound the webhook judges within.

Evaluation time and memory grow with a pod's containers, env entries and volumes. The API
server accepts bodies up to 3 MiB, which can hold a pod of 40,000 containers: judging it
takes seconds, and a webhook busy for seconds makes every other admission wait past its
timeout. :class:`ReviewLimits` bounds what the webhook evaluates; a pod (or pod template)
beyond it is not evaluated: the validating endpoint denies it, naming the bound and the
flag that raises it, and the mutating endpoint admits it without defaults (saying so).
The bounds are far above any real workload (defaults: 500 containers of every kind,
20,000 env entries, 1,000 volumes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from webhook.core.workloads import ALL_CONTAINERS, PodTemplatePath, locate_pod

@dataclass(frozen=True, slots=True)
class Size:
    containers: int = 0
    env: int = 0  # env and envFrom entries, every container
    volumes: int = 0


def measure(obj: Mapping[str, Any], templates: Iterable[PodTemplatePath]) -> Size:
    """The size of ``obj``'s pod (template); zero for objects without one. ``templates``: where other kinds keep
    their pod template (the policy set's ``pod_templates``): a kind the policies judge is bounded alike."""
    target = locate_pod(obj, templates)
    if target is None:
        return Size()
    spec = target.spec
    containers = env = 0
    for key in ALL_CONTAINERS:
        items = spec.get(key)
        if not isinstance(items, list):
            continue
        containers += len(items)
        for c in items:
            if isinstance(c, dict):
                for field in ("env", "envFrom"):
                    entries = c.get(field)
                    env += len(entries) if isinstance(entries, list) else 0
    volumes = spec.get("volumes")
    return Size(containers, env, len(volumes) if isinstance(volumes, list) else 0)


@dataclass(frozen=True, slots=True)
class ReviewLimits:
    """The largest pod the webhook evaluates (flags ``--max-containers``, ``--max-env``, ``--max-volumes``)."""

    containers: int = 500
    env: int = 20_000
    volumes: int = 1_000

    def exceeded(self, size: Size) -> str | None:
        """Why ``size`` is beyond the bound (None when within it)."""
        over = [(what, have, bound, flag) for what, have, bound, flag in (
            ("containers", size.containers, self.containers, "--max-containers"),
            ("env entries", size.env, self.env, "--max-env"),
            ("volumes", size.volumes, self.volumes, "--max-volumes"),
        ) if have > bound]
        if not over:
            return None
        parts = "; ".join(f"{have} {what} > {bound} ({flag})" for what, have, bound, flag in over)
        return f"the pod is too large for tenantguard to judge within the webhook timeout: {parts}"
