"""Drain, real sockets and real processes.

- in-process: a request whose body is still arriving when the drain starts is answered;
  so is a request sent long after the port closed on a connection opened (or kept alive)
  before, even one whose TLS handshake comes late; an idle connection holds the drain no
  longer than the grace period, or until its client closes it; readiness is false from
  the first moment; ``--shutdown-delay`` keeps answering (unready, ``Connection: close``
  on every answer) before the port closes;
- `tenantguard serve` as a subprocess: SIGTERM with a request in flight; a failed handshake
  does not hold the drain; a real TLS client trusting only the CA, compared with
  `tenantguard dry-run` on the same reviews; ``--workers 2`` (shared port, aggregated
  metrics, SIGTERM reaches every worker, a dead worker restarted, one refusing its
  policies stops all with exit 2, one stuck killed); refusing to start on bad policies or
  flags; under load, SIGTERM costs no request.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import queue
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import jsonpatch
import pytest

from tests.conftest import POLICIES, fixture_review, run_cli
from tests.test_server_http import pod, review
from tests.test_server_reload import CPU_LIMITS, client_context, samples, settings_for
from webhook.actions.certs import generate_self_signed
from webhook.server.runner import WebhookServer


@pytest.fixture
def tls(tmp_path: Path) -> dict[str, Path]:
    ca, cert, key = generate_self_signed(["localhost", "127.0.0.1"], tmp_path / "tls")
    return {"ca": ca, "cert": cert, "key": key}


def http_request(path: str, body: bytes, *, expect_continue: bool = False) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n")
    if expect_continue:
        head += "Expect: 100-continue\r\n"
    return (head + "\r\n").encode()


def parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


# --- in-process drain -------------------------------------------------------------------------------

async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status, headers, _ = parse_response(head)
    body = await reader.readexactly(int(headers["content-length"]))
    return status, headers, body


async def test_drain_finishes_the_request_in_flight(tmp_path: Path, tls) -> None:
    settings = settings_for(tmp_path, tls, grace_period=10)
    server = WebhookServer(settings)
    await server.start()
    body = json.dumps(review(pod(), uid="in-flight")).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=client_context(tls["ca"]),
                                                  server_hostname="localhost")
    writer.write(http_request("/validate", body, expect_continue=True))
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 100 Continue")
    writer.write(body[: len(body) // 2])
    await writer.drain()
    await asyncio.wait_for(server.context.wait_in_flight(lambda n: n == 1), 10)

    draining = server.drain()
    assert server.ready is False  # at once, before anything else happens
    await asyncio.wait_for(server.port_closed.wait(), 10)
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", server.port, ssl=client_context(tls["ca"]),
                                      server_hostname="localhost")
    assert not draining.done()  # waiting for our request

    writer.write(body[len(body) // 2:])
    await writer.drain()
    status, headers, answer = await _read_response(reader)
    assert status == 200 and headers.get("connection") == "close"
    assert json.loads(answer)["response"]["uid"] == "in-flight"
    await asyncio.wait_for(draining, 10)
    writer.close()


async def _connect(server: WebhookServer, tls) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection whose TLS handshake is done, once the server counts it among its connections."""
    before = server.connections.open
    conn = await asyncio.open_connection("127.0.0.1", server.port, ssl=client_context(tls["ca"]),
                                         server_hostname="localhost")
    await asyncio.wait_for(server.connections.wait(lambda c: c.open > before), 10)
    return conn


async def _validate(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    uid: str) -> tuple[int, dict[str, str], dict[str, Any]]:
    body = json.dumps(review(pod(), uid=uid)).encode()
    writer.write(http_request("/validate", body) + body)
    status, headers, answer = await _read_response(reader)
    return status, headers, json.loads(answer)


# How long after the port closed a client still sends its request below: longer than a client
# pausing between its handshake and its request, or between two requests, under CPU contention.
LATE = 0.5


