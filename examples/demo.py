"""`make demo`: start the local servers, run the examples, stop the servers.

The seed's five examples (`examples/*.lua`, the `ws` module's page) run against
`wsprobe serve --tls`: 127.0.0.1:8765 (ws) and localhost:8766 (wss, trusted through the
throw-away CA the server writes). The Monsta-style monitors (`examples/monsta/`) run
against a small service on 127.0.0.1:8767 started here (aiohttp): `POST /login` gives a
token for the right password, `/ws` is a WebSocket that wants that token, `/version`
says a version the demo changes between runs of the change-alert monitor. Then
`wsprobe agent examples/agent.yaml` runs for a few seconds: a `/metrics` excerpt and
the status page's URL are printed. Last, an agent watches a service the demo switches
off and on, and tells a local `json://` receiver: one alert firing, then resolved.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from wsprobe.cli import main

HERE = Path(__file__).resolve().parent
SERVICE_PORT = 8767
PASSWORD = "demo-s3cret"


class DemoService:
    """The login-then-WebSocket service, on its own event loop thread."""

    def __init__(self) -> None:
        self.version = "1.0.0"
        self._token = secrets.token_hex(16)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def start(self) -> None:
        app = web.Application()
        app.router.add_post("/login", self._login)
        app.router.add_get("/ws", self._websocket)
        app.router.add_get("/version", self._version)
        self._runner = web.AppRunner(app, access_log=None)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)

    async def _listen(self) -> None:
        assert self._runner is not None
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", SERVICE_PORT).start()

    def stop(self) -> None:
        if self._thread.is_alive():
            assert self._runner is not None
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()

    async def _login(self, request: web.Request) -> web.Response:
        form = await request.json()
        if form != {"user": "monitor", "password": PASSWORD}:
            return web.json_response({"error": "bad credentials"}, status=401)
        return web.json_response({"token": self._token})

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self._token}":
            return web.Response(status=401, text="token required")
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                await socket.send_json({"user": "monitor", "echo": message.data})
        return socket

    async def _version(self, _request: web.Request) -> web.Response:
        return web.Response(text=self.version)


def _show(args: list[str]) -> int:
    shown = [str(Path(a).relative_to(HERE.parent)) if a.endswith(".lua") else a for a in args]
    print(f"\n== wsprobe {' '.join(shown)}", flush=True)
    code = main(args)
    if args[0] == "check":
        print(f"(exit {code})", flush=True)
    return code


def monsta(state_dir: Path) -> int:
    """The Monsta-style monitors against the demo service."""
    service = DemoService()
    try:
        service.start()
        print(f"\ndemo service: http://127.0.0.1:{SERVICE_PORT}/ (login, /ws, /version)")
        os.environ["DEMO_PASSWORD"] = PASSWORD
        login = str(HERE / "monsta" / "01-login-e-websocket.lua")
        if _show(["run", "--env", "DEMO_PASSWORD", login]) != 0:
            return 1
        state = ["--state-dir", str(state_dir)]
        alert = str(HERE / "monsta" / "02-alerta-de-mudanca.lua")
        for flags in ([], ["--json"]):  # the second time, the record
            if _show(["run", *flags, *state, alert]) != 0:
                return 1
        service.version = "1.1.0"
        if _show(["check", "--script", alert, *state]) != 1:  # WARNING: it changed
            return 1
        return 0
    finally:
        service.stop()


def demo() -> int:
    with tempfile.TemporaryDirectory(prefix="wsprobe-demo-") as directory:
        server = subprocess.Popen(
            [sys.executable, "-m", "wsprobe", "serve", "--tls", "--tls-dir", directory],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            for _ in range(2):  # the ws:// line, then the wss:// line
                line = server.stdout.readline()
                if not line:
                    print("demo: the local server did not start", file=sys.stderr)
                    return 1
                print(line.rstrip(), flush=True)
            scripts = sorted(str(path) for path in HERE.glob("*.lua"))
            for script in scripts:
                print(f"\n== wsprobe run {Path(script).relative_to(HERE.parent)}", flush=True)
                code = main(["run", "--cafile", str(Path(directory) / "ca.pem"), script])
                if code != 0:
                    return code
            code = monsta(Path(directory) / "state")
            if code != 0:
                return code
            code = agent(Path(directory) / "state")
            if code != 0:
                return code
            return alerts(Path(directory))
        finally:
            server.terminate()
            server.wait(timeout=10)
            assert server.stdout is not None
            server.stdout.close()


# The families worth a first look; the rest is in the full /metrics.
EXCERPT = re.compile(r"^(probe_success|probe_duration_seconds|wsprobe_monitor_(status|value))\{")


def agent(state_dir: Path, seconds: float = 4.0) -> int:
    """Run the agent on examples/agent.yaml for a few seconds; print what it serves."""
    config = HERE / "agent.yaml"
    print(f"\n== wsprobe agent {config.relative_to(HERE.parent)} --listen 127.0.0.1:0", flush=True)
    argv = [sys.executable, "-m", "wsprobe", "agent", str(config), "--listen", "127.0.0.1:0"]
    process = subprocess.Popen(
        [*argv, "--state-dir", str(state_dir)],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "LATENCY_WARN_MS": "250"},
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.search(r"listening on (http://\S+/)", line)
        if match is None:
            print(f"demo: the agent did not start: {line.strip()}", file=sys.stderr)
            return 1
        base = match.group(1)
        time.sleep(seconds)
        with urllib.request.urlopen(base + "metrics", timeout=10) as response:
            metrics = response.read().decode()
        print(f"GET {base}metrics (excerpt):")
        for sample in metrics.splitlines():
            if EXCERPT.match(sample):
                print(f"  {sample}")
        print(f"status page: {base} (the agent stops now; run it yourself to keep it)")
    finally:
        process.terminate()
        code = process.wait(timeout=30)
        assert process.stderr is not None
        process.stderr.close()
    print(f"agent stopped with exit status {code}")
    return code


class AlertDemo:
    """A WebSocket echo service that is switched off and on, and a receiver of
    Apprise's ``json://`` notifications, on one event loop thread."""

    def __init__(self) -> None:
        self.titles: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        service, receiver = web.Application(), web.Application()
        service.router.add_get("/", self._echo)
        receiver.router.add_post("/wsprobe", self._take)
        self._service = web.AppRunner(service, access_log=None)
        self._receiver = web.AppRunner(receiver, access_log=None)
        self._site: web.TCPSite | None = None
        self.receiver_port = self._run(self._start_receiver())
        self.service_port = 0
        self.service_port = self._run(self._switch(on=True))

    def _run(self, work: Coroutine[Any, Any, int]) -> int:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout=10)

    async def _start_receiver(self) -> int:
        await self._receiver.setup()
        await web.TCPSite(self._receiver, "127.0.0.1", 0).start()
        await self._service.setup()
        return int(self._receiver.addresses[0][1])

    async def _switch(self, *, on: bool) -> int:
        if on:
            self._site = web.TCPSite(self._service, "127.0.0.1", self.service_port)
            await self._site.start()
            return int(self._service.addresses[0][1])
        assert self._site is not None
        await self._site.stop()
        return self.service_port

    def switch(self, *, on: bool) -> None:
        self._run(self._switch(on=on))
        print(f"demo: the service is switched {'on' if on else 'off'}", flush=True)

    async def _echo(self, request: web.Request) -> web.StreamResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                await socket.send_str(message.data)
        return socket

    async def _take(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        self.titles.append(body["title"])
        print(f"receiver got ({body['type']}): {body['title']}", flush=True)
        for line in body["message"].splitlines():
            print(f"    {line}", flush=True)
        return web.Response(text="ok")

    def stop(self) -> None:
        for runner in (self._service, self._receiver):
            asyncio.run_coroutine_threadsafe(runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def _until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            print(f"demo: no {what} within {timeout:g}s", file=sys.stderr)
            return False
        time.sleep(0.1)
    return True


def alerts(directory: Path) -> int:
    """An agent tells a local receiver of one outage: firing, then resolved."""
    parts = AlertDemo()
    config = directory / "alerts.yaml"
    config.write_text(
        "defaults: {interval: 1s, timeout: 2s}\n"
        f'notifiers: {{hooks: {{urls: ["json://127.0.0.1:{parts.receiver_port}/wsprobe"]}}}}\n'
        "alerting: {notify: [hooks], failure_threshold: 1, success_threshold: 1}\n"
        f'monitors: [{{name: shop, url: "ws://127.0.0.1:{parts.service_port}/"}}]\n'
    )
    print(f"\n== wsprobe agent alerts.yaml (alerts to json://127.0.0.1:{parts.receiver_port})")
    print(config.read_text().rstrip(), flush=True)
    argv = [sys.executable, "-m", "wsprobe", "agent", str(config), "--listen", "127.0.0.1:0"]
    process = subprocess.Popen(
        [*argv, "--state-dir", str(directory / "alerts-state")], stderr=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    assert process.stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(process.stderr or ()), daemon=True)
    reader.start()
    try:
        if not _until(lambda: any("listening on" in line for line in lines), "agent"):
            return 1
        base = re.search(r"listening on (http://\S+/)", lines[0])
        assert base is not None

        def alert() -> str:
            url = base.group(1) + "api/monitors/shop"
            with urllib.request.urlopen(url, timeout=10) as response:
                shown = json.loads(response.read())
            return f"{shown['alert']['state']} ({(shown['last'] or {}).get('status')})"

        if not _until(lambda: alert() == "ok (ok)", "first OK run"):
            return 1
        parts.switch(on=False)
        if not _until(lambda: len(parts.titles) == 1, "firing notification"):
            return 1
        print(f"GET {base.group(1)}api/monitors/shop: alert {alert()}", flush=True)
        parts.switch(on=True)
        if not _until(lambda: len(parts.titles) == 2, "resolved notification"):
            return 1
        print(f"GET {base.group(1)}api/monitors/shop: alert {alert()}", flush=True)
    finally:
        process.terminate()
        code = process.wait(timeout=30)
        reader.join(timeout=10)
        process.stderr.close()
        parts.stop()
    print("agent log (alerts):")
    for line in lines:
        if "alerts:" in line or "monitor shop" in line:
            print(f"  {line.rstrip()}")
    print(f"agent stopped with exit status {code}")
    return code


if __name__ == "__main__":
    sys.exit(demo())
