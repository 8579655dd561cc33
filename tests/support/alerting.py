"""Real receivers on loopback for the alerting tests: an HTTP server for Apprise's
``json://`` (or anything that POSTs JSON) and an SMTP server, both on the test's loop."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

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
