"""Certificates for the webhook: a private CA and the serving certificate it signs.

The API server calls the webhook over HTTPS and trusts exactly the CA placed in
the webhook configurations' ``caBundle``. So the CA is the long-lived part and
the serving (leaf) certificate is the part that rotates: renewing keeps the CA
and re-issues the leaf, and the ``caBundle`` never has to change.

Layout written by :func:`ensure_certificates` (names match a ``kubernetes.io/tls``
Secret, so the directory can be mounted or turned into one)::

    DIR/ca.crt   CA certificate (PEM)                 0644
    DIR/ca.key   CA private key (PKCS#8 PEM)          0600
    DIR/tls.crt  serving certificate (PEM)            0644
    DIR/tls.key  serving private key (PKCS#8 PEM)     0600

Errors: every problem caused by the caller's input or by the files found in the
output directory raises :class:`CertError` with a message fit for a user.
The module touches the file system only inside the directory it is given.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from webhook.core.errors import TenantguardError

__all__ = [
    "CA_CERT",
    "CA_KEY",
    "TLS_CERT",
    "TLS_KEY",
    "CertBundle",
    "CertError",
    "CertOptions",
    "KeyType",
    "ca_bundle",
    "ensure_certificates",
    "generate_ca",
    "generate_self_signed",
    "issue_serving_cert",
    "secret_manifest",
    "service_hosts",
]

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
TLS_CERT = "tls.crt"
TLS_KEY = "tls.key"

KeyType = Literal["ecdsa", "rsa"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

RSA_KEY_SIZE = 2048
#: certificates start this long in the past so a node whose clock lags still accepts them
CLOCK_SKEW = dt.timedelta(minutes=5)

# Service names are DNS-1035 labels, namespaces DNS-1123 labels (Kubernetes validation).
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_NAME = re.compile(r"^(\*\.)?([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class CertError(TenantguardError):
    """Bad input or unusable files in the output directory; the message says which."""


@dataclass(frozen=True)
class CertOptions:
    """What `tenantguard certs` was asked for."""

    service: str
    namespace: str
    key_type: KeyType = "ecdsa"
    days: int = 365
    ca_days: int = 3650
    rotate_ca: bool = False

    def __post_init__(self) -> None:
        if not _DNS1035_LABEL.match(self.service) or len(self.service) > 63:
            raise CertError(
                f"--service {self.service!r}: a Service name is a DNS-1035 label "
                "(lowercase letters, digits and '-', starting with a letter, at most 63 characters)"
            )
        if not _DNS1123_LABEL.match(self.namespace) or len(self.namespace) > 63:
            raise CertError(
                f"--namespace {self.namespace!r}: a namespace name is a DNS-1123 label "
                "(lowercase letters, digits and '-', at most 63 characters)"
            )
        if self.key_type not in ("ecdsa", "rsa"):
            raise CertError(f"--key-type {self.key_type!r}: choose ecdsa or rsa")
        if not 1 <= self.days <= 3650:
            raise CertError(f"--days {self.days}: the serving certificate must be valid 1..3650 days")
        if not 1 <= self.ca_days <= 36500:
            raise CertError(f"--ca-days {self.ca_days}: the CA must be valid 1..36500 days")
        if self.ca_days < self.days:
            raise CertError(
                f"--ca-days {self.ca_days} is shorter than --days {self.days}: "
                "the CA must outlive the certificates it signs"
            )

    @property
    def hosts(self) -> list[str]:
        return service_hosts(self.service, self.namespace)


@dataclass(frozen=True)
class CertBundle:
    """The result of :func:`ensure_certificates`: paths plus the PEM it wrote."""

    directory: Path
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes
    ca_reused: bool
    not_after: dt.datetime
    ca_not_after: dt.datetime

    @property
    def ca_path(self) -> Path:
        return self.directory / CA_CERT

    @property
    def ca_key_path(self) -> Path:
        return self.directory / CA_KEY

    @property
    def cert_path(self) -> Path:
        return self.directory / TLS_CERT

    @property
    def key_path(self) -> Path:
        return self.directory / TLS_KEY


# --------------------------------------------------------------------------- pure helpers


def service_hosts(service: str, namespace: str) -> list[str]:
    """The DNS names the API server may use for ``service`` in ``namespace``, shortest first."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def ca_bundle(ca_pem: bytes) -> str:
    """The value of a webhook configuration's ``caBundle``: base64 of the CA PEM."""
    return base64.b64encode(ca_pem).decode("ascii")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _common_name(text: str) -> str:
    """X.509 caps a commonName at 64 characters; clients match SANs, so the CN is a label only."""
    return text[:64] or "tenantguard"


def _new_key(key_type: KeyType) -> PrivateKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_SIZE)
    return ec.generate_private_key(ec.SECP256R1())


