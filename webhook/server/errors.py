"""The server's own error: it could not start serving (exit 1), as opposed to bad input (exit 2)."""

from __future__ import annotations

from webhook.core.errors import TenantguardError


class StartError(TenantguardError):
    """The environment refuses: the port is in use, a certificate cannot be read, ... (exit 1)."""

    exit_code = 1

    def lines(self) -> list[str]:
        return [f"tenantguard serve: {line}" for line in (str(self).splitlines() or ["cannot start"])]


def start_error(exc: OSError | Exception) -> StartError:
    """A StartError saying what an OSError / ssl.SSLError at start-up was about."""
    if isinstance(exc, OSError) and exc.filename:
        return StartError(f"{exc.filename}: {exc.strerror}")
    return StartError(str(exc) or type(exc).__name__)
