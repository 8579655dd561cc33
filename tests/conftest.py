"""Real servers on loopback for the tests: a websockets server, raw sockets, TLS."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trustme
from aiohttp import web
from websockets.asyncio.server import ServerConnection, serve

from tests.support.agent import AgentProcess
from tests.support.wire import RawHandler, RawServer
from wsprobe.cli import main

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent


class LoopThread:
    """An event loop on a daemon thread, for servers the blocking client talks to."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


#: Connections holding a reply back right now, by path (``/silent``, ``/delay``): what a
#: test waits for before it kills or signals a client that must be waiting.
WAITING: dict[str, int] = {"/silent": 0, "/delay": 0}
#: Connections to ``/delay`` that got as far as holding their reply back, ever: a test
#: counts from its own start (another test's held reply may still be waiting).
DELAYED = [0]


async def _behave(conn: ServerConnection) -> None:
    """Test behaviours by path (the product's own server has fewer, on purpose)."""
    assert conn.request is not None
    path = conn.request.path
    if path == "/silent":
        WAITING[path] += 1
        try:
            await conn.wait_closed()
        finally:
            WAITING[path] -= 1
        return
    message = await conn.recv()
    if path == "/binary":
        await conn.send(b"\x00\x01binary")
    elif path == "/close":
        await conn.close()
    elif path == "/close1008":
        await conn.close(1008, "go away")
    elif path == "/drop":
        assert conn.transport is not None
        conn.transport.abort()
    elif path == "/ping":
        await conn.ping(b"are you there")
        await conn.send(message)
    elif path == "/fragments":
        await conn.send(["frag", "mented ", "réply"])
    elif path == "/delay":
        DELAYED[0] += 1
        WAITING[path] += 1
        try:
            await asyncio.sleep(1)
        finally:
            WAITING[path] -= 1
        await conn.send(message)
    elif path == "/big":
        await conn.send("x" * (2 * 1024 * 1024))
    elif path == "/inspect":
        headers = {k.lower(): v for k, v in conn.request.headers.raw_items()}
        await conn.send(json.dumps({"headers": headers, "subprotocol": conn.subprotocol}))
    else:
        await conn.send(message)
    await conn.wait_closed()


async def _greet(conn: ServerConnection) -> None:
    await conn.send("welcome")
    async for message in conn:
        await conn.send(message)


class Servers:
    """The websockets servers the suite shares, plain and TLS."""

    def __init__(self, loop: LoopThread, tls_dir: Path) -> None:
        self.ca = trustme.CA()
        cert = self.ca.issue_cert("127.0.0.1", "localhost", "::1")
        self.ca_file = tls_dir / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(server_context)

        async def start() -> list[Any]:
            return [
                await serve(_behave, "127.0.0.1", 0, max_size=None),
                await serve(_greet, "127.0.0.1", 0),
                await serve(_behave, "127.0.0.1", 0, ssl=server_context, max_size=None),
                await serve(_behave, "127.0.0.1", 0, subprotocols=["chat.v2", "chat.v1"]),  # type: ignore[list-item]
            ]

        self._servers = loop.run(start())
        ports = [s.sockets[0].getsockname()[1] for s in self._servers]
        self.ws = f"ws://127.0.0.1:{ports[0]}"
        self.greeting = f"ws://127.0.0.1:{ports[1]}"
        self.wss = f"wss://127.0.0.1:{ports[2]}"
        self.subprotocol = f"ws://127.0.0.1:{ports[3]}"
        self._loop = loop

    def close(self) -> None:
        async def stop() -> None:
            for server in self._servers:
                server.close()
                await server.wait_closed()

        self._loop.run(stop())


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.stop()


@pytest.fixture(scope="session")
def servers(
    loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Servers]:
    running = Servers(loop_thread, tmp_path_factory.mktemp("tls"))
    yield running
    running.close()


# --- raw sockets: servers that misbehave below the level websockets would allow ---


