"""What the blocking and asyncio transports share: addresses and OS errors in words."""

from __future__ import annotations

import socket
import sys
from typing import TYPE_CHECKING

from .errors import ConnectError
from .url import Target

if TYPE_CHECKING:
    import datetime
    import ssl

__all__ = [
    "Address",
    "certificate_expiry",
    "connect_error",
    "literal_address",
    "peer_name",
    "sort_addresses",
    "timeout_error",
    "tls_error",
]

Address = tuple[socket.AddressFamily, tuple[str, int] | tuple[str, int, int, int]]
"""A socket family and the address to connect to."""


def literal_address(target: Target) -> list[Address] | None:
    """The address of a literal-IP target, so that it never goes through a resolver."""
    if target.ip is None:
        return None
    if ":" in target.ip:
        return [(socket.AF_INET6, (target.ip, target.port, 0, 0))]
    return [(socket.AF_INET, (target.ip, target.port))]


def sort_addresses(
    infos: list[
        tuple[
            socket.AddressFamily,
            socket.SocketKind,
            int,
            str,
            tuple[str, int] | tuple[str, int, int, int],
        ]
    ],
) -> list[Address]:
    """Turn ``getaddrinfo`` rows into distinct addresses, in the resolver's order."""
    seen: list[Address] = []
    for family, _type, _proto, _name, sockaddr in infos:
        address = (family, sockaddr)
        if address not in seen:
            seen.append(address)
    return seen


def peer_name(address: Address) -> str:
    """``host:port`` for IPv4, ``[host]:port`` for IPv6."""
    family, sockaddr = address
    host, port = sockaddr[0], sockaddr[1]
    return f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"


def connect_error(target: Target, exc: OSError) -> ConnectError:
    """Say in words what an OS error while connecting means, without ``[Errno N]``."""
    # ssl is imported only for wss://; without it no error can be a TLS error.
    ssl = sys.modules.get("ssl")
    if ssl is not None and isinstance(exc, ssl.SSLError):
        return tls_error(target, exc)
    if isinstance(exc, socket.gaierror):
        return ConnectError(target.display, "dns", f"could not resolve host {target.host}")
    if isinstance(exc, ConnectionRefusedError):
        return ConnectError(target.display, "refused", "connection refused")
    reason = exc.strerror or str(exc) or type(exc).__name__
    return ConnectError(target.display, "network", reason[:1].lower() + reason[1:])


def tls_error(target: Target, exc: ssl.SSLError) -> ConnectError:
    """Say in words why the TLS handshake failed."""
    import ssl

    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = f"TLS certificate verify failed: {exc.verify_message}"
    else:
        reason = (exc.reason or str(exc)).replace("_", " ").lower()
        detail = f"TLS handshake failed: {reason}"
    return ConnectError(target.display, "tls", detail)


def timeout_error(target: Target, seconds: float) -> ConnectError:
    """The error for a deadline that passed before the upgrade completed."""
    return ConnectError(target.display, "timeout", f"timed out after {seconds:g}s")


def certificate_expiry(tls: ssl.SSLSocket | ssl.SSLObject) -> datetime.datetime | None:
    """When the server's certificate expires; ``None`` when it was not verified.

    Python only decodes a certificate it verified, so ``insecure`` calls have none.
    """
    import datetime
    import ssl

    not_after = (tls.getpeercert() or {}).get("notAfter")
    if not isinstance(not_after, str):
        return None
    seconds = ssl.cert_time_to_seconds(not_after)
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