def _san(hosts: list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
            continue
        except ValueError:
            pass
        if not _DNS_NAME.match(host) or len(host) > 253:
            raise CertError(f"{host!r} is neither a DNS name nor an IP address")
        names.append(x509.DNSName(host))
    if not names:
        raise CertError("a serving certificate needs at least one host name")
    return x509.SubjectAlternativeName(names)


def generate_ca(
    common_name: str, key_type: KeyType = "ecdsa", days: int = 3650, now: dt.datetime | None = None
) -> tuple[x509.Certificate, PrivateKey]:
    """A self-signed CA that may sign serving certificates and nothing below them."""
    now = now or _now()
    key = _new_key(key_type)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tenantguard"),
            x509.NameAttribute(NameOID.COMMON_NAME, _common_name(common_name)),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue_serving_cert(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    hosts: list[str],
    key_type: KeyType = "ecdsa",
    days: int = 365,
    now: dt.datetime | None = None,
) -> tuple[x509.Certificate, PrivateKey]:
    """A TLS server certificate for ``hosts`` signed by the CA.

    Never outlives the CA: ``notAfter`` is capped at the CA's ``notAfter``.
    """
    now = now or _now()
    key = _new_key(key_type)
    not_after = min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    if not_after <= now:
        raise CertError("the CA has expired; re-run with --rotate-ca to replace it")
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _common_name(hosts[0] if hosts else ""))])
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                # RSA key exchange encrypts the premaster secret with the key; ECDSA never does.
                key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(_san(hosts), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def secret_manifest(name: str, namespace: str, bundle: CertBundle) -> dict:
    """A ``kubernetes.io/tls`` Secret holding the serving pair and ``ca.crt`` (never the CA key)."""
    b64 = lambda data: base64.b64encode(data).decode("ascii")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": "tenantguard", "app.kubernetes.io/component": "webhook-tls"},
        },
        "type": "kubernetes.io/tls",
        "data": {
            TLS_CERT: b64(bundle.cert_pem),
            TLS_KEY: b64(bundle.key_pem),
            CA_CERT: b64(bundle.ca_pem),
        },
    }


# --------------------------------------------------------------------------- file system


def _write(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` atomically; the file has ``mode`` from its first byte on (keys are never world-readable)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _prepare_dir(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise CertError(f"--out {directory}: exists and is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CertError(f"--out {directory}: cannot create the directory: {exc.strerror}") from exc


def _load_ca(directory: Path, now: dt.datetime) -> tuple[x509.Certificate, PrivateKey] | None:
    """The CA already in ``directory``, or None when there is none. Inconsistent files are errors."""
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if not cert_path.exists() and not key_path.exists():
        return None
    if not (cert_path.exists() and key_path.exists()):
        present, missing = (cert_path, key_path) if cert_path.exists() else (key_path, cert_path)
        raise CertError(
            f"{present} exists but {missing} does not: cannot renew with half a CA; "
            "restore the missing file or re-run with --rotate-ca to create a new CA"
        )
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError as exc:
        raise CertError(f"{cert_path}: not a PEM certificate ({exc})") from exc
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise CertError(f"{key_path}: not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise CertError(f"{key_path}: only ECDSA and RSA keys are supported")
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, pub) != cert.public_key().public_bytes(
        serialization.Encoding.DER, pub
    ):
        raise CertError(f"{key_path} does not belong to {cert_path}")
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise CertError(f"{cert_path} is not a CA certificate (basicConstraints CA:true missing)")
    try:
        cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound as exc:
        raise CertError(f"{cert_path} has no subjectKeyIdentifier; re-run with --rotate-ca") from exc
    if cert.not_valid_after_utc <= now:
        raise CertError(
            f"{cert_path} expired on {cert.not_valid_after_utc:%Y-%m-%d}; re-run with --rotate-ca "
            "(and update the caBundle of the webhook configurations)"
        )
    return cert, key


def ensure_certificates(options: CertOptions, directory: Path, now: dt.datetime | None = None) -> CertBundle:
    """Create or renew the CA + serving pair in ``directory``.

    An existing CA is kept (only the serving pair is re-issued) unless
    ``options.rotate_ca``; the leaf never outlives the CA.
    """
    now = now or _now()
    directory = Path(directory)
    _prepare_dir(directory)
    existing = None if options.rotate_ca else _load_ca(directory, now)
    if existing is None:
        ca_cert, ca_key = generate_ca(
            f"tenantguard CA ({options.service}.{options.namespace})", options.key_type, options.ca_days, now
        )
        ca_pem = _cert_pem(ca_cert)
        # The key first: a crash between the two writes leaves a key without a certificate,
        # which the next run reports, instead of a certificate nobody can sign with.
        _write(directory / CA_KEY, _key_pem(ca_key), 0o600)
        _write(directory / CA_CERT, ca_pem, 0o644)
    else:
        ca_cert, ca_key = existing
        ca_pem = (directory / CA_CERT).read_bytes()
    cert, key = issue_serving_cert(ca_cert, ca_key, options.hosts, options.key_type, options.days, now)
    cert_pem, key_pem = _cert_pem(cert), _key_pem(key)
    _write(directory / TLS_KEY, key_pem, 0o600)
    _write(directory / TLS_CERT, cert_pem, 0o644)
    return CertBundle(
        directory=directory,
        ca_pem=ca_pem,
        cert_pem=cert_pem,
        key_pem=key_pem,
        ca_reused=existing is not None,
        not_after=cert.not_valid_after_utc,
        ca_not_after=ca_cert.not_valid_after_utc,
    )


def generate_self_signed(hosts: list[str], out_dir: Path, days: int = 365) -> tuple[Path, Path, Path]:
    """A throwaway CA + serving pair for ``hosts`` (DNS names or IPs), e.g. for a local `serve`.

    Writes ``ca.crt``, ``tls.crt`` and ``tls.key`` (0600) into ``out_dir``; the CA key is
    discarded, so nothing else can ever be signed with it. Returns ``(ca_path, cert_path, key_path)``.
    """
    if not hosts:
        raise CertError("generate_self_signed needs at least one host")
    out_dir = Path(out_dir)
    _prepare_dir(out_dir)
    ca_cert, ca_key = generate_ca(f"tenantguard throwaway CA ({hosts[0]})", "ecdsa", days)
    cert, key = issue_serving_cert(ca_cert, ca_key, list(hosts), "ecdsa", days)
    ca_path, cert_path, key_path = out_dir / CA_CERT, out_dir / TLS_CERT, out_dir / TLS_KEY
    _write(key_path, _key_pem(key), 0o600)
    _write(cert_path, _cert_pem(cert), 0o644)
    _write(ca_path, _cert_pem(ca_cert), 0o644)
    return ca_path, cert_path, key_path
