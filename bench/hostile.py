"""Hostile callers against a real `tenantguard serve` process: one figure per finding (a bench, not a test).

Each scenario starts its own server (``python -m webhook serve`` with ``cwd=DIR`` and
``PYTHONPATH=DIR``, DIR being ``--checkout``, this tree by default), plays a caller that is
not the API server, and prints one line ``finding: figure``. Flags the checkout does not
have (read from ``serve --help``) are left out, so an older checkout runs the same
scenarios with its defaults.

 1. forged reservations: a forged 4-cpu CREATE review in a tenant with a 4-cpu quota, then a
    real 100m pod; median latency of small reviews before and after 20,000 forged tiny pods
    (cluster view: ``--kubeconfig`` on the in-process fake API server of ``tests/kube_api.py``);
 2. large pods: 4 senders looping on a 24,000-container review for ~10 s while one client sends
    small reviews; small-review latency and the server's peak RSS (VmHWM);
 3. certificate rotation ECDSA -> RSA (a new CA): which key type new handshakes see;
 4. rotation to an expired certificate: handshakes that present it;
 5. slow clients: 20 TLS connections holding an incomplete request head for 15 s (and the RSS
    growth with 2,000 of them);
 6. logs: 40 bad requests carrying a planted secret; stderr bytes, longest line, secret count;
 7. client CA: a review without a client certificate, a CA file swapped to another CA, a
    certificate of another name (``--client-name``);
 8. recovery: the API server unavailable and its watches dropped for 40 s (15 s with
    ``--quick``), then back: seconds until ``/readyz`` is 200 again;
 9. lint: ``tenantguard lint --strict`` on exemptions that match everything and an invalid label key.

    .venv/bin/python bench/hostile.py [--checkout DIR] [--label NAME] [--results FILE] [--quick] [--only 1,3]

``--results FILE`` keeps every run's column (by ``--label``) in a JSON file and prints the
table with all of them: run it once per checkout to get ``finding | before | after``.
The client is Python on the same machine as the server: figures are upper bounds of the
server's cost and move between runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import multiprocessing
import os
import re
import secrets
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Self

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.kube_api import KubeAPI
from webhook.actions.certs import generate_ca, issue_serving_cert

MAX_BODY = 3 * 1024 * 1024
HOSTS = ["localhost", "127.0.0.1"]
SMALL_FIXTURES = [Path("/work/shared/fixtures/admissionreviews/small.json"),
                  ROOT / "tests" / "fixtures" / "admissionreviews" / "small.json"]


# --- helpers -------------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid: int, field: str) -> int | None:
    """A /proc/PID/status field in bytes (VmRSS, VmHWM)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def mib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**20:.0f} MiB"


def small_fixture() -> bytes:
    for path in SMALL_FIXTURES:
        if path.exists():
            return path.read_bytes()
    raise FileNotFoundError("small.json")


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# --- certificates --------------------------------------------------------------------------------

def pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def pem_key(key: Any) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def serving_pair(key_type: str = "ecdsa", *, now: dt.datetime | None = None, days: int = 30,
                 ca_name: str = "bench CA") -> tuple[bytes, bytes, bytes]:
    """(ca.crt, tls.crt, tls.key) PEMs: a new CA and a serving certificate for localhost."""
    ca_cert, ca_key = generate_ca(ca_name, key_type, now=now)  # type: ignore[arg-type]
    cert, key = issue_serving_cert(ca_cert, ca_key, HOSTS, key_type, days, now)  # type: ignore[arg-type]
    return pem_cert(ca_cert), pem_cert(cert), pem_key(key)


