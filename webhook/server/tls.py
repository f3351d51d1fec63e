"""The server's TLS: one live SSLContext whose certificate is replaced in place.

``load_cert_chain`` on the context the listening socket uses changes what *new*
handshakes present; established connections keep their session, so rotating the
serving certificate (cert-manager, ``tenantguard certs`` renewing, a Secret update)
needs no restart and drops nothing.

A rotation is applied only when it is whole: the new cert and key bytes are read once,
written to a private scratch copy, checked on a scratch context (the key must match the
certificate) and only then loaded into the live context from that same copy. A
half-written pair (the key not yet replaced) is refused and retried on the next change,
so the live context is never left with a certificate whose key it lacks.

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
from pathlib import Path
from typing import Protocol

from cryptography import x509

log = logging.getLogger("tenantguard.tls")


class CertListener(Protocol):
    def cert_loaded(self, ok: bool, not_after: float | None) -> None: ...


def _base_context(client_ca: str | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    if client_ca:
        # The API server presents a client certificate only when its admission config says so
        # (--admission-control-config-file kubeConfigFile); then we require one from this CA.
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=client_ca)
    return ctx


def not_after(cert_pem: bytes) -> float:
    """The leaf's notAfter as a Unix timestamp."""
    return x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc.timestamp()


class CertReloader:
    """Owns the live SSLContext and swaps its certificate when the files change."""

    def __init__(self, cert: str | Path, key: str | Path, *, client_ca: str | Path | None = None,
                 listener: CertListener | None = None):
        self.cert_path = Path(cert)
        self.key_path = Path(key)
        self.client_ca = str(client_ca) if client_ca else None
        self._listener = listener
        self._digest: str | None = None
        self.not_after: float | None = None
        self.context = _base_context(self.client_ca)
        self.reloads = 0
        self.failures = 0
        self._last_error: str | None = None

    def _read(self) -> tuple[bytes, bytes, str]:
        cert, key = self.cert_path.read_bytes(), self.key_path.read_bytes()
        digest = hashlib.sha256(cert + b"\0" + key).hexdigest()
        return cert, key, digest

    def load(self) -> ssl.SSLContext:
        """The first load: raise (OSError, ssl.SSLError, ValueError) when the pair is unusable."""
        cert, key, digest = self._read()
        self._apply(cert, key, digest)
        return self.context

    def _apply(self, cert: bytes, key: bytes, digest: str) -> None:
        scratch = tempfile.mkdtemp(prefix="tenantguard-tls-")
        try:
            cert_file, key_file = os.path.join(scratch, "tls.crt"), os.path.join(scratch, "tls.key")
            for path, data in ((cert_file, cert), (key_file, key)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
            expiry = not_after(cert)
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_file, key_file)  # whole and matching?
            self.context.load_cert_chain(cert_file, key_file)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        self._digest = digest
        self._last_error = None
        self.not_after = expiry
        if self._listener is not None:
            self._listener.cert_loaded(True, expiry)

    def reload_if_changed(self) -> bool | None:
        """Apply a changed pair; None when unchanged, False when the new pair is refused."""
        try:
            cert, key, digest = self._read()
        except OSError as exc:
            return self._refused(f"cannot read: {exc}")
        if digest == self._digest:
            self._last_error = None
            return None
        try:
            self._apply(cert, key, digest)
        except (ssl.SSLError, ValueError, OSError) as exc:
            return self._refused(f"{type(exc).__name__}: {exc}", digest)
        self.reloads += 1
        log.info("serving certificate reloaded", extra={"event": "tls_reload", "result": "success",
                                                       "not_after": self.not_after})
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
