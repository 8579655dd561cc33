"""Real parts on loopback for the alerting tests: an HTTP server for Apprise's
``json://`` (or anything that POSTs JSON), an SMTP server, a WebSocket service that is
switched off and on (all on the running loop), and Debian's Prometheus Alertmanager."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from websockets.asyncio.server import Server, ServerConnection, serve

from wsprobe.agent.alerting.config import AlertingConfig, parse_alerting


def free_port() -> int:
    """A loopback port nobody listens on (for a receiver that is down, then up)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Wait until ``check()``; fail saying ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30.0
) -> None:
    """Wait until ``await check()``; fail saying ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class Receiver:
    """An HTTP server on loopback keeping the JSON bodies POSTed to it, in order.

    ``status`` is what it answers (200 unless told otherwise)."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        self.paths: list[str] = []
        self.status = 200
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, port: int = 0) -> int:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._take)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        address = self._runner.addresses[0]
        self.port = int(address[1])
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _take(self, request: web.Request) -> web.Response:
        if self.status != 200:
            return web.Response(status=self.status)
        self.bodies.append(json.loads(await request.read()))
        self.paths.append(request.path)
        return web.Response(text="ok")

    def titles(self) -> list[str]:
        return [str(body["title"]) for body in self.bodies]


class Mailbox:
    """An SMTP server on loopback that takes ``user``/``password`` in plain text."""

    def __init__(self, user: str, password: str) -> None:
        self.messages: list[str] = []
        self.logins: list[tuple[bytes, bytes]] = []
        self._user = user.encode()
        self._password = password.encode()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(
                self,
                hostname="127.0.0.1",
                auth_require_tls=False,
                authenticator=self._authenticate,
            ),
            "127.0.0.1",
            0,
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:
        content = envelope.content
        self.messages.append(content.decode() if isinstance(content, bytes) else str(content))
        return "250 OK"

    def _authenticate(
        self, _server: SMTP, _session: Session, _envelope: Envelope, _mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        ok = data.login == self._user and data.password == self._password
        return AuthResult(success=ok, auth_data=data)


def alerting_config(document: dict[str, Any]) -> AlertingConfig:
    """Parse an alerting configuration; monitors ``api`` and ``gw`` unless given."""
    document.setdefault("monitors", [{"name": "api"}, {"name": "gw"}])
    return parse_alerting(document, environ={})


class Service:
    """A WebSocket echo service on a fixed loopback port, switched off and on: what a
    monitor watches through an outage."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/"
        self._server: Server | None = None

    async def on(self) -> None:
        self._server = await serve(_echo, "127.0.0.1", self.port)

    async def off(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


async def _echo(conn: ServerConnection) -> None:
    async for message in conn:
        await conn.send(message)


ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
_ALERTMANAGER_CONFIG = """
route: {receiver: blackhole, group_wait: 1s}
receivers: [{name: blackhole}]
"""


@contextlib.contextmanager
def alertmanager(directory: Path) -> Iterator[str]:
    """An Alertmanager on a free loopback port, alone (no cluster): its URL."""
    if not Path(ALERTMANAGER).is_file():
        raise AssertionError(
            f"{ALERTMANAGER} is missing: make test installs prometheus-alertmanager"
        )
    config = directory / "alertmanager.yml"
    config.write_text(_ALERTMANAGER_CONFIG)
    port = free_port()
    process = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={config}",
            f"--storage.path={directory / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


async def alerts_of(
    session: aiohttp.ClientSession, url: str, monitor: str
) -> list[dict[str, Any]] | None:
    """The alerts of ``monitor`` the Alertmanager at ``url`` lists; ``None`` while it
    does not answer."""
    try:
        async with session.get(f"{url}/api/v2/alerts") as response:
            if response.status != 200:
                return None
            body = await response.json()
    except aiohttp.ClientError:
        return None
    assert isinstance(body, list)
    return [alert for alert in body if alert["labels"].get("monitor") == monitor]