def client_cert(ca_cert: x509.Certificate, ca_key: Any, name: str) -> tuple[bytes, bytes]:
    """A client certificate (clientAuth) of common name ``name`` signed by the CA: (cert, key) PEMs."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return pem_cert(cert), pem_key(key)


def insecure_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def presented_cert(port: int) -> x509.Certificate:
    """One new TLS handshake (blocking): the certificate the server presents."""
    with (socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
          insecure_context().wrap_socket(raw, server_hostname="localhost") as tls):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


# --- HTTP over TLS -------------------------------------------------------------------------------

def http_request(path: str, body: bytes, method: str = "POST") -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


class Conn:
    """One keep-alive HTTP/1.1 connection over TLS (asyncio streams)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, ctx: ssl.SSLContext, timeout: float = 10.0) -> Conn:
        r, w = await asyncio.wait_for(asyncio.open_connection(
            "127.0.0.1", port, ssl=ctx, server_hostname="localhost", limit=2**20), timeout)
        return cls(r, w)

    async def send(self, raw: bytes, timeout: float = 30.0) -> tuple[int, bytes]:
        self.writer.write(raw)
        async with asyncio.timeout(timeout):
            await self.writer.drain()
            head = await self.reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
            if length:
                body = await self.reader.readexactly(int(length.group(1)))
            elif re.search(rb"(?i)\r\ntransfer-encoding: *chunked", head):
                body = b""
                while True:
                    size = int((await self.reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                    chunk = await self.reader.readexactly(size + 2)
                    if size == 0:
                        break
                    body += chunk[:-2]
            else:
                body = await self.reader.read()
        return status, body

    async def review(self, path: str, body: bytes, timeout: float = 30.0) -> tuple[int, dict[str, Any] | None]:
        status, raw = await self.send(http_request(path, body), timeout)
        if status != 200:
            return status, None
        return status, orjson.loads(raw).get("response")

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            self.writer.close()

    def abort(self) -> None:
        transport = self.writer.transport
        if transport is not None:
            transport.abort()


async def get_status(port: int, path: str, ctx: ssl.SSLContext | None = None) -> tuple[int, str]:
    conn = await Conn.open(port, ctx or insecure_context(), timeout=5)
    try:
        status, body = await conn.send(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode(), timeout=5)
        return status, body.decode(errors="replace").strip()
    finally:
        conn.close()


# --- reviews -------------------------------------------------------------------------------------

def pod(name: str, namespace: str, cpu: str | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "registry.example.com/app:1"}
    if cpu is not None:
        container["resources"] = {"requests": {"cpu": cpu, "memory": "16Mi"}, "limits": {"cpu": cpu, "memory": "16Mi"}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"containers": [container]}}


def review(obj: dict[str, Any], uid: str) -> bytes:
    namespace = obj["metadata"]["namespace"]
    return orjson.dumps({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "resource": {"group": "", "version": "v1", "resource": "pods"},
                    "namespace": namespace, "operation": "CREATE", "name": obj["metadata"].get("name", ""),
                    "userInfo": {"username": "mallory", "groups": ["system:authenticated"]},
                    "object": obj, "dryRun": False}})


def small_review(namespace: str | None = None) -> bytes:
    data = orjson.loads(small_fixture())
    if namespace:
        data["request"]["namespace"] = namespace
        data["request"]["object"]["metadata"]["namespace"] = namespace
    return orjson.dumps(data)


async def sequential_latencies(port: int, ctx: ssl.SSLContext, body: bytes, count: int,
                               path: str = "/validate") -> list[float]:
    conn = await Conn.open(port, ctx)
    message = http_request(path, body)
    times = []
    try:
        for _ in range(count):
            t0 = time.perf_counter()
            status, _ = await conn.send(message)
            times.append(time.perf_counter() - t0)
            if status != 200:
                raise RuntimeError(f"small review answered {status}")
    finally:
        conn.close()
    return times


# --- the server ----------------------------------------------------------------------------------

class Server:
    """`python -m webhook serve` from a checkout, on a free port, logs to files."""

    def __init__(self, bench: Bench, name: str, args: list[str], *, cert: bool = True):
        self.bench = bench
        self.name = name
        self.port = free_port()
        self.dir = bench.tmp / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cert_file, self.key_file, self.ca_file = self.dir / "tls.crt", self.dir / "tls.key", self.dir / "ca.crt"
        if cert:
            ca, crt, key = serving_pair("ecdsa")
            self.ca_file.write_bytes(ca)
            self.cert_file.write_bytes(crt)
            self.key_file.write_bytes(key)
            args = ["--cert", str(self.cert_file), "--key", str(self.key_file), *args]
        self.args = ["--host", "127.0.0.1", "--port", str(self.port), *bench.flag("--grace-period", "1"), *args]
        self.err_path = self.dir / "stderr.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    async def __aenter__(self) -> Self:
        env = dict(os.environ, PYTHONPATH=str(self.bench.checkout))
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.proc = subprocess.Popen(  # noqa: ASYNC220  # returns at once
            [self.bench.python, "-m", "webhook", "serve", *self.args], cwd=self.bench.checkout, env=env,
            stdin=subprocess.DEVNULL, stdout=(self.dir / "stdout.log").open("wb"), stderr=self.err_path.open("wb"))
        return self

    async def wait_up(self, ctx: ssl.SSLContext | None = None, path: str = "/healthz", timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.log()[-400:]}")
            try:
                if (await get_status(self.port, path, ctx))[0] == 200:
                    return
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ssl.SSLError, ValueError):
                pass
            await asyncio.sleep(0.2)
        raise RuntimeError(f"{path} not 200 within {timeout:g} s: {self.log()[-400:]}")

    def log(self, offset: int = 0) -> str:
        with self.err_path.open("rb") as fh:
            fh.seek(offset)
            return fh.read().decode(errors="replace")

    def log_size(self) -> int:
        return self.err_path.stat().st_size

    async def wait_log(self, needle: str, offset: int, timeout: float) -> float | None:
        """Seconds until ``needle`` appears in stderr after ``offset``; None when it does not."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if needle in self.log(offset):
                return time.monotonic() - started
            await asyncio.sleep(0.1)
        return None

    async def __aexit__(self, *exc: object) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, 10)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait, 10)


# --- the bench -----------------------------------------------------------------------------------

class Bench:
    def __init__(self, checkout: Path, python: str, tmp: Path, quick: bool):
        self.checkout = checkout
        self.python = python
        self.tmp = tmp
        self.quick = quick
        env = dict(os.environ, PYTHONPATH=str(checkout))
        out = subprocess.run([python, "-m", "webhook", "serve", "--help"], cwd=checkout, env=env,
                             check=False, capture_output=True, text=True, timeout=60)
        self.flags = set(re.findall(r"(--[a-z][a-z-]+)", out.stdout))
        if "--policies" not in self.flags:
            raise SystemExit(f"cannot read `serve --help` of {checkout}:\n{out.stderr}")
        self.results: dict[str, str] = {}

    def has(self, name: str) -> bool:
        return name in self.flags

    def flag(self, name: str, *values: str) -> list[str]:
        """``[name, *values]`` when the checkout's server has the flag, else nothing."""
        return [name, *values] if name in self.flags else []

    def record(self, finding: str, figure: str) -> None:
        self.results[finding] = figure
        print(f"{finding}: {figure}", flush=True)

    def kubeconfig(self, kube: KubeAPI) -> Path:
        path = self.tmp / "kubeconfig.yaml"
        path.write_text(kube.kubeconfig())
        return path


