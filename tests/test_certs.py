"""`tenantguard certs` and webhook.actions.certs: the chain, the names, renewal, and real TLS.

Checks are made with `cryptography` (path validation with its X.509 verifier),
once more with the `openssl` binary, and with a real TLS handshake in which the
client trusts only ca.crt and asks for the service DNS name.
"""

from __future__ import annotations

import base64
import datetime as dt
import importlib.util
import os
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import DNSName, PolicyBuilder, Store, VerificationError

from webhook.actions.certs import (
    CertError,
    CertOptions,
    ensure_certificates,
    generate_self_signed,
    service_hosts,
)
from webhook.cli.main import main as cli

IN_CI = os.environ.get("CI") == "true"
SERVICE, NAMESPACE = "tenantguard", "policy-system"
HOSTS = [
    "tenantguard",
    "tenantguard.policy-system",
    "tenantguard.policy-system.svc",
    "tenantguard.policy-system.svc.cluster.local",
]


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def verify_server(ca: x509.Certificate, leaf: x509.Certificate, host: str) -> None:
    """RFC 5280 path validation + server name check, as a TLS client would do it."""
    verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(DNSName(host))
    verifier.verify(leaf, [])


@pytest.fixture(params=["ecdsa", "rsa"])
def bundle(request, tmp_path):
    options = CertOptions(service=SERVICE, namespace=NAMESPACE, key_type=request.param)
    return ensure_certificates(options, tmp_path / "certs")


# --------------------------------------------------------------------------- content


def test_service_hosts_are_the_four_service_names():
    assert service_hosts(SERVICE, NAMESPACE) == HOSTS


def test_chain_verifies_for_every_service_name(bundle):
    ca, leaf = load(bundle.ca_path), load(bundle.cert_path)
    leaf.verify_directly_issued_by(ca)
    for host in HOSTS:
        verify_server(ca, leaf, host)
    with pytest.raises(VerificationError):
        verify_server(ca, leaf, "tenantguard.other-namespace.svc")


def test_serving_certificate_names_and_usages(bundle):
    leaf = load(bundle.cert_path)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == HOSTS
    bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca is False
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical
    assert ku.value.digital_signature
    assert not ku.value.key_cert_sign and not ku.value.crl_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    ca = load(bundle.ca_path)
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ca_ski
    leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    if isinstance(leaf.public_key(), rsa.RSAPublicKey):
        assert ku.value.key_encipherment
        assert leaf.public_key().key_size == 2048
    else:
        assert not ku.value.key_encipherment
        assert isinstance(leaf.public_key().curve, ec.SECP256R1)


def test_ca_is_a_ca_that_signs_certificates_only(bundle):
    ca = load(bundle.ca_path)
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca is True
    ku = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert not ku.value.digital_signature and not ku.value.key_encipherment
    assert ca.subject == ca.issuer
    ca.verify_directly_issued_by(ca)


def test_ecdsa_p256_is_the_default(tmp_path):
    b = ensure_certificates(CertOptions(service=SERVICE, namespace=NAMESPACE), tmp_path)
    for path in (b.ca_path, b.cert_path):
        key = load(path).public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)


def test_validity_defaults_and_the_leaf_never_outlives_the_ca(tmp_path):
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    b = ensure_certificates(CertOptions(service=SERVICE, namespace=NAMESPACE), tmp_path, now=now)
    assert b.not_after == now + dt.timedelta(days=365)
    assert b.ca_not_after == now + dt.timedelta(days=3650)
    # Renewing close to the CA's end: the leaf stops with the CA.
    late = b.ca_not_after - dt.timedelta(days=10)
    renewed = ensure_certificates(CertOptions(service=SERVICE, namespace=NAMESPACE), tmp_path, now=late)
    assert renewed.ca_reused and renewed.not_after == b.ca_not_after


