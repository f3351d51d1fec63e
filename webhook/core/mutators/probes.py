"""defaults.probes: liveness/readiness/startup probes for app containers that have none.

A default probe is added only where its port is one the container declares
(``containerPort`` number, or a port ``name`` for named ports), or where the
probe has no port (exec). Init containers never get probes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.core.mutation import MutationContext
from webhook.core.mutators._containers import containers
from webhook.core.plan import MAIN_ONLY
from webhook.core.workloads import APP_CONTAINERS, PROBE_FIELDS


def probe_port(probe: Mapping[str, Any]) -> int | str | None:
    """The port a probe connects to (httpGet, tcpSocket or grpc), or None (exec)."""
    for handler in ("httpGet", "tcpSocket", "grpc"):
        spec = probe.get(handler)
        if isinstance(spec, dict) and spec.get("port") is not None:
            return spec["port"]
    return None


def declares_port(container: Mapping[str, Any], port: int | str) -> bool:
    for p in container.get("ports") or ():
        if not isinstance(p, dict):
            continue
        if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
            if p.get("containerPort") == int(port):
                return True
        elif p.get("name") == port:
            return True
    return False


@dataclass(frozen=True, slots=True)
class ProbesMutator:
    probes: Mapping[str, Mapping[str, Any]]  # "liveness" | "readiness" | "startup" -> Probe
    rule: str = "defaults.probes"
    subresources: frozenset[str] = MAIN_ONLY

    def mutate(self, ctx: MutationContext) -> None:
        for container, path in containers(ctx, APP_CONTAINERS):
            for kind, probe in self.probes.items():
                field = PROBE_FIELDS[kind]
                if container.get(field) is not None:
                    continue
                port = probe_port(probe)
                if port is not None and not declares_port(container, port):
                    continue
                ctx.put(container, path, field, probe)