QUOTA_POLICY = """apiVersion: tenantguard.io/v1alpha1
kind: TenantPolicy
metadata: {name: shop}
spec:
  namespaces: [shop]
  quota:
    hard: {requests.cpu: "4"}
"""


async def fake_cluster() -> KubeAPI:
    kube = KubeAPI()
    await kube.__aenter__()
    for name in ("shop", "default", "bulk"):
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return kube


# 1. forged reservations ---------------------------------------------------------------------------

F1A = "1a. real 100m pod after a forged 4-cpu review (quota 4 cpu)"
F1B = "1b. small review p50 before -> after 20k forged tiny pods"


async def forged_reservations(b: Bench) -> None:
    policy = b.tmp / "quota.yaml"
    policy.write_text(QUOTA_POLICY)
    kube = await fake_cluster()
    try:
        async with Server(b, "forged", ["--policies", str(policy), "--kubeconfig", str(b.kubeconfig(kube))]) as srv:
            await srv.wait_up(path="/readyz")
            ctx = srv.client_context()
            conn = await Conn.open(srv.port, ctx)
            _, forged = await conn.review("/validate", review(pod("forged-big", "shop", "4"), "forged-big"))
            _, real = await conn.review("/validate", review(pod("real-1", "shop", "100m"), "real-1"))
            _, over = await conn.review("/validate", review(pod("real-big", "shop", "5"), "real-big"))  # control
            conn.close()
            assert forged is not None and real is not None and over is not None
            verdict = "allowed" if real["allowed"] else "DENIED"
            if not real["allowed"]:
                message = real.get("status", {}).get("message", "")
                line = next((x for x in message.splitlines() if x.startswith("- ")), message)
                verdict += f" ({line[2:70]}...)"
            b.record(F1A, f"{verdict}; forged one {'allowed' if forged['allowed'] else 'denied'}, "
                          f"a real 5-cpu pod {'allowed' if over['allowed'] else 'denied'}")

            small = small_review("default")
            await sequential_latencies(srv.port, ctx, small, 50)  # warm up
            before = await sequential_latencies(srv.port, ctx, small, 300)

            total, concurrency = 20_000, 32
            deadline = time.monotonic() + (25 if b.quick else 50)
            template = http_request("/validate", review(pod("forged-@@@@@@@@", "bulk", "1m"), "u-@@@@@@@@"))
            counter = iter(range(total))
            answered = {"allowed": 0, "denied": 0, "error": 0}

            async def forger() -> None:
                c = await Conn.open(srv.port, ctx)
                try:
                    for i in counter:
                        if time.monotonic() > deadline:
                            break
                        tag = f"{i:08d}".encode()
                        status, raw = await c.send(template.replace(b"@@@@@@@@", tag))
                        ok = status == 200 and orjson.loads(raw)["response"]["allowed"]
                        answered["allowed" if ok else "denied" if status == 200 else "error"] += 1
                finally:
                    c.close()

            t0 = time.monotonic()
            await asyncio.gather(*(forger() for _ in range(concurrency)))
            elapsed = time.monotonic() - t0
            after = await sequential_latencies(srv.port, ctx, small, 300)
            sent = sum(answered.values())
            b.record(F1B, f"{ms(statistics.median(before))} -> {ms(statistics.median(after))} "
                          f"({sent} forged answered in {elapsed:.0f} s, {sent / elapsed:.0f}/s)")
    finally:
        await kube.__aexit__(None, None, None)