@pytest.mark.parametrize("kept_alive", [False, True], ids=["just-connected", "kept-alive"])
async def test_drain_answers_a_request_sent_late_on_an_open_connection(tmp_path: Path, tls,
                                                                      kept_alive: bool) -> None:
    server = WebhookServer(settings_for(tmp_path, tls, grace_period=30))
    await server.start()
    reader, writer = await _connect(server, tls)
    if kept_alive:  # an answer before the drain keeps the connection open for the next request
        status, headers, _ = await _validate(reader, writer, "before")
        assert status == 200 and headers.get("connection") != "close"

    draining = server.drain()
    await asyncio.wait_for(server.port_closed.wait(), 10)
    with pytest.raises(TimeoutError):  # the drain waits for the request this connection may bring
        await asyncio.wait_for(asyncio.shield(draining), LATE)

    status, headers, answer = await _validate(reader, writer, "late")
    assert status == 200 and headers.get("connection") == "close"
    assert answer["response"]["uid"] == "late"
    await asyncio.wait_for(draining, 10)
    assert await reader.read() == b""  # closed by the server after the answer
    writer.close()


async def test_drain_answers_a_client_whose_handshake_comes_late(tmp_path: Path, tls) -> None:
    server = WebhookServer(settings_for(tmp_path, tls, grace_period=30))
    await server.start()
    sock = socket.create_connection(("127.0.0.1", server.port))  # accepted, no TLS handshake yet
    await asyncio.wait_for(server.connections.wait(lambda c: c.handshakes == 1), 10)

    draining = server.drain()
    await asyncio.wait_for(server.port_closed.wait(), 10)
    with pytest.raises(TimeoutError):  # the drain waits for the handshake, then for the request
        await asyncio.wait_for(asyncio.shield(draining), LATE)

    reader, writer = await asyncio.open_connection(sock=sock, ssl=client_context(tls["ca"]),
                                                  server_hostname="localhost")
    status, headers, answer = await _validate(reader, writer, "late")
    assert status == 200 and headers.get("connection") == "close"
    assert answer["response"]["uid"] == "late"
    await asyncio.wait_for(draining, 10)
    writer.close()


async def test_an_idle_connection_holds_the_drain_at_most_the_grace_period(tmp_path: Path, tls) -> None:
    server = WebhookServer(settings_for(tmp_path, tls, grace_period=0.2))
    await server.start()
    reader, writer = await _connect(server, tls)
    await asyncio.wait_for(server.drain(), 10)  # the client never sends a request
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()


async def test_a_client_closing_its_idle_connection_ends_the_drain(tmp_path: Path, tls) -> None:
    server = WebhookServer(settings_for(tmp_path, tls, grace_period=3600))
    await server.start()
    _, writer = await _connect(server, tls)
    draining = server.drain()
    await asyncio.wait_for(server.port_closed.wait(), 10)
    assert not draining.done() and server.connections.awaited == 1
    writer.close()
    await asyncio.wait_for(draining, 10)  # at once, not after the grace period


async def test_drain_is_bounded_by_the_grace_period(tmp_path: Path, tls) -> None:
    settings = settings_for(tmp_path, tls, grace_period=0.2)
    server = WebhookServer(settings)
    await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=client_context(tls["ca"]),
                                                  server_hostname="localhost")
    writer.write(http_request("/validate", b"{" * 100, expect_continue=True))
    await reader.readuntil(b"\r\n\r\n")
    await asyncio.wait_for(server.context.wait_in_flight(lambda n: n == 1), 10)
    started = time.monotonic()
    await asyncio.wait_for(server.drain(), 10)  # the client never sends its body
    assert time.monotonic() - started < 5
    writer.close()


async def test_shutdown_delay_keeps_answering_unready(tmp_path: Path, tls) -> None:
    settings = settings_for(tmp_path, tls, shutdown_delay=0.5)
    server = WebhookServer(settings)
    await server.start()
    draining = server.drain()
    ctx = client_context(tls["ca"])
    for path, body in (("/readyz", None), ("/healthz", None), ("/validate", json.dumps(review(pod())).encode())):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=ctx,
                                                      server_hostname="localhost")
        if body is None:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        else:
            writer.write(http_request(path, body) + body)
        status, headers, answer = await _read_response(reader)
        assert headers.get("connection") == "close"  # every answer, whatever the path
        if path == "/readyz":
            assert status == 503 and b"draining" in answer
        elif path == "/healthz":
            assert status == 200  # liveness holds while draining
        else:
            assert status == 200 and json.loads(answer)["response"]["uid"] == "uid-1"
        writer.close()
    await asyncio.wait_for(draining, 10)