@pytest.fixture
def raw_server() -> Iterator[Callable[[RawHandler], str]]:
    started: list[RawServer] = []

    def start(handler: RawHandler) -> str:
        server = RawServer(handler)
        started.append(server)
        return f"ws://127.0.0.1:{server.port}/"

    yield start
    for server in started:
        server.close()


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def worker_pids(pid: int) -> list[int]:
    """The workers of supervisor process ``pid``, by PID: its children running
    ``wsprobe.lua.worker`` (a child just forked still shows its parent's command)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    workers = []
    for child in children:
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        if b"wsprobe.lua.worker" in command:
            workers.append(int(child))
    return workers


def wait_for_workers(pid: int, count: int) -> list[int]:
    """The workers of process ``pid`` once at least ``count`` run (10 s at most)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pids = worker_pids(pid)
        if len(pids) >= count:
            return pids
        time.sleep(0.05)
    raise AssertionError("the workers did not start")


def steps_running(worker: int) -> list[tuple[int, float]]:
    """The script number and deadline (``time.monotonic()``) of each Lua step worker
    ``worker`` runs now, read from the board it shares with its supervisor (its
    descriptor and slots are its arguments)."""
    from wsprobe.lua.wire import Board

    fd, slots = Path(f"/proc/{worker}/cmdline").read_bytes().split(b"\0")[-3:-1]
    with open(f"/proc/{worker}/fd/{int(fd)}", "rb") as shared:
        memory = shared.read(Board.size(int(slots)))
    return Board(memory, int(slots)).running()


def descriptors_settle_to(limit: int) -> bool:
    """True once this process has at most ``limit`` descriptors open.

    The servers run in this process too, and close their side a moment after the
    client: allow them a second. A leak never settles.
    """
    deadline = time.monotonic() + 2
    while open_descriptors() > limit:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# --- Lua scripts through `wsprobe run`, in-process ---


class Run:
    """Writes scripts to a temporary directory and runs them in-process."""

    def __init__(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.dir = tmp_path
        self.capsys = capsys

    def script(self, source: str, name: str = "check.lua") -> str:
        path = self.dir / name
        path.write_text(source)
        return str(path)

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(["run", *args])
        out, err = self.capsys.readouterr()
        return code, out, err

    def lua(self, source: str, *flags: str) -> tuple[int, str, str]:
        return self(*flags, self.script(source))


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    return Run(tmp_path, capsys)


# --- a peer from another ecosystem: the Node.js ws package ---


@pytest.fixture(scope="session")
def node_echo() -> Iterator[str]:
    """A Node.js ``ws`` echo server (installed under .cache/node by make test)."""
    node = shutil.which("node")
    modules = ROOT / ".cache" / "node" / "node_modules"
    if node is None or not (modules / "ws").is_dir():
        pytest.skip("Node.js or its ws package is absent (make test installs ws with npm)")
    script = (
        "const {WebSocketServer} = require('ws');"
        "const s = new WebSocketServer({host: '127.0.0.1', port: 0});"
        "s.on('listening', () => console.log(s.address().port));"
        "s.on('connection', c => c.on('message', (m, bin) => c.send(m, {binary: bin})));"
    )
    process = subprocess.Popen(
        [node, "-e", script],
        stdout=subprocess.PIPE,
        text=True,
        env={"NODE_PATH": str(modules), "PATH": "/usr/bin:/bin"},
    )
    assert process.stdout is not None
    port = int(process.stdout.readline())
    yield f"ws://127.0.0.1:{port}/"
    process.terminate()
    process.wait(timeout=5)
    process.stdout.close()


# --- an HTTP server (aiohttp.web) for the http module, plain and TLS ---


async def _http_echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response(
        {
            "method": request.method,
            "path": request.path,
            "query": request.query_string,
            "body": body.decode(errors="replace"),
            "headers": {name.lower(): value for name, value in request.headers.items()},
        }
    )


async def _http_status(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    return web.Response(status=code, text=f"status {code}")


async def _http_slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("s", "5")))
    return web.Response(text="late")