# 2. large pods ------------------------------------------------------------------------------------

F2A = "2a. small reviews during 4x large-pod senders: p50/p99/max, >5 s"
F2B = "2b. server peak RSS (VmHWM) idle -> after large pods"


def giant_review(containers: int) -> bytes:
    obj = pod("giant", "customer-a")
    obj["spec"]["containers"] = [{"name": f"c{i}", "image": "registry.example.com/shop/app:1",
                                  "env": [{"name": "A", "value": "1"}]} for i in range(containers)]
    return review(obj, "giant")


def large_senders_process(port: int, ca: str, containers: int, window: float, senders: int,
                          queue: Any) -> None:
    """In a child process: ``senders`` connections each sending the giant review in a loop for ``window`` s."""
    message = http_request("/validate", giant_review(containers))
    times: list[float] = []
    errors: list[str] = []

    async def main() -> None:
        ctx = ssl.create_default_context(cafile=ca)
        conns = [await Conn.open(port, ctx) for _ in range(senders)]
        queue.put("ready")
        stop_at = time.monotonic() + window

        async def loop(c: Conn) -> None:
            try:
                while time.monotonic() < stop_at:
                    t0 = time.perf_counter()
                    status, _ = await c.send(message, timeout=60)
                    times.append(time.perf_counter() - t0)
                    if status != 200:
                        errors.append(str(status))
            except Exception as exc:  # noqa: BLE001
                errors.append(type(exc).__name__)
            finally:
                c.abort()

        await asyncio.gather(*(loop(c) for c in conns))

    try:
        asyncio.run(main())
    finally:
        queue.put((times, errors))


async def large_pods(b: Bench) -> None:
    count = 24_000
    body = giant_review(count)
    while len(body) > MAX_BODY:
        count = int(count * MAX_BODY / len(body) * 0.99)
        body = giant_review(count)
    async with Server(b, "large", ["--policies", str(b.checkout / "policies"), "--workers", "1"]) as srv:
        await srv.wait_up()
        ctx = srv.client_context()
        small = http_request("/validate", small_fixture())
        await sequential_latencies(srv.port, ctx, small_fixture(), 30)
        idle_hwm = proc_status(srv.pid, "VmHWM")
        window = 10.0
        small_times: list[float] = []
        # The large senders run in a process of their own, so the small client's event loop is not the
        # one writing 4 x 2 MiB over TLS: what it waits for is the server.
        mp = multiprocessing.get_context("spawn")
        queue = mp.Queue()
        senders = mp.Process(target=large_senders_process,
                             args=(srv.port, str(srv.ca_file), count, window, 4, queue), daemon=True)
        senders.start()
        try:
            ready = await asyncio.to_thread(queue.get, True, 60)  # connected, about to send
            stop_at = time.monotonic() + window
            c = await Conn.open(srv.port, ctx)
            try:
                await asyncio.sleep(0.3)  # the large ones are in flight
                while time.monotonic() < stop_at:
                    t0 = time.perf_counter()
                    await c.send(small, timeout=60)
                    small_times.append(time.perf_counter() - t0)
            finally:
                c.close()
            large_times, large_errors = await asyncio.to_thread(queue.get, True, 90)
            await asyncio.to_thread(senders.join, 10)
        finally:
            if senders.is_alive():
                senders.terminate()
        assert ready == "ready"
        peak = proc_status(srv.pid, "VmHWM")
        slow = sum(t > 5 for t in small_times)
        note = "" if count == 24_000 else f"; {count} containers fit in 3 MiB"
        b.record(F2A, f"{ms(pct(small_times, .5))} / {ms(pct(small_times, .99))} / {ms(max(small_times))}, "
                      f"{slow} of {len(small_times)} > 5 s ({len(large_times)} large answered, "
                      f"p50 {ms(pct(large_times, .5)) if large_times else 'n/a'}"
                      f"{f', {len(large_errors)} errors' if large_errors else ''}; body {len(body) / 2**20:.1f} MiB"
                      f"{note})")
        b.record(F2B, f"{mib(idle_hwm)} -> {mib(peak)}")


# 3./4. certificate rotation -----------------------------------------------------------------------

