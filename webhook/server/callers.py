"""Who is calling: which reviews may reserve quota, and which client certificates are accepted.

A review changes what later reviews see only through the quota reservations of the cluster
view (an admitted pod counts until its watch reports it). Anyone who can reach the webhook
port could otherwise forge reviews that reserve a tenant's quota and make its real pods be
denied. So a review reserves only when it came over a path the operator vouches for:

- ``--client-ca FILE``: a review must come with a client certificate signed by that CA
  (the API server presents one when its admission configuration gives it one), and, with
  ``--client-name NAME`` (repeatable), one whose subject common name or a DNS name matches;
  a review without one, or with one of another name, is refused with HTTP 403 (the health
  endpoints need none: the kubelet's probes carry no certificate);
- ``--trusted-network``: the operator asserts that only the API server can reach the port
  (the chart's NetworkPolicy, restricted to the API server's addresses, passes it).

Reviews from other callers are judged exactly the same (they get the same answers) but
record nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def certificate_names(peercert: Mapping[str, Any] | None) -> list[str]:
    """The subject common names and DNS subject alternative names of a verified peer certificate."""
    if not peercert:
        return []
    names = [value for rdn in peercert.get("subject", ()) for key, value in rdn if key == "commonName"]
    names += [value for kind, value in peercert.get("subjectAltName", ()) if kind == "DNS"]
    return names


@dataclass(frozen=True, slots=True)
class CallerPolicy:
    verified: bool = False  # --client-ca: the TLS layer required and verified a client certificate
    client_names: tuple[str, ...] = ()  # --client-name: allowed names (empty: any certificate the CA signed)
    trusted_network: bool = False  # --trusted-network

    def refusal(self, peercert: Mapping[str, Any] | None) -> str | None:
        """Why this caller is refused (no client certificate, or one of a name not allowed); None when accepted.

        With ``--client-ca`` the TLS layer asks for a client certificate and verifies the one presented
        (the kubelet's probes present none and are answered); a review must come with one."""
        if not self.verified:
            return None
        if not peercert:
            return "a client certificate signed by the client CA is required"
        if not self.client_names:
            return None
        names = certificate_names(peercert)
        if any(name in self.client_names for name in names):
            return None
        shown = ", ".join(names[:3]) or "no name"
        return f"client certificate ({shown}) is not one of the allowed names"

    @property
    def may_record(self) -> bool:
        """Reviews reserve quota: the path is authenticated or restricted to the API server."""
        return self.verified or self.trusted_network
