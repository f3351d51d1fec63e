"""The server's TLS: the serving pair and the client CA, reloaded when their files change.

Each accepted change builds a NEW ``SSLContext`` (:attr:`CertReloader.context`) and bumps
:attr:`CertReloader.generation`; the server then listens with it (webhook.server.runner
swaps its listening socket: the new one opens before the old one closes, on the same port,
so no connection is refused and established ones keep their session). A fresh context
rather than ``load_cert_chain`` on the live one: OpenSSL keeps one certificate per key
type in a context, so a rotation from ECDSA to RSA loaded in place would leave the ECDSA
certificate served to every client that accepts it.

A rotation is applied only when it is whole and usable: the new cert and key bytes are
read once, written to a private scratch copy and loaded into the new context from that
copy (the key must match the certificate); a half-written pair, or a certificate that has
expired or is not yet valid, is refused with a log line and the
``tenantguard_tls_cert_reloads_total{result="failure"}`` count, and the last good pair
keeps serving. It is not retried until the files change again.

``--client-ca``: client certificates are requested and, when presented, verified against
the CA (``CERT_OPTIONAL``): the kubelet's probes (``/healthz``, ``/readyz``) carry none and
must still be answered; the admission endpoints refuse a review that came without one
(webhook.server.callers). The CA file is reloaded like the serving pair.

Without ``--cert/--key`` the CLI makes a throwaway self-signed pair for a local trial
(``webhook.actions.certs.generate_self_signed``) and hands its files to the server.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import ssl
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from cryptography import x509

log = logging.getLogger("tenantguard.tls")


class CertListener(Protocol):
    def cert_loaded(self, ok: bool, not_after: float | None) -> None: ...


def _context(cert_file: str, key_file: str, client_ca: str | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.load_cert_chain(cert_file, key_file)
    if client_ca:
        # The API server presents a client certificate only when its admission config says so
        # (--admission-control-config-file kubeConfigFile). Optional at the TLS layer so the kubelet's
        # probes are answered; the admission endpoints require one (webhook.server.callers).
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(cafile=client_ca)
    return ctx


def not_after(cert_pem: bytes) -> float:
    """The leaf's notAfter as a Unix timestamp."""
    return x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc.timestamp()


class CertificateNotValid(ValueError):
    """The serving certificate has expired or is not valid yet."""


def _check_validity(cert_pem: bytes, now: float) -> float:
    """The leaf's notAfter; raises CertificateNotValid outside its validity period."""
    leaf = x509.load_pem_x509_certificate(cert_pem)
    start, end = leaf.not_valid_before_utc.timestamp(), leaf.not_valid_after_utc.timestamp()
    if now > end:
        raise CertificateNotValid(f"the certificate expired at {leaf.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}")
    if now < start:
        raise CertificateNotValid(f"the certificate is not valid before {leaf.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ}")
    return end


class CertReloader:
    """Owns the live SSLContext; builds a new one when the serving pair or the client CA change."""

    def __init__(self, cert: str | Path, key: str | Path, *, client_ca: str | Path | None = None,
                 listener: CertListener | None = None, clock: Callable[[], float] = time.time):
        self.cert_path = Path(cert)
        self.key_path = Path(key)
        self.client_ca = str(client_ca) if client_ca else None
        self._listener = listener
        self._clock = clock
        self._digest: str | None = None
        self.not_after: float | None = None
        self.context: ssl.SSLContext | None = None
        self.generation = 0  # bumped with every new context
        self.reloads = 0
        self.failures = 0
        self._last_error: str | None = None

    def _read(self) -> tuple[bytes, bytes, bytes, str]:
        cert, key = self.cert_path.read_bytes(), self.key_path.read_bytes()
        ca = Path(self.client_ca).read_bytes() if self.client_ca else b""
        digest = hashlib.sha256(cert + b"\0" + key + b"\0" + ca).hexdigest()
        return cert, key, ca, digest

    def load(self) -> ssl.SSLContext:
        """The first load: raise (OSError, ssl.SSLError, ValueError) when the pair is unusable."""
        cert, key, ca, digest = self._read()
        self._apply(cert, key, ca, digest)
        assert self.context is not None
        return self.context

    def _apply(self, cert: bytes, key: bytes, ca: bytes, digest: str) -> None:
        expiry = _check_validity(cert, self._clock())
        scratch = tempfile.mkdtemp(prefix="tenantguard-tls-")
        try:
            files = {name: os.path.join(scratch, name) for name in ("tls.crt", "tls.key", "ca.crt")}
            for name, data in (("tls.crt", cert), ("tls.key", key), ("ca.crt", ca)):
                fd = os.open(files[name], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
            context = _context(files["tls.crt"], files["tls.key"], files["ca.crt"] if self.client_ca else None)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        self.context = context
        self.generation += 1
        self._digest = digest
        self._last_error = None
        self.not_after = expiry
        if self._listener is not None:
            self._listener.cert_loaded(True, expiry)

    def reload_if_changed(self) -> bool | None:
        """Build a new context from changed files; None when unchanged, False when they are refused."""
        try:
            cert, key, ca, digest = self._read()
        except OSError as exc:
            return self._refused(f"cannot read: {exc}")
        if digest == self._digest:
            self._last_error = None
            return None
        try:
            self._apply(cert, key, ca, digest)
        except (ssl.SSLError, ValueError, OSError) as exc:
            return self._refused(f"{type(exc).__name__}: {exc}", digest)
        self.reloads += 1
        log.info("serving certificate reloaded", extra={"event": "tls_reload", "result": "success",
                                                       "not_after": self.not_after, "generation": self.generation})
        return True

    def _refused(self, why: str, digest: str | None = None) -> bool:
        if digest is not None:
            self._digest = digest  # the same broken pair is not retried until it changes
        if why == self._last_error:
            return False  # e.g. a file still missing: said once
        self._last_error = why
        self.failures += 1
        if self._listener is not None:
            self._listener.cert_loaded(False, None)
        log.error("serving certificate not reloaded; keeping the current one",
                  extra={"event": "tls_reload", "result": "failure", "error": why})
        return False
