"""A local WebSocket server for trying monitors offline: ``wsprobe serve`` and the demo.

Echo by default; the path picks a misbehaviour, so one server shows every error a
monitor may meet:

========================  ====================================================
path                      behaviour
========================  ====================================================
any other path            echo every message back (text as text, binary as binary)
``/binary``               reply to every message with its UTF-8 bytes, as binary
``/silent``               accept the upgrade, then never send anything
``/close``                close with 1008 "policy violation" before any reply
``/delay?ms=N``           echo after N milliseconds (default 1000)
``/greeting``             send ``hello from wsprobe`` first, then echo
========================  ====================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from ..errors import Error
from ..protocol.server import Peer, RunningServer, start_server

__all__ = ["GREETING", "LocalServers", "TLSFiles", "handle", "make_tls_files", "start_local"]

GREETING = "hello from wsprobe"


async def handle(peer: Peer) -> None:
    """Serve one client according to the path it asked for."""
    parts = urlsplit(peer.path)
    path = parts.path.rstrip("/") or "/"
    if path == "/silent":
        await peer.wait_closed()
        return
    if path == "/close":
        await peer.close(1008, "policy violation")
        return
    delay = 0.0
    if path == "/delay":
        values = parse_qs(parts.query).get("ms", ["1000"])
        with contextlib.suppress(ValueError):
            delay = max(0.0, float(values[0]) / 1000)
    if path == "/greeting":
        await peer.send(GREETING)
    while (message := await peer.recv()) is not None:
        if delay:
            await asyncio.sleep(delay)
        if path == "/binary":
            message = message.encode() if isinstance(message, str) else message
        await peer.send(message)


@dataclass(frozen=True, slots=True)
class TLSFiles:
    """A throw-away CA and a server certificate for 127.0.0.1, localhost and ::1."""

    ca: Path
    cert_chain: Path


def make_tls_files(directory: Path) -> TLSFiles:
    """Write a new CA (``ca.pem``) and a server certificate (``server.pem``) there."""
    try:
        import trustme
    except ImportError as exc:
        raise Error("serve --tls needs the trustme package: pip install 'wsprobe[serve]'") from exc
    authority = trustme.CA(organization_name="wsprobe throw-away CA")
    certificate = authority.issue_cert("127.0.0.1", "localhost", "::1")
    ca = directory / "ca.pem"
    chain = directory / "server.pem"
    authority.cert_pem.write_to_path(str(ca))
    certificate.private_key_and_cert_chain_pem.write_to_path(str(chain))
    return TLSFiles(ca=ca, cert_chain=chain)


@dataclass
class LocalServers:
    """The servers :func:`start_local` started; ``tls`` and ``ca`` only with TLS."""

    plain: RunningServer
    tls: RunningServer | None
    ca: Path | None
    host: str

    @property
    def url(self) -> str:
        """The ``ws://`` base URL."""
        return f"ws://{_url_host(self.host)}:{self.plain.port}"

    @property
    def tls_url(self) -> str | None:
        """The ``wss://`` base URL, when TLS is on."""
        if self.tls is None:
            return None
        return f"wss://{_url_host(self.host)}:{self.tls.port}"

    async def close(self) -> None:
        """Stop both servers."""
        await self.plain.close()
        if self.tls is not None:
            await self.tls.close()


async def start_local(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    tls: bool = False,
    tls_port: int = 0,
    tls_dir: Path | None = None,
) -> LocalServers:
    """Start the behaviour server on ``host``; with ``tls``, a ``wss://`` twin too.

    The CA and certificate go to ``tls_dir``, or to a new temporary directory.
    """
    if not tls:
        plain = await start_server(handle, host, port)
        return LocalServers(plain=plain, tls=None, ca=None, host=host)
    import os
    import ssl

    # Written before listening: a directory that cannot hold them is not a listen error.
    directory = tls_dir or Path(tempfile.mkdtemp(prefix="wsprobe-tls-"))
    try:
        directory.mkdir(parents=True, exist_ok=True)
        files = make_tls_files(directory)
    except OSError as exc:
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        raise Error(f"cannot write the TLS files to {directory}: {reason}") from exc
    plain = await start_server(handle, host, port)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(files.cert_chain))
    secure = await start_server(handle, host, tls_port, ssl_context=context)
    return LocalServers(plain=plain, tls=secure, ca=files.ca, host=host)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
