"""defaults.resources: per container and per resource, fill only what is absent.

Rules, per container (app and init; ephemeral containers cannot have resources)
and per resource name:
- a limit is filled from the default limit when the container has none, unless
  that would put the limit below the container's own request (the API server
  would reject the pod): then it is left unset and a warning says why;
- a request is filled when absent: from the container's own limit when it has
  one (the API server defaults a request to the limit the same way), else from
  the default request, else from the default limit just filled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from webhook.core.mutation import MutationContext
from webhook.core.mutators._containers import containers
from webhook.core.plan import MAIN_ONLY
from webhook.core.quantity import QuantityError, parse_quantity
from webhook.core.workloads import APP_AND_INIT_CONTAINERS


def _as_map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _quantity(value: Any) -> Decimal | None:
    try:
        return parse_quantity(value)
    except (QuantityError, TypeError):
        return None


@dataclass(frozen=True, slots=True)
class ResourcesMutator:
    requests: Mapping[str, str]
    limits: Mapping[str, str]
    rule: str = "defaults.resources"
    subresources: frozenset[str] = MAIN_ONLY
    # what a container that sets no resources at all gets (the common case, computed once)
    whole: dict[str, Any] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        add_req, add_lim, _ = self._fills({}, "")
        whole: dict[str, Any] = {}
        if add_req:
            whole["requests"] = add_req
        if add_lim:
            whole["limits"] = add_lim
        object.__setattr__(self, "whole", whole)

    def _fills(self, container: dict[str, Any], name: str) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
        resources = _as_map(container.get("resources"))
        have_req = _as_map(resources.get("requests"))
        have_lim = _as_map(resources.get("limits"))
        add_lim: dict[str, Any] = {}
        warnings: list[str] = []
        for res, value in self.limits.items():
            if have_lim.get(res) is not None:
                continue
            own_request = have_req.get(res)
            if own_request is not None:
                req_q, lim_q = _quantity(own_request), _quantity(value)
                if req_q is not None and lim_q is not None and lim_q < req_q:
                    warnings.append(
                        f'container "{name}": default {res} limit {value} is below its request {own_request}; '
                        "limit left unset"
                    )
                    continue
            add_lim[res] = value
        add_req: dict[str, Any] = {}
        wanted = list(self.requests) + [r for r in have_lim if r not in self.requests] + [
            r for r in add_lim if r not in self.requests and r not in have_lim
        ]
        for res in wanted:
            if have_req.get(res) is not None:
                continue
            if have_lim.get(res) is not None:
                add_req[res] = have_lim[res]
            elif res in self.requests:
                add_req[res] = self.requests[res]
            elif res in add_lim:
                add_req[res] = add_lim[res]
        return add_req, add_lim, warnings

    def mutate(self, ctx: MutationContext) -> None:
        for container, path in containers(ctx, APP_AND_INIT_CONTAINERS):
            if "resources" not in container:
                if self.whole:
                    ctx.put(container, path, "resources", self.whole)  # copied on put
                continue
            add_req, add_lim, warnings = self._fills(container, str(container.get("name", "")))
            ctx.warnings.extend(warnings)
            if not add_req and not add_lim:
                continue
            resources = container.get("resources")
            if not isinstance(resources, dict):
                value: dict[str, Any] = {}
                if add_req:
                    value["requests"] = add_req
                if add_lim:
                    value["limits"] = add_lim
                ctx.put(container, path, "resources", value)
                continue
            res_path = path + ("resources",)
            for key, adds in (("requests", add_req), ("limits", add_lim)):
                if not adds:
                    continue
                current = resources.get(key)
                if not isinstance(current, dict):
                    ctx.put(resources, res_path, key, adds)
                    continue
                for res, value in adds.items():
                    ctx.put(current, res_path + (key,), res, value)
