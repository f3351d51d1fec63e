"""The server under hostile or broken clients, and through its certificate's lifecycle (a real listening
server in-process, a real TLS client).

- certificate rotation that changes the key type is served; an expired or not-yet-valid
  certificate is refused and the last good pair keeps serving;
- a client that never finishes its request head, or its body, is cut after the header / body
  timeout; a keep-alive connection idle past the idle timeout is closed; connections beyond
  the maximum are closed at once;
- aiohttp's own error records (a malformed request, a client gone mid-body) never carry what
  the client sent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import ssl
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.test_server_http import pod, review
from tests.test_server_reload import client_context, samples, settings_for
from webhook.actions.certs import generate_ca, issue_serving_cert
from webhook.server import logs
from webhook.server.runner import WebhookServer

HOSTS = ["localhost", "127.0.0.1"]


@pytest.fixture
def tls(tmp_path: Path) -> dict[str, Path]:
    return write_pair(tmp_path / "tls", "ecdsa")


def write_pair(folder: Path, key_type: str, *, days: int = 30,
               now: dt.datetime | None = None) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key = generate_ca("limits test CA", "ecdsa", 365, now=now)
    cert, key = issue_serving_cert(ca, ca_key, HOSTS, key_type, days, now=now)  # type: ignore[arg-type]
    paths = {"ca": folder / "ca.crt", "cert": folder / "tls.crt", "key": folder / "tls.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return paths


def replace_pair(target: dict[str, Path], source: dict[str, Path]) -> None:
    target["cert"].write_bytes(source["cert"].read_bytes())
    target["key"].write_bytes(source["key"].read_bytes())


async def served_key_type(port: int, ca: Path) -> str:
    """The key type of the certificate a fresh handshake is served (one new connection)."""
    context = client_context(ca)
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="localhost")
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    key = x509.load_der_x509_certificate(der).public_key()
    return type(key).__name__.lower()


async def test_a_rotation_that_changes_the_key_type_is_served(tmp_path: Path, tls) -> None:
    async with WebhookServer(settings_for(tmp_path, tls, reload_interval=3600)) as server:
        assert "ec" in await served_key_type(server.port, tls["ca"])
        rsa = write_pair(tmp_path / "rsa", "rsa")
        replace_pair(tls, rsa)
        assert await server.reload_certificates() is True
        kinds = {await served_key_type(server.port, rsa["ca"]) for _ in range(20)}
        assert len(kinds) == 1 and "rsa" in kinds.pop()  # every new handshake: the new certificate


@pytest.mark.parametrize("when", ["expired", "not yet valid"])
async def test_a_certificate_outside_its_validity_is_refused_and_the_last_good_one_kept(
        tmp_path: Path, tls, when: str) -> None:
    async with WebhookServer(settings_for(tmp_path, tls, reload_interval=3600)) as server:
        shift = dt.timedelta(days=-400 if when == "expired" else 400)
        bad = write_pair(tmp_path / "bad", "ecdsa", days=30, now=dt.datetime.now(dt.UTC) + shift)
        replace_pair(tls, bad)
        assert await server.reload_certificates() is False
        assert "ec" in await served_key_type(server.port, tls["ca"])  # still the original pair (its CA)
        async with aiohttp.ClientSession() as session:
            text = await (await session.get(f"https://localhost:{server.port}/metrics",
                                            ssl=client_context(tls["ca"]))).text()
        assert samples(text, "tenantguard_tls_cert_reloads_total")[(("result", "failure"),)] == 1.0


async def raw_tls(port: int, ca: Path) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, ssl=client_context(ca), server_hostname="localhost")


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (the read ends: no sleep)."""
    try:
        return await asyncio.wait_for(reader.read(), 20)
    except (ConnectionError, ssl.SSLError):
        return b""


