"""Everything `tenantguard serve` was asked for, as one frozen value passed down (no globals)."""

from __future__ import annotations

from dataclasses import dataclass, field

from webhook.core.complexity import ReviewLimits
from webhook.server.callers import CallerPolicy

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
    client_names: tuple[str, ...] = ()  # allowed client certificate names (with client_ca)
    trusted_network: bool = False  # only the API server can reach the port: its reviews may reserve quota
    max_containers: int = 500  # the largest pod evaluated (webhook.core.complexity)
    max_env: int = 20_000
    max_volumes: int = 1_000
    header_timeout: float = 10.0  # a new connection must complete its TLS handshake and request head within it
    body_timeout: float = 10.0  # a request body must arrive within it once its head has
    idle_timeout: float = 30.0  # a keep-alive connection idle this long is closed
    max_connections: int = 1000  # open connections (and handshakes) per process; beyond, new ones are closed
    cluster_state: tuple[str, ...] = ()
    kubeconfig: str | None = None
    in_cluster: bool = False
    reload_interval: float = 1.0  # seconds between checks of the policy and certificate files
    grace_period: float = 15.0  # after SIGTERM: requests in flight, idle and handshaking clients (< the pod's grace)
    shutdown_delay: float = 0.0  # seconds to keep answering (unready, Connection: close) before closing the port
    log_level: str = "info"
    policies_from: str = "files"  # "files" (--policies) or "cluster" (TenantPolicy/ClusterPolicy objects)
    lease_namespace: str | None = None  # where the Lease is (default: $POD_NAMESPACE, else "default")
    lease_name: str = "tenantguard-leader"
    lease_identity: str | None = None  # who campaigns (default: $POD_NAME or the host name, and the process id)
    audit_interval: float = 0.0  # seconds between background audits; 0: none
    report_max_results: int = 100  # results kept per PolicyReport (the summary counts all)
    report_clean: bool = False  # a PolicyReport for namespaces where everything passed, too
    write_rate: float = 5.0  # writes per second to the API server (status, reports), bursts of 20
    max_body: int = MAX_BODY_BYTES
    worker_index: int = field(default=0, compare=False)  # set by the worker supervisor
    ledger_dir: str | None = field(default=None, compare=False)  # reservations shared by the workers (supervisor)
    parent_pid: int | None = field(default=None, compare=False)  # a worker drains when its parent is gone

    @property
    def watches_cluster(self) -> bool:
        return bool(self.kubeconfig or self.in_cluster)

    @property
    def policies_from_cluster(self) -> bool:
        return self.policies_from == "cluster"

    @property
    def elects_leader(self) -> bool:
        """Something is written to the cluster (policy status, PolicyReports): by one elected process."""
        return self.watches_cluster and (self.policies_from_cluster or self.audit_interval > 0)

    @property
    def callers(self) -> CallerPolicy:
        return CallerPolicy(verified=bool(self.client_ca), client_names=self.client_names,
                            trusted_network=self.trusted_network)

    @property
    def limits(self) -> ReviewLimits:
        return ReviewLimits(containers=self.max_containers, env=self.max_env, volumes=self.max_volumes)
