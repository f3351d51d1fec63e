"""Latency and throughput of the webhook, per AdmissionReview size (figures, not assertions).

Three views of the same work, on the shared fixtures (tests/fixtures/admissionreviews/
small|medium|large.json) and the shipped policies:

1. **core**: what one request costs without any HTTP: ``orjson.loads`` of the body,
   :func:`webhook.server.admission.admit` (from_review + evaluate + the response dict) and
   ``orjson.dumps`` of the answer, for /mutate and for /validate (on the patched object);
2. **HTTP**: `tenantguard serve` started as a real process (TLS, uvloop when installed,
   ``--workers``), one keep-alive TLS connection sending requests one after the other:
   the round trip the API server sees, and the server's own latency from its JSON log
   lines (``latency_ms``: body read to response built);
3. **throughput**: ``--concurrency`` keep-alive connections sending for ``--seconds``.

    .venv/bin/python bench/server_bench.py [--requests 2000] [--concurrency 8] [--seconds 5] [--workers 1]

The client is Python too (a minimal HTTP/1.1 client on asyncio streams) and shares the
machine's CPUs with the server, so HTTP figures are an upper bound of the server's cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import jsonpatch
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from webhook.policy.loader import load_policies
from webhook.server.admission import MUTATE, VALIDATE, answer
from webhook.views.files import StaticClusterView

FIXTURES = [ROOT / "tests" / "fixtures" / "admissionreviews", ROOT.parent / "shared" / "fixtures" / "admissionreviews"]
SIZES = ("small", "medium", "large")


def fixture(size: str) -> bytes:
    for base in FIXTURES:
        path = base / f"{size}.json"
        if path.exists():
            return path.read_bytes()
    raise FileNotFoundError(f"{size}.json")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:8.0f} µs"


def validate_body(raw: bytes, policies, view) -> bytes:
    """The /validate review the API server sends after applying our /mutate patch."""
    review = orjson.loads(raw)
    answer = answer(MUTATE, review, policies, view)
    patch = answer.decision.patch_json() if answer.decision else []
    review["request"]["object"] = jsonpatch.apply_patch(review["request"]["object"], patch)
    return orjson.dumps(review)


# --- 1. the core ----------------------------------------------------------------------------------

def bench_core(requests: int, policies) -> dict[str, dict[str, list[float]]]:
    view = StaticClusterView()
    out: dict[str, dict[str, list[float]]] = {}
    for size in SIZES:
        raw = fixture(size)
        bodies = {"mutate": (MUTATE, raw), "validate": (VALIDATE, validate_body(raw, policies, view))}
        out[size] = {}
        for name, (endpoint, body) in bodies.items():
            for _ in range(50):  # warm up
                orjson.dumps(answer(endpoint, orjson.loads(body), policies, view, consume=True).review)
            times = []
            for _ in range(requests):
                t0 = time.perf_counter()
                orjson.dumps(answer(endpoint, orjson.loads(body), policies, view, consume=True).review)
                times.append(time.perf_counter() - t0)
            out[size][name] = times
    return out


# --- 2/3. through HTTP ----------------------------------------------------------------------------

class Server:
    def __init__(self, workers: int, tmp: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log_path = tmp / "server.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "webhook", "serve", "--policies", str(ROOT / "policies"), "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", str(workers), "--tls-dir", str(tmp / "tls")],
            stdout=subprocess.PIPE, stderr=self.log_path.open("w"), text=True, cwd=ROOT)
        ready = threading.Event()
        threading.Thread(target=self._wait_banner, args=(ready,), daemon=True).start()
        if not ready.wait(60):
            self.proc.kill()
            raise SystemExit("tenantguard serve did not start:\n" + self.log_path.read_text())
        self.ca = tmp / "tls" / "ca.crt"

    def _wait_banner(self, ready: threading.Event) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("  tenantguard dry-run"):
                ready.set()

    def server_latencies(self) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for line in self.log_path.read_text().splitlines():
            if '"event":"admission"' in line:
                entry = json.loads(line)
                out.setdefault(entry["uid"], []).append(entry["latency_ms"] / 1000)
        return out

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


class Connection:
    """One keep-alive HTTP/1.1 connection over TLS, the leanest client asyncio allows."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, ctx: ssl.SSLContext) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost"))

    async def post(self, request: bytes) -> bytes:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.decode(errors="replace"))
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        return await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def http_request(path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def with_uid(body: bytes, uid: str) -> bytes:
    review = orjson.loads(body)
    review["request"]["uid"] = uid
    return orjson.dumps(review)


async def bench_http(server: Server, requests: int, policies) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
    ctx = ssl.create_default_context(cafile=str(server.ca))
    conn = await Connection.open(server.port, ctx)
    view = StaticClusterView()
    out: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for size in SIZES:
        raw = fixture(size)
        out[size] = {}
        for path, body in (("/mutate", raw), ("/validate", validate_body(raw, policies, view))):
            name = path[1:]
            tag = f"bench-{size}-{name}"
            message = http_request(path, with_uid(body, tag))
            for _ in range(100):
                await conn.post(message)
            times = []
            for _ in range(requests):
                t0 = time.perf_counter()
                await conn.post(message)
                times.append(time.perf_counter() - t0)
            out[size][name] = (times, [])
    conn.close()
    await asyncio.sleep(0.5)  # let the log lines reach the file
    seen = server.server_latencies()
    for size, by_name in out.items():
        for name, (times, _) in by_name.items():
            out[size][name] = (times, seen.get(f"bench-{size}-{name}", [])[-requests:])
    return out


async def bench_throughput(server: Server, concurrency: int, seconds: float, size: str) -> tuple[int, float]:
    ctx = ssl.create_default_context(cafile=str(server.ca))
    message = http_request("/mutate", fixture(size))
    conns = [await Connection.open(server.port, ctx) for _ in range(concurrency)]
    done = 0
    deadline = time.perf_counter() + seconds

    async def loop(conn: Connection) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await conn.post(message)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(c) for c in conns))
    elapsed = time.perf_counter() - started
    for c in conns:
        c.close()
    return done, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="sequential requests per size and endpoint")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each throughput run")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    policies = load_policies([ROOT / "policies"])
    print(f"tenantguard server bench: python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"policies/ generation {policies.generation}, {args.requests} requests per row")
    for size in SIZES:
        print(f"  {size:<6} {len(fixture(size)):>6} bytes")

    print("\n1. core: orjson.loads + answer() + orjson.dumps (no HTTP)")
    print(f"  {'size':<7}{'endpoint':<10}{'p50':>12}{'p99':>12}{'mean':>12}")
    for size, by_name in bench_core(args.requests, policies).items():
        for name, times in by_name.items():
            print(f"  {size:<7}{name:<10}{fmt_us(pct(times, .5)):>12}{fmt_us(pct(times, .99)):>12}"
                  f"{fmt_us(statistics.fmean(times)):>12}")

    with tempfile.TemporaryDirectory(prefix="tenantguard-bench-") as tmp:
        server = Server(args.workers, Path(tmp))
        try:
            try:
                import uvloop  # noqa: F401
                loop_name = "uvloop"
            except ImportError:
                loop_name = "asyncio"
            print(f"\n2. HTTP: `tenantguard serve --workers {args.workers}` (TLS, {loop_name}), one keep-alive "
                  "connection, sequential")
            print(f"  {'size':<7}{'endpoint':<10}{'round trip p50':>16}{'p99':>12}{'server p50':>14}{'p99':>12}")
            results = asyncio.run(bench_http(server, args.requests, policies))
            for size, by_name in results.items():
                for name, (times, server_side) in by_name.items():
                    side = (f"{fmt_us(pct(server_side, .5)):>14}{fmt_us(pct(server_side, .99)):>12}"
                            if server_side else f"{'n/a':>14}{'':>12}")
                    print(f"  {size:<7}{name:<10}{fmt_us(pct(times, .5)):>16}{fmt_us(pct(times, .99)):>12}{side}")
            print(f"\n3. throughput: /mutate, {args.concurrency} keep-alive connections, {args.seconds:g} s each")
            for size in SIZES:
                done, elapsed = asyncio.run(bench_throughput(server, args.concurrency, args.seconds, size))
                print(f"  {size:<7}{done / elapsed:10.0f} requests/s  ({done} in {elapsed:.1f} s)")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
