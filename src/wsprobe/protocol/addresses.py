"""Where to connect: literal addresses, resolver results, their order, how a peer is named.

Both transports race the addresses of a host the Happy Eyeballs way (RFC 8305):
in the order :func:`interleave` gives, each attempt starting :data:`ATTEMPT_DELAY`
after the previous one while that one is still pending (at once when it fails);
the first to connect wins and the others are closed. The order and the delay live
here; each transport races with its own primitives.
"""

from __future__ import annotations

import socket

from ..url import Target

__all__ = [
    "ATTEMPT_DELAY",
    "Address",
    "interleave",
    "literal_address",
    "peer_name",
    "sort_addresses",
]

#: RFC 8305's Connection Attempt Delay: its recommended 250 ms.
ATTEMPT_DELAY = 0.25

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


def interleave(addresses: list[Address]) -> list[Address]:
    """RFC 8305 §4: alternate address families, starting with the resolver's first.

    Within a family the resolver's order is kept; when one family runs out, the
    rest of the other follows.
    """
    families: dict[socket.AddressFamily, list[Address]] = {}
    for address in addresses:
        families.setdefault(address[0], []).append(address)
    queues = list(families.values())
    ordered: list[Address] = []
    while queues:
        for queue in queues:
            ordered.append(queue.pop(0))
        queues = [queue for queue in queues if queue]
    return ordered


def peer_name(address: Address) -> str:
    """``host:port`` for IPv4, ``[host]:port`` for IPv6."""
    family, sockaddr = address
    host, port = sockaddr[0], sockaddr[1]
    return f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
