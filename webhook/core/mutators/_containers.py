"""Walking a pod's containers with their JSON paths (for mutators)."""

from __future__ import annotations

from typing import Any, Iterator

from webhook.core.mutation import MutationContext
from webhook.core.workloads import ALL_CONTAINERS as ALL  # noqa: F401  (re-exported for mutators)
from webhook.core.workloads import APP_AND_INIT_CONTAINERS as APP_AND_INIT  # noqa: F401
from webhook.core.workloads import APP_CONTAINERS as APP  # noqa: F401
from webhook.core.workloads import iter_containers


def containers(ctx: MutationContext, lists: tuple[str, ...]) -> Iterator[tuple[dict[str, Any], tuple[str | int, ...]]]:
    """Yield (container, path parts from the object root) for each container in the named lists."""
    for list_name, index, container in iter_containers(ctx.target.spec, lists):
        yield container, ctx.path("spec", list_name, index)