F3 = "3. new handshakes presenting RSA after an ECDSA -> RSA rotation"
F4 = "4. new handshakes presenting an expired cert after rotating to it"


async def handshakes(port: int, count: int) -> list[x509.Certificate]:
    return [await asyncio.to_thread(presented_cert, port) for _ in range(count)]


async def rotate(srv: Server, cert: bytes, key: bytes) -> tuple[float | None, str]:
    offset = srv.log_size()
    write_atomic(srv.key_file, key)
    write_atomic(srv.cert_file, cert)
    waited = await srv.wait_log("tls_reload", offset, 10.0)
    await asyncio.sleep(1.5)  # a later tls_reload (key and cert seen apart) and the socket swap
    lines = [line for line in srv.log(offset).splitlines() if "tls_reload" in line]
    result = "no tls_reload logged"
    if lines:
        try:
            result = "reload " + str(json.loads(lines[-1]).get("result", "?"))
        except ValueError:
            result = "reload logged"
    return waited, result


async def rotation_key_type(b: Bench) -> None:
    async with Server(b, "rotate", ["--policies", str(b.checkout / "policies"),
                                    *b.flag("--reload-interval", "0.5")]) as srv:
        await srv.wait_up()
        first = await handshakes(srv.port, 5)
        assert all(isinstance(c.public_key(), ec.EllipticCurvePublicKey) for c in first), "not ECDSA at start"
        _, crt, key = serving_pair("rsa", ca_name="bench CA 2")
        waited, result = await rotate(srv, crt, key)
        seen = await handshakes(srv.port, 100)
        rsa_seen = sum(isinstance(c.public_key(), rsa.RSAPublicKey) for c in seen)
        b.record(F3, f"{rsa_seen}/100 ({result}"
                     f"{f' after {waited:.1f} s' if waited is not None else ''})")


async def rotation_expired(b: Bench) -> None:
    async with Server(b, "expired", ["--policies", str(b.checkout / "policies"),
                                     *b.flag("--reload-interval", "0.5")]) as srv:
        await srv.wait_up()
        past = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=30)
        _, crt, key = serving_pair("ecdsa", now=past, days=1, ca_name="bench CA old")
        _, result = await rotate(srv, crt, key)
        now = dt.datetime.now(dt.UTC)
        seen = await handshakes(srv.port, 100)
        expired = sum(c.not_valid_after_utc < now for c in seen)
        b.record(F4, f"{expired}/100 ({result})")


# 5. slow clients ----------------------------------------------------------------------------------

F5A = "5a. slow clients (incomplete head) still held after 15 s"
F5B = "5b. RSS with 2,000 connections holding an incomplete head"

PARTIAL_HEAD = b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"


class Held:
    """A connection that sent an incomplete request head; ``closed`` resolves (monotonic time) when the server
    closes it."""

    def __init__(self, conn: Conn, opened: float):
        self.conn = conn
        self.opened = opened
        self.closed: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._watcher = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        with contextlib.suppress(OSError, ssl.SSLError, RuntimeError):
            while await self.conn.reader.read(65536):
                pass
        if not self.closed.done():
            self.closed.set_result(time.monotonic())

    @classmethod
    async def open(cls, port: int, ctx: ssl.SSLContext) -> Held:
        conn = await Conn.open(port, ctx, timeout=30)
        conn.writer.write(PARTIAL_HEAD)
        await conn.writer.drain()
        return cls(conn, time.monotonic())


def peak_open(held: list[Held]) -> int:
    """The most connections open at the same time, from the client's side."""
    events = sorted([(h.opened, 1) for h in held] + [(h.closed.result(), -1) for h in held if h.closed.done()])
    peak = current = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


async def slow_clients(b: Bench) -> None:
    async with Server(b, "slow", ["--policies", str(b.checkout / "policies")]) as srv:
        await srv.wait_up()
        ctx = srv.client_context()
        held = [await Held.open(srv.port, ctx) for _ in range(20)]
        await asyncio.sleep(15)
        still = [h for h in held if not h.closed.done()]
        closes = sorted(h.closed.result() - h.opened for h in held if h.closed.done())
        when = f" (closed after ~{statistics.median(closes):.1f} s)" if closes else ""
        b.record(F5A, f"{len(still)}/20{when}")
        for h in held:
            h.conn.abort()

        if b.quick:
            b.record(F5B, "skipped (--quick)")
            return
        await asyncio.sleep(1)
        base = proc_status(srv.pid, "VmRSS")
        sem = asyncio.Semaphore(50)
        opened: list[Held] = []
        failed = 0

        async def one() -> None:
            nonlocal failed
            async with sem:
                try:
                    opened.append(await Held.open(srv.port, ctx))
                except (TimeoutError, OSError, ssl.SSLError):
                    failed += 1

        t0 = time.monotonic()
        await asyncio.gather(*(one() for _ in range(2000)))
        took = time.monotonic() - t0
        await asyncio.sleep(2)
        rss = proc_status(srv.pid, "VmRSS")
        at_once = sum(h.closed.done() and h.closed.result() - h.opened < 1 for h in opened)
        b.record(F5B, f"{mib(base)} -> {mib(rss)} (+{mib((rss or 0) - (base or 0))}); "
                      f"at most {peak_open(opened)} open at once, {at_once} closed < 1 s after their handshake, "
                      f"{failed} handshakes failed; 2,000 opened in {took:.0f} s")
        for h in opened:
            h.conn.abort()