# --- `tenantguard serve` as a process ---------------------------------------------------------------

class Served:
    """A `tenantguard serve` subprocess: its banner, its JSON log lines, requests over TLS."""

    def __init__(self, args: list[str], ca: Path | None = None, timeout: float = 30):
        self.proc = subprocess.Popen([sys.executable, "-m", "webhook", "serve", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.logs: queue.Queue[dict[str, Any]] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        self.banner = self._banner(timeout)
        url = self.banner[0].split()[2]
        self.port = int(url.rsplit(":", 1)[1])
        self.ca = ca or Path(next(line.split("CA: ")[1] for line in self.banner if "CA: " in line))

    def _pump(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line)
            try:
                self.logs.put(json.loads(line))
            except ValueError:
                pass

    def _banner(self, timeout: float) -> list[str]:
        """stdout up to the banner's end (its last line is the dry-run hint with a throwaway pair)."""
        lines: queue.Queue[str] = queue.Queue()

        def read() -> None:
            for line in self.proc.stdout:
                lines.put(line.rstrip("\n"))
        threading.Thread(target=read, daemon=True).start()
        throwaway = "--cert" not in self.proc.args
        banner: list[str] = []
        while True:
            try:
                banner.append(lines.get(timeout=timeout))
            except queue.Empty:
                self.proc.kill()
                pytest.fail("serve printed no banner:\n" + "".join(self.stderr))
            if not throwaway or banner[-1].startswith("  tenantguard dry-run"):
                return banner

    def wait_for_log(self, event: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                entry = self.logs.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no {event!r} log line; stderr:\n" + "".join(self.stderr))
            if entry.get("event") == event:
                return entry

    def connect(self) -> ssl.SSLSocket:
        ctx = ssl.create_default_context(cafile=str(self.ca))  # the CA only, no system store; name checked
        return ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.port), timeout=10),
                               server_hostname="localhost")

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], bytes]:
        data = b"" if body is None else json.dumps(body).encode()
        with self.connect() as sock:
            head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            if body is not None:
                head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            sock.sendall(head.encode() + b"\r\n" + data)
            return parse_response(_read_all(sock))

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def _read_all(sock: ssl.SSLSocket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ssl.SSLZeroReturnError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def served(tmp_path: Path):
    started: list[Served] = []

    def start(*args: str, ca: Path | None = None) -> Served:
        s = Served(list(args), ca)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def _policies(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    folder.mkdir(exist_ok=True)
    (folder / "limits.yaml").write_text(CPU_LIMITS)
    return folder


def test_sigterm_lets_the_request_in_flight_finish(served, tmp_path: Path) -> None:
    s = served("--policies", str(_policies(tmp_path)), "--port", "0", "--host", "127.0.0.1",
               "--tls-dir", str(tmp_path / "tls"), "--shutdown-delay", "1")
    assert s.request("GET", "/readyz")[0] == 200
    body = json.dumps(review(pod(), uid="in-flight")).encode()
    with s.connect() as sock:
        sock.sendall(http_request("/validate", body, expect_continue=True))
        assert sock.recv(4096).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body[:100])
        s.proc.send_signal(signal.SIGTERM)
        assert s.wait_for_log("drain")["in_flight"] == 1
        status, _, text = s.request("GET", "/readyz")  # during --shutdown-delay: answering, unready
        assert status == 503 and b"draining" in text
        sock.sendall(body[100:])
        status, headers, answer = parse_response(_read_all(sock))
    assert status == 200 and headers["connection"] == "close"
    assert json.loads(answer)["response"]["uid"] == "in-flight"
    assert s.proc.wait(20) == 0
    s.wait_for_log("stop")


def _pipeline(s: Served, sent: dict[str, Any]) -> tuple[dict, dict, dict]:
    """What the API server does: /mutate, apply the patch, /validate the result."""
    status, _, body = s.request("POST", "/mutate", sent)
    assert status == 200
    m = json.loads(body)["response"]
    patch = json.loads(base64.b64decode(m["patch"])) if "patch" in m else []
    patched = jsonpatch.apply_patch(sent["request"]["object"], patch)
    again = json.loads(json.dumps(sent))
    again["request"]["object"] = patched
    status, _, body = s.request("POST", "/validate", again)
    assert status == 200
    return m, json.loads(body)["response"], {"patch": patch, "object": patched}


def test_real_tls_answers_match_the_dry_run(served, tmp_path: Path) -> None:
    ca, cert, key = generate_self_signed(["localhost", "127.0.0.1"], tmp_path / "tls")
    s = served("--policies", str(POLICIES), "--cert", str(cert), "--key", str(key), "--port", "0", "--host",
               "127.0.0.1", ca=ca)
    assert s.request("GET", "/healthz")[0] == 200
    with pytest.raises(ssl.SSLCertVerificationError):  # the system store does not vouch for it
        ssl.create_default_context().wrap_socket(socket.create_connection(("127.0.0.1", s.port)),
                                                 server_hostname="localhost")
    for size in ("small", "medium", "large"):
        sent = fixture_review(size)
        m, v, applied = _pipeline(s, sent)
        assert m["uid"] == v["uid"] == sent["request"]["uid"]
        path = tmp_path / f"{size}.json"
        path.write_text(json.dumps(sent))
        offline = run_cli("dry-run", "--policies", str(POLICIES), "--output", "json", str(path))
        [result] = offline.json()["results"]
        assert offline.code == (0 if result["allowed"] else 1)
        assert (m["allowed"] and v["allowed"]) == result["allowed"]
        assert applied["patch"] == result["patch"]
        assert applied["object"] == result["object"]
        assert m.get("warnings", []) + v.get("warnings", []) == result["warnings"]
        if not result["allowed"]:
            assert v["status"]["code"] == 403
            denials = [f for f in result["violations"] if f["enforcement"] == "Enforce"]
            assert denials
            for violation in denials:
                assert violation["message"] in v["status"]["message"]
    s.stop()


def test_a_failed_handshake_does_not_hold_the_drain(served, tmp_path: Path) -> None:
    pytest.importorskip("uvloop")  # asyncio's own loop notices a failed handshake only when it collects garbage
    s = served("--policies", str(_policies(tmp_path)), "--port", "0", "--host", "127.0.0.1",
               "--tls-dir", str(tmp_path / "tls"), "--grace-period", "600")
    with pytest.raises(ssl.SSLCertVerificationError):  # the client rejects the throwaway certificate
        ssl.create_default_context().wrap_socket(socket.create_connection(("127.0.0.1", s.port)),
                                                 server_hostname="localhost")
    assert s.stop(timeout=60) == 0  # well before the grace period


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_workers_share_the_port_and_the_metrics(served, tmp_path: Path) -> None:
    s = served("--policies", str(_policies(tmp_path)), "--port", str(_free_port()), "--host", "127.0.0.1",
               "--workers", "2", "--tls-dir", str(tmp_path / "tls"))
    starts = [s.wait_for_log("start") for _ in range(2)]
    pids = {entry["pid"] for entry in starts}
    assert len(pids) == 2 and {entry["worker"] for entry in starts} == {0, 1}
    for i in range(12):  # a new connection each: the kernel spreads them over the workers
        status, _, body = s.request("POST", "/validate", review(pod(), uid=f"u{i}"))
        assert status == 200 and json.loads(body)["response"]["uid"] == f"u{i}"
    for _ in range(4):  # whichever worker answers the scrape reports both
        text = s.request("GET", "/metrics")[2].decode()
        total = samples(text, "tenantguard_admission_requests_total")
        assert sum(total.values()) == 12
        generations = samples(text, "tenantguard_policy_generation_info")
        assert {dict(k)["pid"] for k in generations} == {str(p) for p in pids}
    assert s.stop() == 0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def _two_workers(served, tmp_path: Path, *args: str) -> tuple[Served, dict[int, int]]:
    """`serve --workers 2`, once both listen, and the pid of each worker by index."""
    s = served("--policies", str(_policies(tmp_path)), "--port", str(_free_port()), "--host", "127.0.0.1",
               "--workers", "2", "--tls-dir", str(tmp_path / "tls"), *args)
    starts = [s.wait_for_log("start") for _ in range(2)]
    return s, {entry["worker"]: entry["pid"] for entry in starts}


def test_a_worker_that_dies_is_restarted(served, tmp_path: Path) -> None:
    s, pids = _two_workers(served, tmp_path)
    os.kill(pids[0], signal.SIGKILL)
    died = s.wait_for_log("worker_exit")
    assert (died["worker"], died["exit_code"], died["restart_in"]) == (0, -signal.SIGKILL, 0.5)
    again = s.wait_for_log("start")
    assert again["worker"] == 0 and again["pid"] not in pids.values()
    for i in range(4):
        status, _, body = s.request("POST", "/validate", review(pod(), uid=f"u{i}"))
        assert status == 200 and json.loads(body)["response"]["uid"] == f"u{i}"
    assert s.stop() == 0


def test_a_worker_refusing_its_policies_stops_all_with_exit_2(served, tmp_path: Path) -> None:
    s, pids = _two_workers(served, tmp_path, "--reload-interval", "3600")
    (tmp_path / "policies" / "limits.yaml").write_text(CPU_LIMITS.replace("requireLimits", "requireLimitz"))
    os.kill(pids[1], signal.SIGKILL)  # its replacement loads the broken file
    assert s.proc.wait(30) == 2
    assert s.wait_for_log("worker_exit")["restart_in"] == 0.5
    refused = s.wait_for_log("worker_exit")
    assert refused["worker"] == 1 and refused["exit_code"] == 2
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_worker_that_does_not_stop_is_killed(served, tmp_path: Path) -> None:
    s, pids = _two_workers(served, tmp_path, "--grace-period", "0")
    os.kill(pids[0], signal.SIGSTOP)  # cannot drain: killed shutdown_delay + grace_period + 5 s after SIGTERM
    try:
        started = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        assert s.wait_for_log("worker_kill")["worker"] == 0
        assert time.monotonic() - started >= 5
        assert s.proc.wait(30) == 0
    finally:
        if s.proc.poll() is None:
            os.kill(pids[0], signal.SIGCONT)


@pytest.mark.parametrize("args,code,message", [
    (["--cert", "x.crt"], 2, "--cert and --key go together"),
    (["--workers", "0"], 2, "--workers must be at least 1"),
    (["--workers", "2", "--port", "0"], 2, "--port 0 cannot be shared"),
    (["--cert", "/nonexistent/tls.crt", "--key", "/nonexistent/tls.key"], 1, "/nonexistent/tls.crt"),
])
def test_refuses_bad_flags(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "webhook", "serve", "--policies", str(_policies(tmp_path)),
                             "--port", "0", *args], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == code, result.stderr
    assert message in result.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_refuses_to_start_on_bad_policies(tmp_path: Path, workers: str) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "p.yaml").write_text(CPU_LIMITS.replace("requireLimits", "requireLimitz"))
    result = subprocess.run([sys.executable, "-m", "webhook", "serve", "--policies", str(folder), "--port",
                             str(_free_port()), "--workers", workers, "--tls-dir", str(tmp_path / "tls")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "requireLimitz: unknown field" in result.stderr and "p.yaml: document 1" in result.stderr


# --- under load ------------------------------------------------------------------------------------

class LoadClient:
    """Keep-alive clients that reconnect when told ``Connection: close``; a sent request without
    an answer is a failure (a refused connection is not: no request was sent)."""

    def __init__(self, port: int, ca: Path, body: bytes):
        self.port, self.ctx = port, ssl.create_default_context(cafile=str(ca))
        self.request = http_request("/validate", body) + body
        self.answered = self.failed = 0
        self.verdicts: list[bool] = []
        self.stop = asyncio.Event()
        self._waiting: tuple[int, asyncio.Event] | None = None

    async def one(self) -> None:
        conn = None
        while not self.stop.is_set():
            if conn is None:
                try:
                    conn = await asyncio.open_connection("127.0.0.1", self.port, ssl=self.ctx,
                                                         server_hostname="localhost")
                except OSError:
                    await asyncio.sleep(0.01)  # the port is closed: nothing was sent
                    continue
            reader, writer = conn
            try:
                writer.write(self.request)
                status, headers, _ = parse_response(await reader.readuntil(b"\r\n\r\n"))
                answer = await reader.readexactly(int(headers["content-length"]))
            except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
                self.failed += 1
                conn = None
                continue
            assert status == 200
            self.answered += 1
            self.verdicts.append(json.loads(answer)["response"]["allowed"])
            if self._waiting is not None and self.answered >= self._waiting[0]:
                self._waiting[1].set()
            if headers.get("connection") == "close":
                writer.close()
                conn = None

    async def until(self, count: int) -> None:
        if self.answered < count:
            self._waiting = (count, asyncio.Event())
            await asyncio.wait_for(self._waiting[1].wait(), 30)


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_sigterm_under_load_costs_no_request(served, tmp_path: Path, workers: str) -> None:
    port = _free_port()
    s = served("--policies", str(_policies(tmp_path)), "--port", str(port), "--host", "127.0.0.1",
               "--workers", workers, "--tls-dir", str(tmp_path / "tls"), "--log-level", "warning")
    load = LoadClient(s.port, s.ca, json.dumps(review(pod())).encode())
    clients = [asyncio.create_task(load.one()) for _ in range(8)]
    await load.until(200)
    s.proc.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(s.proc.wait, 30)
    load.stop.set()
    await asyncio.gather(*clients)
    assert code == 0 and load.failed == 0 and load.answered >= 200


async def test_broken_policy_under_load_costs_no_request(served, tmp_path: Path) -> None:
    folder = _policies(tmp_path)
    s = served("--policies", str(folder), "--port", "0", "--host", "127.0.0.1", "--tls-dir", str(tmp_path / "tls"),
               "--reload-interval", "0.05")
    complete = pod()
    complete["spec"]["containers"][0]["resources"]["limits"] = {"cpu": "1"}
    load = LoadClient(s.port, s.ca, json.dumps(review(complete)).encode())
    clients = [asyncio.create_task(load.one()) for _ in range(8)]
    await load.until(100)
    (folder / "limits.yaml").write_text("spec: [broken\n")
    entry = await asyncio.to_thread(s.wait_for_log, "policy_reload")
    assert entry["result"] == "failure"
    seen = load.answered
    await load.until(seen + 200)
    load.stop.set()
    await asyncio.gather(*clients)
    assert load.failed == 0 and all(load.verdicts)  # the last good set kept answering
    assert s.request("GET", "/readyz")[0] == 200
    assert s.stop() == 0


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_throwaway_tls_directory_is_removed_at_exit(served, tmp_path: Path, workers: str) -> None:
    s = served("--policies", str(_policies(tmp_path)), "--port", str(_free_port()), "--host", "127.0.0.1",
               "--workers", workers)
    directory = s.ca.parent
    assert directory.name.startswith("tenantguard-tls-") and (directory / "tls.key").exists()
    status, _, _ = s.request("GET", "/readyz")
    assert status == 200
    assert s.stop() == 0
    assert not directory.exists()  # the next trial's `--cacert /tmp/tenantguard-tls-*/ca.crt` finds one CA


def test_a_given_tls_directory_is_kept(served, tmp_path: Path) -> None:
    s = served("--policies", str(_policies(tmp_path)), "--port", "0", "--tls-dir", str(tmp_path / "tls"))
    assert s.stop() == 0
    assert (tmp_path / "tls" / "ca.crt").exists()
