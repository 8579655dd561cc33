"""What one script may hold in a worker is bounded, so that its neighbours keep theirs:
the data its sessions keep unread counts against its memory limit."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tests.conftest import LoopThread, Run, Servers

pytestmark = pytest.mark.slow

MiB = 1 << 20


def worker_rss() -> int:
    """The resident memory of this process's Lua workers, in bytes."""
    total = 0
    for child in Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split():
        if b"wsprobe.lua.worker" in Path(f"/proc/{child}/cmdline").read_bytes():
            status = Path(f"/proc/{child}/status").read_text()
            total += int(status.split("VmRSS:")[1].split()[0]) * 1024
    return total


class Flood:
    """Floods every connection on /flood/* with 14 messages of 64 KiB once the scripts
    have opened all theirs (``/gate`` tells), then pings it: its pong comes back
    only after the client took in everything before it. ``/gate`` answers when every
    flooded connection has answered its ping or was dropped, with the workers' RSS."""

    def __init__(self, loop: LoopThread, scripts: int) -> None:
        self.scripts = scripts
        self.expected: list[int] = []
        self.settled = 0
        self.go = asyncio.Event()
        self.rss: list[int] = []
        self._loop = loop

        async def start() -> Server:
            return await serve(self._handle, "127.0.0.1", 0, compression=None)

        self._server = loop.run(start())
        self.url = f"ws://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _handle(self, conn: ServerConnection) -> None:
        assert conn.request is not None
        if conn.request.path == "/gate":
            self.expected.append(int(await conn.recv()))
            if len(self.expected) == self.scripts:
                self.go.set()
            await self.go.wait()
            while self.settled < sum(self.expected):
                await asyncio.sleep(0.01)
            self.rss.append(worker_rss())
            await conn.send("flooded")
            return
        await self.go.wait()
        try:
            for _ in range(14):
                await conn.send("x" * 65536)
            await (await conn.ping())
        except ConnectionClosed:
            pass
        self.settled += 1
        await conn.wait_closed()

    def close(self) -> None:
        self._server.close()
        self._loop.run(self._server.wait_closed())


@pytest.fixture
def flood(loop_thread: LoopThread) -> Iterator[Flood]:
    server = Flood(loop_thread, scripts=2)
    yield server
    server.close()


def test_unread_data_counts_against_the_scripts_memory(run: Run, flood: Flood) -> None:
    # 2 scripts x 100 sessions x 896 KiB unread would be 175 MiB in one worker.
    paths = [
        run.script(
            "local sessions = {}\n"
            f'for i = 1, 100 do sessions[i] = ws.connect("{flood.url}/flood") end\n'
            f'ws.send_recv("{flood.url}/gate", "100", {{timeout = 60}})\n'
            "for _, s in ipairs(sessions) do s:recv() end\n"
            'return "read every session"',
            name,
        )
        for name in ("a.lua", "b.lua")
    ]
    flags = ("--json", "--workers", "1", "--memory-limit", "16", "--max-sessions", "100")
    code, out, _ = run(*flags, "--script-timeout", "60", *paths)
    errors = {record["name"]: record["error"] for record in map(json.loads, out.splitlines())}
    memory = "script exceeded its memory limit of 16 MiB"
    assert (code, errors) == (1, {"a.lua": f"a.lua:4: {memory}", "b.lua": f"b.lua:4: {memory}"})
    # What both scripts may hold (2 x 16 MiB) above a worker's own, with room to spare.
    assert max(flood.rss) < 110 * MiB


class Gates:
    """``/full`` (the greedy script) is answered once the neighbour says ``/done``;
    ``/wait`` (the neighbour) once the greedy script said ``/full``."""

    def __init__(self, loop: LoopThread) -> None:
        self.full = asyncio.Event()
        self.done = asyncio.Event()
        self._loop = loop

        async def start() -> Server:
            return await serve(self._handle, "127.0.0.1", 0)

        self._server = loop.run(start())
        self.url = f"ws://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _handle(self, conn: ServerConnection) -> None:
        assert conn.request is not None
        path = conn.request.path
        message = await conn.recv()
        if path == "/full":
            self.full.set()
            await self.done.wait()
        elif path == "/wait":
            await self.full.wait()
        elif path == "/done":
            self.done.set()
        await conn.send(message)

    def close(self) -> None:
        # Nothing waits on a gate once the test is over, whatever it saw.
        self._loop.loop.call_soon_threadsafe(self.full.set)
        self._loop.loop.call_soon_threadsafe(self.done.set)
        self._server.close()
        self._loop.run(self._server.wait_closed())


@pytest.fixture
def gates(loop_thread: LoopThread) -> Iterator[Gates]:
    server = Gates(loop_thread)
    yield server
    server.close()


def test_a_script_opening_every_descriptor_starves_no_neighbour(
    run: Run, servers: Servers, gates: Gates
) -> None:
    greedy = run.script(
        "local sessions = {}\n"
        "local ok, err = pcall(function()\n"
        f'  for i = 1, 1000 do sessions[i] = ws.connect("{servers.ws}/") end\nend)\n'
        "sessions[1]:close() -- room for the next call, in its own share\n"
        f'ws.send_recv("{gates.url}/full", "full", {{timeout = 60}})\n'
        'return #sessions .. " " .. err',
        "greedy.lua",
    )
    neighbour = run.script(
        f'ws.send_recv("{gates.url}/wait", "waiting", {{timeout = 60}})\n'
        f'local reply = ws.send_recv("{servers.ws}/", "still served")\n'
        f'ws.send_recv("{gates.url}/done", "done")\n'
        "return reply",
        "neighbour.lua",
    )
    # The run's processes get 256 descriptors: 192 for scripts, half for one script
    # while another holds any.
    limited = (
        "import os, resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))\n"
        "os.execv(sys.executable, [sys.executable, '-m', 'wsprobe', 'run', *sys.argv[1:]])"
    )
    flags = ("--json", "--workers", "1", "--max-sessions", "1000", "--script-timeout", "60")
    process = subprocess.run(
        [sys.executable, "-c", limited, *flags, greedy, neighbour],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    found = {record["name"]: record for record in map(json.loads, process.stdout.splitlines())}
    assert (found["neighbour.lua"]["error"], found["neighbour.lua"]["result"]) == (
        None,
        "still served",
    )
    assert found["greedy.lua"]["result"] == (
        "96 too many open files: the script's share is 96 of the 192 its worker may open"
    )
    assert process.returncode == 0, process.stderr