async def _http_trickle(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    for _ in range(600):
        await response.write(b"x")
        await asyncio.sleep(0.01)
    return response


async def _http_big(request: web.Request) -> web.Response:
    return web.Response(body=b"y" * int(request.query["bytes"]))


async def _http_charset(request: web.Request) -> web.Response:
    declared = request.match_info["declared"]
    content_type = "text/plain; charset=iso-8859-1" if declared == "declared" else "text/plain"
    return web.Response(body="café ü".encode("iso-8859-1"), headers={"Content-Type": content_type})


async def _http_redirect(request: web.Request) -> web.Response:
    hops = int(request.match_info["hops"])
    location = "/echo" if hops <= 1 else f"/redirect/{hops - 1}"
    raise web.HTTPFound(location)


async def _http_redirect_ftp(_request: web.Request) -> web.Response:
    raise web.HTTPFound("ftp://127.0.0.1/file")


async def _http_cookie(_request: web.Request) -> web.Response:
    response = web.Response(text="cookie set")
    response.set_cookie("session", "s3cret")
    response.headers.add("X-Multi", "one")
    response.headers.add("X-Multi", "two")
    return response


async def _http_login(request: web.Request) -> web.Response:
    form = await request.json()
    if form == {"user": "monitor", "password": "pa55"}:
        return web.json_response({"token": "t0k3n"})
    return web.json_response({"error": "bad credentials"}, status=401)


async def _http_api(request: web.Request) -> web.Response:
    """The pages' example API: /api/health, /api/usuarios[/1], /api/dados."""
    route = (request.method, request.match_info["tail"])
    body = (await request.read()).decode()
    if route == ("GET", "health"):
        return web.Response(text="healthy")
    if route in {("GET", "usuarios/1"), ("HEAD", "usuarios/1")}:
        if request.headers.get("Authorization") != "Bearer token123":
            return web.json_response({"error": "unauthorized"}, status=401)
        return web.json_response({"id": 1, "nome": "Alice"})
    if route == ("POST", "usuarios"):
        return web.json_response({"criado": json.loads(body)}, status=201)
    if route == ("PUT", "usuarios/1"):
        return web.json_response({"atualizado": json.loads(body)})
    if route == ("DELETE", "usuarios/1"):
        return web.Response(status=204)
    if route[1] == "dados":
        return web.json_response({"method": request.method, "recebido": body, "valor": 123})
    return web.Response(status=404, text="not found")


def http_app() -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/api/{tail:.*}", _http_api)
    app.router.add_route("*", "/echo", _http_echo)
    app.router.add_route("*", "/status/{code}", _http_status)
    app.router.add_get("/slow", _http_slow)
    app.router.add_get("/trickle", _http_trickle)
    app.router.add_get("/big", _http_big)
    app.router.add_get("/charset/{declared}", _http_charset)
    app.router.add_get("/redirect/{hops}", _http_redirect)
    app.router.add_get("/redirect-ftp", _http_redirect_ftp)
    app.router.add_get("/cookie", _http_cookie)
    app.router.add_post("/login", _http_login)
    return app


class HttpServers:
    """The aiohttp.web server the http tests share: ``url`` (http) and ``tls_url``."""

    def __init__(self, loop: LoopThread, servers: Servers) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        servers.ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self.ca_file = servers.ca_file
        self._loop = loop

        async def start() -> tuple[web.AppRunner, list[int]]:
            runner = web.AppRunner(http_app(), access_log=None)
            await runner.setup()
            ports = []
            for tls in (None, context):
                site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
                await site.start()
                ports.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
            return runner, ports

        self._runner, ports = loop.run(start())
        self.url = f"http://127.0.0.1:{ports[0]}"
        self.tls_url = f"https://127.0.0.1:{ports[1]}"

    def close(self) -> None:
        self._loop.run(self._runner.cleanup())


@pytest.fixture(scope="session")
def http_servers(loop_thread: LoopThread, servers: Servers) -> Iterator[HttpServers]:
    running = HttpServers(loop_thread, servers)
    yield running
    running.close()


@pytest.fixture(scope="session", autouse=True)
def _private_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test writes to the user's state directory: a script that calls ``store``
    without ``--state-dir`` writes under a temporary ``XDG_STATE_HOME``."""
    previous = {
        name: os.environ.pop(name, None) for name in ("XDG_STATE_HOME", "WSPROBE_STATE_DIR")
    }
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("xdg-state"))
    yield
    del os.environ["XDG_STATE_HOME"]
    os.environ.update({name: value for name, value in previous.items() if value is not None})


@pytest.fixture
def agents() -> Iterator[list[AgentProcess]]:
    """Agent processes a test starts, killed when it ends."""
    started: list[AgentProcess] = []
    yield started
    for agent in started:
        agent.kill()