# 6. logs ------------------------------------------------------------------------------------------

F6 = "6. 40 bad requests with a planted secret: stderr bytes / longest line / secret count"


async def raw_exchange(port: int, ctx: ssl.SSLContext, data: bytes, *, abort: bool = False) -> None:
    conn = await Conn.open(port, ctx)
    try:
        conn.writer.write(data)
        await conn.writer.drain()
        if abort:
            await asyncio.sleep(0.05)
            conn.abort()
            return
        if conn.writer.can_write_eof():
            conn.writer.write_eof()
        try:
            async with asyncio.timeout(3):
                while await conn.reader.read(65536):
                    pass
        except (TimeoutError, OSError, ssl.SSLError):
            pass
    finally:
        conn.abort()


async def logs(b: Bench) -> None:
    async with Server(b, "logs", ["--policies", str(b.checkout / "policies")]) as srv:
        await srv.wait_up()
        ctx = srv.client_context()
        await asyncio.sleep(0.5)
        offset = srv.log_size()
        secret = "s3cr3t-" + secrets.token_hex(8)
        body = orjson.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                             "request": {"uid": secret, "object": {"data": secret * 20}}})
        bad = [
            # HTTP/1.0 POST without Content-Length: the body is the next "request"
            (b"POST /validate HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\n\r\n" + body, False),
            # a client gone mid-body
            (b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
             b"Content-Length: 100000\r\n\r\n" + body, True),
            # malformed request lines and heads
            (f"POST /validate?token={secret} HTTP/1.1 {secret}\r\nHost: localhost\r\n\r\n".encode(), False),
            (f"{secret}(x) /validate HTTP/1.1\r\nHost: localhost\r\n\r\n".encode(), False),
            (f"POST /validate HTTP/1.1\r\nHost: localhost\r\nX-Token: {secret}\x00\x01\r\n\r\n".encode(), False),
        ]
        for i in range(40):
            data, abort = bad[i % len(bad)]
            try:
                await raw_exchange(srv.port, ctx, data, abort=abort)
            except (OSError, ssl.SSLError, TimeoutError):
                pass
        await asyncio.sleep(1.5)
        text = srv.log(offset)
        lines = text.splitlines()
        b.record(F6, f"{len(text.encode())} B / {max((len(line) for line in lines), default=0)} chars / "
                     f"{text.count(secret)} ({len(lines)} lines)")


# 7. client CA -------------------------------------------------------------------------------------

F7A = "7a. review without a client cert (and /healthz without one)"
F7B = "7b. cert from CA2 after the --client-ca file is swapped to CA2"
F7C = "7c. cert of another name from the same CA (--client-name)"


async def try_review(port: int, ctx: ssl.SSLContext) -> str:
    try:
        conn = await Conn.open(port, ctx, timeout=5)
    except (OSError, ssl.SSLError, TimeoutError) as exc:
        return f"refused (TLS: {type(exc).__name__})"
    try:
        status, answer = await conn.review("/validate", small_fixture(), timeout=5)
        return "accepted" if status == 200 and answer is not None else f"refused (HTTP {status})"
    except (OSError, ssl.SSLError, TimeoutError, asyncio.IncompleteReadError) as exc:
        return f"refused (TLS: {type(exc).__name__})"
    finally:
        conn.close()


