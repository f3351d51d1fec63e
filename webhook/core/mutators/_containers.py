"""Walking a pod's containers with their JSON paths (for mutators)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from webhook.core.mutation import MutationContext
from webhook.core.workloads import iter_containers


def containers(ctx: MutationContext, lists: tuple[str, ...]) -> Iterator[tuple[dict[str, Any], tuple[str | int, ...]]]:
    """Yield (container, path parts from the object root) for each container in the named lists."""
    for list_name, index, container in iter_containers(ctx.target.spec, lists):
        yield container, ctx.path("spec", list_name, index)