async def test_a_client_that_never_finishes_its_request_head_is_cut(tmp_path: Path, tls) -> None:
    async with WebhookServer(settings_for(tmp_path, tls, header_timeout=0.5)) as server:
        slow = [await raw_tls(server.port, tls["ca"]) for _ in range(5)]
        for _, writer in slow:
            writer.write(b"POST /validate HTTP/1.1\r\nHost: localhost\r\n")  # no end of headers, ever
            await writer.drain()
        started = asyncio.get_running_loop().time()
        for reader, _ in slow:
            await closed_by_server(reader)
        assert asyncio.get_running_loop().time() - started < 10
        assert server.connections.timed_out == 5
        # a well-behaved client is not affected
        async with aiohttp.ClientSession() as session:
            assert (await session.get(f"https://localhost:{server.port}/healthz",
                                      ssl=client_context(tls["ca"]))).status == 200


async def test_a_body_that_stops_arriving_is_cut(tmp_path: Path, tls) -> None:
    async with WebhookServer(settings_for(tmp_path, tls, body_timeout=0.5)) as server:
        reader, writer = await raw_tls(server.port, tls["ca"])
        writer.write(b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"kind\":")
        await writer.drain()
        answer = await closed_by_server(reader)
        assert answer.startswith(b"HTTP/1.1 408") and b"body not received within 0.5 s" in answer


async def test_an_idle_keep_alive_connection_is_closed(tmp_path: Path, tls) -> None:
    async with WebhookServer(settings_for(tmp_path, tls, idle_timeout=0.5)) as server:
        reader, writer = await raw_tls(server.port, tls["ca"])
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        await writer.drain()
        answer = await closed_by_server(reader)  # answered, then closed once idle
        assert answer.startswith(b"HTTP/1.1 200")


async def test_connections_beyond_the_maximum_are_closed_at_once(tmp_path: Path, tls) -> None:
    async with WebhookServer(settings_for(tmp_path, tls, max_connections=3)) as server:
        held = [await raw_tls(server.port, tls["ca"]) for _ in range(3)]
        await server.connections.wait(lambda c: c.open == 3)
        reader, _ = await raw_tls(server.port, tls["ca"])
        assert await closed_by_server(reader) == b""
        assert server.connections.refused == 1
        for _, writer in held:
            writer.close()
        await server.connections.wait(lambda c: c.open == 0)
        async with aiohttp.ClientSession() as session:
            assert (await session.get(f"https://localhost:{server.port}/healthz",
                                      ssl=client_context(tls["ca"]))).status == 200


async def test_malformed_and_cut_requests_never_put_the_body_in_the_logs(tmp_path: Path, tls) -> None:
    stream = io.StringIO()
    logs.configure("info", stream)
    secret = "planted-secret-0123456789"
    async with WebhookServer(settings_for(tmp_path, tls)) as server:
        # HTTP/1.0 POST without Content-Length, the body a secret
        reader, writer = await raw_tls(server.port, tls["ca"])
        writer.write(b"POST /validate HTTP/1.0\r\nContent-Type: application/json\r\n\r\n{\"s\":\"" +
                     secret.encode() + b"\"}")
        writer.write_eof() if writer.can_write_eof() else None
        await writer.drain()
        await closed_by_server(reader)
        # a malformed request line carrying the secret
        reader, writer = await raw_tls(server.port, tls["ca"])
        writer.write(b"P\x00ST /" + secret.encode() + b" HTTP/1.1\r\n\r\n")
        await writer.drain()
        await closed_by_server(reader)
        # a client gone mid-body
        reader, writer = await raw_tls(server.port, tls["ca"])
        writer.write(b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 5000\r\n\r\n{\"s\":\"" + secret.encode())
        await writer.drain()
        writer.transport.abort()
        # then a real review, whose answer proves the server went on
        async with aiohttp.ClientSession() as session:
            resp = await session.post(f"https://localhost:{server.port}/validate", data=json.dumps(review(pod())),
                                      headers={"Content-Type": "application/json"}, ssl=client_context(tls["ca"]))
            assert resp.status == 200
    text = stream.getvalue()
    assert secret not in text
    lines = text.splitlines()
    assert lines and all(len(line) < 1000 for line in lines)
    assert not any('"exception"' in line for line in lines)