async def client_ca(b: Bench) -> None:
    if not b.has("--client-ca"):
        for f in (F7A, F7B, F7C):
            b.record(f, "n/a (no --client-ca)")
        return
    folder = b.tmp / "client-ca"
    folder.mkdir(exist_ok=True)
    ca1, ca1_key = generate_ca("client CA 1")
    ca2, ca2_key = generate_ca("client CA 2")
    ca_file = folder / "ca.crt"
    ca_file.write_bytes(pem_cert(ca1))

    def identity(ca: x509.Certificate, key: Any, name: str) -> Path:
        crt, k = client_cert(ca, key, name)
        (folder / f"{name}-{id(ca)}.crt").write_bytes(crt)
        (folder / f"{name}-{id(ca)}.key").write_bytes(k)
        return folder / f"{name}-{id(ca)}"

    good1 = identity(ca1, ca1_key, "kube-apiserver")
    other1 = identity(ca1, ca1_key, "intruder")
    good2 = identity(ca2, ca2_key, "kube-apiserver")
    args = ["--policies", str(b.checkout / "policies"), "--client-ca", str(ca_file),
            *b.flag("--client-name", "kube-apiserver"), *b.flag("--reload-interval", "0.5")]
    async with Server(b, "clientca", args) as srv:
        def ctx_for(ident: Path | None) -> ssl.SSLContext:
            ctx = srv.client_context()
            if ident is not None:
                ctx.load_cert_chain(f"{ident}.crt", f"{ident}.key")
            return ctx

        await srv.wait_up(ctx_for(good1))
        try:
            probe = f"/healthz {(await get_status(srv.port, '/healthz', ctx_for(None)))[0]}"
        except Exception as exc:  # noqa: BLE001
            probe = f"/healthz failed ({type(exc).__name__})"
        baseline = await try_review(srv.port, ctx_for(good1))
        b.record(F7A, f"{await try_review(srv.port, ctx_for(None))}; {probe}; CA1 cert: {baseline}")
        if b.has("--client-name"):
            b.record(F7C, await try_review(srv.port, ctx_for(other1)))
        else:
            b.record(F7C, f"n/a (no --client-name; such a cert is {await try_review(srv.port, ctx_for(other1))})")
        write_atomic(ca_file, pem_cert(ca2))
        started = time.monotonic()
        outcome = ""
        while time.monotonic() - started < 6:
            outcome = await try_review(srv.port, ctx_for(good2))
            if outcome == "accepted":
                break
            await asyncio.sleep(0.25)
        if outcome == "accepted":
            b.record(F7B, f"accepted after {time.monotonic() - started:.1f} s")
        else:
            b.record(F7B, f"not accepted within 6 s: {outcome}")


# 8. recovery --------------------------------------------------------------------------------------

F8 = "8. /readyz back to 200 after the API server returns"


async def readyz(port: int) -> int:
    """The /readyz status; 0 when there is no answer."""
    try:
        return (await get_status(port, "/readyz"))[0]
    except (TimeoutError, OSError, ssl.SSLError, asyncio.IncompleteReadError, ValueError):
        return 0


async def recovery(b: Bench) -> None:
    policy = b.tmp / "quota.yaml"
    policy.write_text(QUOTA_POLICY)
    outage = 15.0 if b.quick else 40.0
    kube = await fake_cluster()
    try:
        async with Server(b, "recovery", ["--policies", str(policy), "--kubeconfig", str(b.kubeconfig(kube))]) as srv:
            await srv.wait_up(path="/readyz")
            kube.unavailable = True
            kube.drop_watches()
            down_at = time.monotonic()
            unready_after = None
            while time.monotonic() - down_at < outage:
                if unready_after is None and await readyz(srv.port) != 200:
                    unready_after = time.monotonic() - down_at
                await asyncio.sleep(0.5)
            kube.unavailable = False
            restored = time.monotonic()
            ready_after = watching_after = None
            limit = 45.0
            kinds = ("pods", "namespaces", "resourcequotas", "networkpolicies")
            while time.monotonic() - restored < limit:
                if watching_after is None and all(kube.open_watches(k) for k in kinds):
                    watching_after = time.monotonic() - restored
                if ready_after is None and await readyz(srv.port) == 200:
                    ready_after = time.monotonic() - restored
                if ready_after is not None and watching_after is not None:
                    break
                await asyncio.sleep(0.2)
            ready = f"{ready_after:.1f} s" if ready_after is not None else f"> {limit:.0f} s"
            unready = f"503 after {unready_after:.0f} s of outage" if unready_after is not None else "never 503"
            watching = f"{watching_after:.1f} s" if watching_after is not None else f"> {limit:.0f} s"
            b.record(F8, f"{ready} (outage {outage:.0f} s: {unready}; every kind watched again after {watching})")
    finally:
        await kube.__aexit__(None, None, None)


# 9. lint ------------------------------------------------------------------------------------------

F9 = "9. lint --strict exit: catch-all exemptions / invalid label key"

EXEMPTIONS = """apiVersion: tenantguard.io/v1alpha1
kind: ClusterPolicy
metadata: {name: base}
spec:
  rules: {podSecurity: baseline}
  exemptions:
  - {users: ["*"], reason: everyone}
  - {groups: [system:authenticated], reason: every caller}
  - {namespaces: ["*"], reason: every namespace}
"""

