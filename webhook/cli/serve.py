"""`tenantguard serve`: the admission webhook (HTTPS only).

    tenantguard serve --policies PATH [--cert FILE --key FILE] [--port 8443] [--workers N]
                      [--client-ca FILE] [--host 0.0.0.0] [--cluster-state FILE | --kubeconfig FILE | --in-cluster]
    tenantguard serve --policies-from cluster (--in-cluster | --kubeconfig FILE) [--background-audit-interval S]

Without ``--cert/--key`` a throwaway self-signed pair is written (``--tls-dir`` or a new
temporary directory, removed again when the server exits) for a local trial, and the CA
path is printed with ready-to-paste curl commands. Logs are JSON lines on stderr; the start banner goes to stdout.

Exit codes: 0 stopped by SIGTERM/SIGINT after draining; 2 bad policies or flags (every
error on stderr, as `tenantguard lint` prints them); 1 could not serve (port in use,
unreadable certificate, ...): a StartError. See docs/server.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from webhook.actions.certs import CertError
from webhook.cli.common import EXIT_OK, UsageError
from webhook.server.errors import StartError
from webhook.server.settings import ServerSettings

NAME = "serve"
HELP = "run the admission webhook server"

SAMPLE_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "tenantguard-demo", "namespace": "default"},
    "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                             "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}}]},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policies", "-p", action="append", default=[], metavar="PATH",
                        help="policy file or directory (repeatable); reloaded when it changes")
    parser.add_argument("--policies-from", choices=("files", "cluster"), default="files",
                        help="files: --policies (default); cluster: the TenantPolicy and ClusterPolicy objects, "
                             "watched (needs --in-cluster or --kubeconfig; their status is written by one elected "
                             "process)")
    parser.add_argument("--policies-from-cluster", dest="policies_from", action="store_const", const="cluster",
                        help="the same as --policies-from cluster (the spelling dry-run takes)")
    parser.add_argument("--cert", metavar="FILE", help="serving certificate (PEM); reloaded when it changes")
    parser.add_argument("--key", metavar="FILE", help="its private key (PEM)")
    parser.add_argument("--port", type=int, default=8443, help="HTTPS port (default 8443)")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes sharing the port with SO_REUSEPORT (default 1)")
    parser.add_argument("--client-ca", metavar="FILE",
                        help="require client certificates signed by this CA (mutual TLS with the API server); "
                             "reloaded when it changes")
    parser.add_argument("--client-name", action="append", default=[], metavar="NAME",
                        help="with --client-ca: an allowed client certificate name, its CN or a DNS SAN "
                             "(repeatable; default: any certificate the CA signed)")
    parser.add_argument("--trusted-network", action="store_true",
                        help="only the API server can reach this port (e.g. a NetworkPolicy): its reviews may "
                             "reserve quota. Without it or --client-ca, reviews are judged but reserve nothing")
    limits = parser.add_argument_group("the largest pod judged (beyond: denied on /validate, no defaults on /mutate)")
    limits.add_argument("--max-containers", type=int, default=500, metavar="N",
                        help="containers of every kind (default 500)")
    limits.add_argument("--max-env", type=int, default=20_000, metavar="N",
                        help="env and envFrom entries, all containers (default 20000)")
    limits.add_argument("--max-volumes", type=int, default=1_000, metavar="N", help="volumes (default 1000)")
    view = parser.add_argument_group("cluster view (quota usage, namespace labels, NetworkPolicies)")
    view.add_argument("--cluster-state", action="append", default=[], metavar="FILE",
                      help="static view: Pods/Namespaces/ResourceQuotas/NetworkPolicies (YAML; repeatable)")
    view.add_argument("--kubeconfig", metavar="FILE", help="watch the cluster this kubeconfig names")
    view.add_argument("--in-cluster", action="store_true", help="watch the cluster we run in (service account)")
    writes = parser.add_argument_group("writing to the cluster (by the process holding the Lease)")
    writes.add_argument("--lease-namespace", metavar="NS",
                        help="namespace of the leader-election Lease (default: $POD_NAMESPACE, else default)")
    writes.add_argument("--lease-name", default="tenantguard-leader", metavar="NAME",
                        help="the Lease's name (default tenantguard-leader)")
    writes.add_argument("--background-audit-interval", type=float, default=0.0, metavar="SECONDS",
                        help="judge every live pod this often and keep one PolicyReport per namespace "
                             "(default 0: no background audit)")
    writes.add_argument("--report-max-results", type=int, default=100, metavar="N",
                        help="results kept per PolicyReport, the worst first; the summary counts all (default 100)")
    writes.add_argument("--report-clean", action="store_true",
                        help="a PolicyReport for namespaces where everything passed too (default: none for them)")
    writes.add_argument("--api-writes-per-second", type=float, default=5.0, metavar="N",
                        help="status and report writes per second at most, in bursts of 20 (default 5)")
    ops = parser.add_argument_group("operations")
    ops.add_argument("--tls-dir", type=Path, metavar="DIR",
                     help="where the throwaway pair goes when --cert/--key are not given (default: a new temp "
                          "dir, removed at exit)")
    ops.add_argument("--reload-interval", type=float, default=1.0, metavar="SECONDS",
                     help="how often policy and certificate files are checked for changes (default 1)")
    ops.add_argument("--grace-period", type=float, default=15.0, metavar="SECONDS",
                     help="after SIGTERM, how long requests in flight, idle keep-alive connections and clients "
                          "still in their TLS handshake get before they are cut (default 15)")
    ops.add_argument("--shutdown-delay", type=float, default=0.0, metavar="SECONDS",
                     help="after SIGTERM, keep answering (unready) this long before closing the port "
                          "(default 0: the chart's preStop sleep does this)")
    conn = parser.add_argument_group("connections (slow or idle clients never hold the server)")
    conn.add_argument("--header-timeout", type=float, default=10.0, metavar="SECONDS",
                      help="a new connection's TLS handshake and first request head must be complete within it "
                           "(default 10)")
    conn.add_argument("--body-timeout", type=float, default=10.0, metavar="SECONDS",
                      help="a request body must arrive within it once the head has (default 10)")
    conn.add_argument("--idle-timeout", type=float, default=30.0, metavar="SECONDS",
                      help="a keep-alive connection with no request for this long is closed (default 30)")
    conn.add_argument("--max-connections", type=int, default=1000, metavar="N",
                      help="open connections per process; beyond, a new one is closed once its TLS handshake is "
                           "done, never served (default 1000)")
    ops.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")


def _flag_errors(args: argparse.Namespace) -> list[str]:
    errors = []
    if args.policies_from == "files" and not args.policies:
        errors.append("--policies is required (or --policies-from cluster)")
    if args.policies_from == "cluster" and args.policies:
        errors.append("--policies reads files; with --policies-from cluster the policies are the cluster's objects")
    if (args.policies_from == "cluster" or args.background_audit_interval > 0) and not (
            args.kubeconfig or args.in_cluster):
        errors.append("--policies-from cluster and --background-audit-interval need the cluster: --in-cluster or "
                      "--kubeconfig FILE")
    if args.background_audit_interval < 0 or args.report_max_results < 1 or args.api_writes_per_second <= 0:
        errors.append("--background-audit-interval must not be negative, --report-max-results at least 1, "
                      "--api-writes-per-second positive")
    if bool(args.cert) != bool(args.key):
        errors.append("--cert and --key go together")
    if args.workers < 1:
        errors.append("--workers must be at least 1")
    if args.workers > 1 and args.port == 0:
        errors.append("--port 0 cannot be shared by several --workers")
    if not 0 <= args.port <= 65535:
        errors.append(f"--port {args.port} is not a port")
    if args.cluster_state and (args.kubeconfig or args.in_cluster):
        errors.append("--cluster-state is a static view; it cannot be combined with --kubeconfig/--in-cluster")
    if args.client_name and not args.client_ca:
        errors.append("--client-name checks client certificates: it needs --client-ca")
    if min(args.header_timeout, args.body_timeout, args.idle_timeout) <= 0 or args.max_connections < 1:
        errors.append("--header-timeout, --body-timeout and --idle-timeout must be positive, --max-connections "
                      "at least 1")
    if min(args.max_containers, args.max_env, args.max_volumes) < 1:
        errors.append("--max-containers, --max-env and --max-volumes must be at least 1")
    if args.reload_interval <= 0 or args.grace_period < 0 or args.shutdown_delay < 0:
        errors.append("--reload-interval must be positive, --grace-period and --shutdown-delay not negative")
    return errors


def _local_host(host: str) -> str:
    return "localhost" if host in ("0.0.0.0", "::", "") else host


def _throwaway(args: argparse.Namespace, out: Path) -> tuple[Path, Path, Path, Path]:
    from webhook.actions.certs import generate_self_signed

    hosts = ["localhost", "127.0.0.1", "::1"]
    if _local_host(args.host) not in hosts:
        hosts.append(_local_host(args.host))
    ca, cert, key = generate_self_signed(hosts, out)
    sample = out / "review.json"
    sample.write_text(json.dumps({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "00000000-0000-0000-0000-000000000001",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": SAMPLE_POD["metadata"]["namespace"], "name": SAMPLE_POD["metadata"]["name"],
            "operation": "CREATE", "userInfo": {"username": "demo", "groups": ["system:authenticated"]},
            "object": SAMPLE_POD, "dryRun": False,
        },
    }, indent=2) + "\n")
    return ca, cert, key, sample


def _banner(url: str, ca: Path | None, sample: Path | None, policies: list[str], workers: int) -> str:
    lines = [f"tenantguard serving {url} ({workers} worker{'s' if workers != 1 else ''}); logs: JSON on stderr"]
    if ca is not None and sample is not None:
        lines += [
            f"throwaway self-signed certificate for a local trial; CA: {ca}",
            "try:",
            f"  curl --cacert {ca} {url}/readyz",
            f"  curl --cacert {ca} -H 'Content-Type: application/json' --data @{sample} {url}/mutate",
            f"  curl --cacert {ca} -H 'Content-Type: application/json' --data @{sample} {url}/validate",
            f"  curl --cacert {ca} {url}/metrics",
            "the same review offline:",
            f"  tenantguard dry-run {' '.join('--policies ' + p for p in policies) or '--policies-from-cluster'} "
            f"{sample}",
        ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    errors = _flag_errors(args)
    if errors:
        raise UsageError("\n".join(errors))
    scratch: Path | None = None  # the throwaway pair's own directory, removed at exit
    if not args.cert and args.tls_dir is None:
        scratch = Path(tempfile.mkdtemp(prefix="tenantguard-tls-"))
    try:
        return _serve(args, scratch)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _serve(args: argparse.Namespace, scratch: Path | None) -> int:
    from webhook.server import logs, runner

    ca = sample = None
    cert, key = args.cert, args.key
    if not cert:
        out = args.tls_dir or scratch
        assert out is not None  # run() made the scratch directory when --tls-dir was not given
        try:
            ca, cert_path, key_path, sample = _throwaway(args, out)
        except (OSError, CertError) as exc:
            raise StartError(f"cannot write a throwaway certificate: {exc}") from None
        cert, key = str(cert_path), str(key_path)
    settings = ServerSettings(
        policies=tuple(args.policies), cert=cert, key=key, host=args.host, port=args.port, workers=args.workers,
        client_ca=args.client_ca, client_names=tuple(args.client_name), trusted_network=args.trusted_network,
        max_containers=args.max_containers, max_env=args.max_env, max_volumes=args.max_volumes,
        header_timeout=args.header_timeout, body_timeout=args.body_timeout, idle_timeout=args.idle_timeout,
        max_connections=args.max_connections,
        cluster_state=tuple(args.cluster_state), kubeconfig=args.kubeconfig,
        in_cluster=args.in_cluster, reload_interval=args.reload_interval, grace_period=args.grace_period,
        shutdown_delay=args.shutdown_delay, log_level=args.log_level,
        policies_from=args.policies_from, lease_namespace=args.lease_namespace, lease_name=args.lease_name,
        audit_interval=args.background_audit_interval, report_max_results=args.report_max_results,
        report_clean=args.report_clean, write_rate=args.api_writes_per_second,
    )
    logs.configure(settings.log_level)

    def announce(port: int) -> None:
        print(_banner(f"https://{_local_host(args.host)}:{port}", ca, sample, args.policies, settings.workers),
              flush=True)

    if settings.workers == 1:
        runner.run(settings, on_started=lambda server: announce(server.port))
        return EXIT_OK
    runner.preflight(settings)
    from webhook.server import workers

    return workers.supervise(settings, on_started=lambda: announce(settings.port))
