"""Everything `tenantguard serve` was asked for, as one frozen value passed down (no globals)."""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_BODY_BYTES = 3 * 1024 * 1024  # the API server's own request limit is 3 MiB


@dataclass(frozen=True, slots=True)
class ServerSettings:
    policies: tuple[str, ...]
    cert: str
    key: str
    host: str = "0.0.0.0"
    port: int = 8443
    workers: int = 1
    client_ca: str | None = None
    cluster_state: tuple[str, ...] = ()
    kubeconfig: str | None = None
    in_cluster: bool = False
    reload_interval: float = 1.0  # seconds between checks of the policy and certificate files
    grace_period: float = 15.0  # seconds in-flight requests get after SIGTERM (< terminationGracePeriodSeconds)
    shutdown_delay: float = 0.0  # seconds to keep answering (unready, Connection: close) before closing the port
    log_level: str = "info"
    max_body: int = MAX_BODY_BYTES
    worker_index: int = field(default=0, compare=False)  # set by the worker supervisor
    ledger_dir: str | None = field(default=None, compare=False)  # reservations shared by the workers (supervisor)
    parent_pid: int | None = field(default=None, compare=False)  # a worker drains when its parent is gone

    @property
    def watches_cluster(self) -> bool:
        return bool(self.kubeconfig or self.in_cluster)
