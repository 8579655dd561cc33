"""Where to connect: literal addresses, resolver results, and how a peer is named."""

from __future__ import annotations

import socket

from ..url import Target

__all__ = ["Address", "literal_address", "peer_name", "sort_addresses"]

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