LABEL_KEY = """apiVersion: tenantguard.io/v1alpha1
kind: TenantPolicy
metadata: {name: shop}
spec:
  namespaces: [shop]
  defaults: {labels: {"we~ird/key": x}}
"""


async def lint(b: Bench) -> None:
    folder = b.tmp / "lint"
    folder.mkdir(exist_ok=True)
    codes = []
    env = dict(os.environ, PYTHONPATH=str(b.checkout))
    for name, text in (("exemptions.yaml", EXEMPTIONS), ("label.yaml", LABEL_KEY)):
        (folder / name).write_text(text)
        out = await asyncio.to_thread(subprocess.run, [b.python, "-m", "webhook", "lint", "--strict",
                                                       str(folder / name)],
                                      cwd=b.checkout, env=env, capture_output=True, text=True, timeout=60)
        codes.append(str(out.returncode))
    b.record(F9, " / ".join(codes))


SCENARIOS: list[tuple[int, Callable[[Bench], Awaitable[None]], list[str], float]] = [
    (1, forged_reservations, [F1A, F1B], 150),
    (2, large_pods, [F2A, F2B], 120),
    (3, rotation_key_type, [F3], 40),
    (4, rotation_expired, [F4], 40),
    (5, slow_clients, [F5A, F5B], 90),
    (6, logs, [F6], 60),
    (7, client_ca, [F7A, F7B, F7C], 60),
    (8, recovery, [F8], 120),
    (9, lint, [F9], 60),
]


def print_table(columns: dict[str, dict[str, str]]) -> None:
    labels = list(columns)
    findings = [f for _, _, names, _ in SCENARIOS for f in names]
    print("\n| finding | " + " | ".join(labels) + " |")
    print("| --- |" + " --- |" * len(labels))
    for f in findings:
        cells = [columns[label].get(f, "") for label in labels]
        if any(cells):
            print(f"| {f} | " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")


def commit_of(checkout: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
                             check=False, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "?"
    except OSError:
        return "?"


async def run(b: Bench, only: set[int] | None) -> None:
    for number, scenario, names, budget in SCENARIOS:
        if only and number not in only:
            continue
        started = time.monotonic()
        try:
            await asyncio.wait_for(scenario(b), budget)
        except Exception as exc:  # noqa: BLE001  # a bench: report and go on
            why = f"{type(exc).__name__}: {exc}".strip()
            if isinstance(exc, (TimeoutError, TimeoutError)) and not str(exc):
                why = f"did not finish within {budget:g} s"
            for name in names:
                if name not in b.results:
                    b.record(name, f"error: {why[:200]}")
        print(f"   (scenario {number}: {time.monotonic() - started:.0f} s)", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", type=Path, default=ROOT, help="the tree whose server runs (default: this one)")
    parser.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"),
                        help="interpreter with the dependencies (default: this tree's .venv)")
    parser.add_argument("--label", help="column name (default: 'after' for this tree, 'before' for another)")
    parser.add_argument("--results", type=Path, help="JSON file keeping each label's column; the table shows all")
    parser.add_argument("--quick", action="store_true", help="shorter outage (15 s), shorter bursts, no 2,000 connections")
    parser.add_argument("--only", help="comma-separated scenario numbers")
    parser.add_argument("--keep", action="store_true", help="keep the servers' logs (the directory is printed)")
    args = parser.parse_args()

    checkout = args.checkout.resolve()
    python = args.python if Path(args.python).exists() else sys.executable
    label = args.label or ("after" if checkout == ROOT else "before")
    only = {int(x) for x in args.only.split(",")} if args.only else None
    print(f"tenantguard hostile bench: checkout {checkout} ({commit_of(checkout)}), label {label!r}, "
          f"{os.cpu_count()} CPUs, python {sys.version.split()[0]}, "
          f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC{' (quick)' if args.quick else ''}", flush=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tenantguard-hostile-") as tmp:
        if args.keep:
            tmp = tempfile.mkdtemp(prefix="tenantguard-hostile-")
            print(f"   (logs kept in {tmp})", flush=True)
        bench = Bench(checkout, python, Path(tmp), args.quick)
        missing = [f for f in ("--trusted-network", "--client-name", "--max-containers", "--header-timeout",
                               "--max-connections") if not bench.has(f)]
        if missing:
            print(f"   (this server has no {', '.join(missing)}: left out)", flush=True)
        asyncio.run(run(bench, only))
    print(f"   (total {time.monotonic() - started:.0f} s)")

    columns: dict[str, dict[str, str]] = {}
    if args.results and args.results.exists():
        columns = json.loads(args.results.read_text())
    columns[label] = bench.results if not only else {**columns.get(label, {}), **bench.results}
    if args.results:
        args.results.write_text(json.dumps(columns, indent=1, ensure_ascii=False))
    print_table(columns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