def test_key_files_are_private(bundle):
    for path in (bundle.key_path, bundle.ca_key_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in (bundle.cert_path, bundle.ca_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert not list(bundle.directory.glob(".*.tmp")), "temporary files left behind"


# --------------------------------------------------------------------------- renewal


def test_renewal_keeps_the_ca_and_reissues_the_leaf(tmp_path):
    options = CertOptions(service=SERVICE, namespace=NAMESPACE)
    first = ensure_certificates(options, tmp_path)
    ca_before, ca_key_before = first.ca_path.read_bytes(), first.ca_key_path.read_bytes()
    leaf_before = load(first.cert_path)
    second = ensure_certificates(options, tmp_path)
    assert second.ca_reused
    assert first.ca_path.read_bytes() == ca_before and first.ca_key_path.read_bytes() == ca_key_before
    leaf_after = load(second.cert_path)
    assert leaf_after.serial_number != leaf_before.serial_number
    assert leaf_after.public_key() != leaf_before.public_key()
    # The caBundle already in the webhook configurations trusts the new leaf.
    verify_server(x509.load_pem_x509_certificate(ca_before), leaf_after, HOSTS[2])


def test_rotate_ca_replaces_the_ca(tmp_path):
    first = ensure_certificates(CertOptions(service=SERVICE, namespace=NAMESPACE), tmp_path)
    ca_before = first.ca_path.read_bytes()
    rotated = ensure_certificates(CertOptions(service=SERVICE, namespace=NAMESPACE, rotate_ca=True), tmp_path)
    assert not rotated.ca_reused and rotated.ca_path.read_bytes() != ca_before
    verify_server(load(rotated.ca_path), load(rotated.cert_path), HOSTS[3])


def test_renewal_refuses_an_expired_ca(tmp_path):
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    ensure_certificates(
        CertOptions(service=SERVICE, namespace=NAMESPACE, days=1, ca_days=2), tmp_path, now=now
    )
    with pytest.raises(CertError, match="--rotate-ca"):
        ensure_certificates(
            CertOptions(service=SERVICE, namespace=NAMESPACE), tmp_path, now=now + dt.timedelta(days=3)
        )


def test_renewal_refuses_a_foreign_key(tmp_path):
    ensure_certificates(CertOptions(service=SERVICE, namespace=NAMESPACE), tmp_path / "a")
    ensure_certificates(CertOptions(service=SERVICE, namespace=NAMESPACE), tmp_path / "b")
    shutil.copy(tmp_path / "b" / "ca.key", tmp_path / "a" / "ca.key")
    with pytest.raises(CertError, match="does not belong"):
        ensure_certificates(CertOptions(service=SERVICE, namespace=NAMESPACE), tmp_path / "a")


# --------------------------------------------------------------------------- openssl


def test_openssl_verify_accepts_the_chain_for_the_service_name(bundle):
    openssl = shutil.which("openssl")
    if openssl is None:
        if IN_CI:
            pytest.fail("openssl is required in CI")
        pytest.skip("openssl not installed")
    for host in (HOSTS[2], HOSTS[3]):
        out = subprocess.run(
            [
                openssl,
                "verify",
                "-CAfile",
                str(bundle.ca_path),
                "-purpose",
                "sslserver",
                "-verify_hostname",
                host,
                "-x509_strict",
                str(bundle.cert_path),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 0 and out.stdout.strip().endswith(": OK"), out.stdout + out.stderr
    wrong = subprocess.run(
        [
            openssl,
            "verify",
            "-CAfile",
            str(bundle.ca_path),
            "-verify_hostname",
            "evil.example.com",
            str(bundle.cert_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert wrong.returncode != 0
    text = subprocess.run(
        [openssl, "x509", "-in", str(bundle.cert_path), "-noout", "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for host in HOSTS:
        assert f"DNS:{host}" in text


# --------------------------------------------------------------------------- real TLS


class TLSServer:
    """A one-connection-at-a-time TLS echo server on 127.0.0.1:<ephemeral>."""

    def __init__(self, cert: Path, key: Path):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(tls.recv(64))
            except (ssl.SSLError, OSError):
                pass

    def close(self) -> None:
        self.sock.close()


def handshake(port: int, ctx: ssl.SSLContext, server_hostname: str) -> bytes:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=server_hostname) as tls,
    ):
        tls.sendall(b"ping")
        return tls.recv(64)


def test_tls_client_trusting_only_the_ca_reaches_the_service_name(bundle, tmp_path):
    server = TLSServer(bundle.cert_path, bundle.key_path)
    try:
        client = ssl.create_default_context(cafile=str(bundle.ca_path))  # only this CA, no system store
        assert client.check_hostname and client.verify_mode == ssl.CERT_REQUIRED
        assert handshake(server.port, client, "tenantguard.policy-system.svc") == b"ping"
        with pytest.raises(ssl.SSLCertVerificationError):
            handshake(server.port, client, "tenantguard.elsewhere.svc")
        other = ensure_certificates(CertOptions(service=SERVICE, namespace=NAMESPACE), tmp_path / "other")
        stranger = ssl.create_default_context(cafile=str(other.ca_path))
        with pytest.raises(ssl.SSLCertVerificationError):
            handshake(server.port, stranger, "tenantguard.policy-system.svc")
    finally:
        server.close()


def test_generate_self_signed_for_the_server(tmp_path):
    ca_path, cert_path, key_path = generate_self_signed(["localhost", "127.0.0.1"], tmp_path / "tmpcerts")
    assert (ca_path.name, cert_path.name, key_path.name) == ("ca.crt", "tls.crt", "tls.key")
    assert not (tmp_path / "tmpcerts" / "ca.key").exists(), "a throwaway CA keeps no key"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    server = TLSServer(cert_path, key_path)
    try:
        client = ssl.create_default_context(cafile=str(ca_path))
        assert handshake(server.port, client, "localhost") == b"ping"
        assert handshake(server.port, client, "127.0.0.1") == b"ping"
    finally:
        server.close()


# --------------------------------------------------------------------------- CLI


def test_cli_writes_files_and_renews(tmp_path, capsys):
    out = tmp_path / "certs"
    assert cli(["certs", "--service", SERVICE, "--namespace", NAMESPACE, "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["ca.crt", "ca.key", "tls.crt", "tls.key"]
    first = capsys.readouterr().out
    assert "CA (new)" in first
    ca = (out / "ca.crt").read_bytes()
    assert f"caBundle: {base64.b64encode(ca).decode()}" in first
    assert (
        cli(["certs", "--service", SERVICE, "--namespace", NAMESPACE, "--out", str(out), "--key-type", "rsa"])
        == 0
    )
    assert "CA (kept)" in capsys.readouterr().out
    assert (out / "ca.crt").read_bytes() == ca
    assert isinstance(load(out / "tls.crt").public_key(), rsa.RSAPublicKey)


def test_cli_secret_output(tmp_path, capsys):
    out = tmp_path / "certs"
    rc = cli(
        ["certs", "--service", SERVICE, "--namespace", NAMESPACE, "--out", str(out), "--output", "secret"]
    )
    assert rc == 0
    stdout = capsys.readouterr().out
    header = stdout.splitlines()[0]
    assert header.startswith("# caBundle")
    ca_bundle = header.rsplit(" ", 1)[1]
    assert base64.b64decode(ca_bundle) == (out / "ca.crt").read_bytes()
    docs = [d for d in yaml.safe_load_all(stdout) if d]
    assert len(docs) == 1
    secret = docs[0]
    assert secret["kind"] == "Secret" and secret["type"] == "kubernetes.io/tls"
    assert secret["metadata"] == {
        "name": "tenantguard-tls",
        "namespace": NAMESPACE,
        "labels": {"app.kubernetes.io/name": "tenantguard", "app.kubernetes.io/component": "webhook-tls"},
    }
    assert sorted(secret["data"]) == ["ca.crt", "tls.crt", "tls.key"]
    assert base64.b64decode(secret["data"]["tls.crt"]) == (out / "tls.crt").read_bytes()
    assert base64.b64decode(secret["data"]["tls.key"]) == (out / "tls.key").read_bytes()
    assert base64.b64decode(secret["data"]["ca.crt"]) == (out / "ca.crt").read_bytes()
    assert "ca.key" not in stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--service", "Web_Hook", "--namespace", "ns"], "DNS-1035"),
        (["--service", "svc", "--namespace", "Bad.NS"], "DNS-1123"),
        (["--service", "svc", "--namespace", "ns", "--days", "0"], "--days"),
        (["--service", "svc", "--namespace", "ns", "--days", "400", "--ca-days", "100"], "outlive"),
    ],
)
def test_cli_bad_input_exits_2(tmp_path, capsys, args, message):
    assert cli(["certs", *args, "--out", str(tmp_path / "c")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_cli_half_a_ca_or_a_file_as_out_dir_exits_2(tmp_path, capsys):
    out = tmp_path / "certs"
    assert cli(["certs", "--service", SERVICE, "--namespace", NAMESPACE, "--out", str(out)]) == 0
    (out / "ca.key").unlink()
    capsys.readouterr()
    assert cli(["certs", "--service", SERVICE, "--namespace", NAMESPACE, "--out", str(out)]) == 2
    assert "half a CA" in capsys.readouterr().err
    file_out = tmp_path / "file"
    file_out.write_text("x")
    assert cli(["certs", "--service", SERVICE, "--namespace", NAMESPACE, "--out", str(file_out)]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_cli_missing_required_flag_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli(["certs", "--namespace", NAMESPACE])
    assert exc.value.code == 2


def test_certs_dir_ignores_keys():
    root = Path(__file__).resolve().parents[1]
    patterns = (root / "certs" / ".gitignore").read_text().split()
    assert "*" in patterns or "*.key" in patterns


# --------------------------------------------------------------------------- serve


def _serve_available() -> bool:
    return importlib.util.find_spec("webhook.cli.serve") is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_is_reachable_by_the_service_name_with_only_the_ca(tmp_path):
    """A TLS client trusting only ca.crt reaches `serve` by the service DNS name."""
    if not _serve_available():
        if IN_CI:
            pytest.fail("`tenantguard serve` (webhook.cli.serve) is missing")
        pytest.skip("`tenantguard serve` is not written yet")
    b = ensure_certificates(CertOptions(service=SERVICE, namespace=NAMESPACE), tmp_path / "certs")
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "restricted.yaml").write_text(
        "apiVersion: tenantguard.io/v1alpha1\nkind: ClusterPolicy\nmetadata: {name: restricted}\n"
        "spec:\n  rules: {podSecurity: restricted}\n"
    )
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "webhook",
            "serve",
            "--policies",
            str(policies),
            "--cert",
            str(b.cert_path),
            "--key",
            str(b.key_path),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    client = ssl.create_default_context(cafile=str(b.ca_path))
    try:
        deadline, last = time.monotonic() + 20, None
        while True:
            if proc.poll() is not None:
                pytest.fail(f"serve exited {proc.returncode}: {proc.stdout.read().decode(errors='replace')}")
            try:
                with (
                    socket.create_connection(("127.0.0.1", port), timeout=2) as raw,
                    client.wrap_socket(raw, server_hostname="tenantguard.policy-system.svc") as tls,
                ):
                    tls.sendall(
                        b"GET /healthz HTTP/1.1\r\nHost: tenantguard.policy-system.svc\r\nConnection: close\r\n\r\n"
                    )
                    status_line = tls.recv(256).split(b"\r\n", 1)[0]
                break
            except ssl.SSLCertVerificationError:
                raise
            except OSError as exc:
                last = exc
                if time.monotonic() > deadline:
                    pytest.fail(f"serve did not accept TLS on port {port}: {last}")
                time.sleep(0.2)
        assert status_line.startswith(b"HTTP/1.1 200"), status_line
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
