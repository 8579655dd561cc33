"""`make bench`: wsprobe next to other WebSocket clients, on loopback, in one run.

Every client does the same one-shot exchange against the same server: connect,
upgrade, send "hello", read the reply, send a close, wait for the server's close.
The servers are a small C epoll server (bench/wsecho.c, compiled here) and, for
wss://, Node.js's ws package over https. Python clients run interleaved call by
call in this process, so machine noise hits them alike; the raw C client runs in
chunks between rounds. Ratios are what to read, not absolute times.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import metrics_render  # bench/metrics_render.py, beside this file
import pages  # bench/pages.py, beside this file
import soak
from agent_process import (
    cpu_seconds,
    gc_probe_env,
    http_get,
    rss_mib,
    running_agent,
    tree_mib,
    tree_pids,
)

import wsprobe

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUILD = HERE / "build"
MESSAGE = "hello"
REQUEST = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
KEY = b"\x01\x02\x03\x04"
TEXT_FRAME = (
    bytes([0x81, 0x80 | len(MESSAGE)])
    + KEY
    + bytes(b ^ KEY[i % 4] for i, b in enumerate(MESSAGE.encode()))
)
CLOSE_FRAME = bytes([0x88, 0x82]) + KEY + bytes([0x03 ^ 1, 0xE8 ^ 2])


# --- servers ---


def build(name: str) -> Path:
    BUILD.mkdir(exist_ok=True)
    binary = BUILD / name
    source = HERE / f"{name}.c"
    if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
        subprocess.run(["gcc", "-O2", "-o", str(binary), str(source)], check=True)
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A server process started here and stopped by its PID."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if line != "ready":
            raise SystemExit(f"bench: server {argv[0]} did not start ({line!r})")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()


NODE_TLS_SERVER = """
const fs = require('fs'), https = require('https'), {WebSocketServer} = require('ws');
const [cert, key, port] = process.argv.slice(2);
const server = https.createServer({cert: fs.readFileSync(cert), key: fs.readFileSync(key)});
const wss = new WebSocketServer({server, perMessageDeflate: false});
wss.on('connection', c => c.on('message', (m, binary) => c.send(m, {binary})));
server.listen(+port, '127.0.0.1', () => console.log('ready'));
"""


def node_tls_server(port: int, directory: Path) -> tuple[Server, Path] | None:
    node = shutil.which("node")
    modules = ROOT / ".cache" / "node" / "node_modules"
    if node is None or not (modules / "ws").is_dir():
        return None
    import trustme

    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1")
    ca = directory / "ca.pem"
    authority.cert_pem.write_to_path(str(ca))
    cert.cert_chain_pems[0].write_to_path(str(directory / "cert.pem"))
    cert.private_key_pem.write_to_path(str(directory / "key.pem"))
    script = directory / "server.js"
    script.write_text(NODE_TLS_SERVER)
    env = {"NODE_PATH": str(modules), "PATH": os.environ["PATH"]}
    argv = [node, str(script), str(directory / "cert.pem"), str(directory / "key.pem"), str(port)]
    return Server(argv, env), ca


# --- clients: each does one whole exchange ---


def raw_python(port: int, context: ssl.SSLContext | None = None) -> str:
    """The Python floor: a blocking socket and the bytes of the exchange, no checks."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if context is not None:
        sock = context.wrap_socket(sock, server_hostname="127.0.0.1")
    try:
        sock.sendall(REQUEST)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(4096)
        assert data.startswith(b"HTTP/1.1 101")
        data = data.split(b"\r\n\r\n", 1)[1]
        sock.sendall(TEXT_FRAME)
        while len(data) < 2 + len(MESSAGE):
            data += sock.recv(4096)
        sock.sendall(CLOSE_FRAME)
        while sock.recv(4096):
            pass
        return data[2 : 2 + len(MESSAGE)].decode()
    finally:
        sock.close()


def websocket_client(url: str) -> str:
    import websocket

    ws = websocket.create_connection(url)
    ws.send(MESSAGE)
    reply = ws.recv()
    ws.close()
    return str(reply)


def websockets_sync(url: str) -> str:
    from websockets.sync.client import connect

    with connect(url) as ws:
        ws.send(MESSAGE)
        return str(ws.recv())


async def websockets_async(url: str) -> str:
    from websockets.asyncio.client import connect

    async with connect(url) as ws:
        await ws.send(MESSAGE)
        return str(await ws.recv())


async def aiohttp_client(url: str, session: Any) -> str:
    async with session.ws_connect(url) as ws:
        await ws.send_str(MESSAGE)
        message = await ws.receive()
        return str(message.data)


async def picows_client(url: str) -> str:
    from picows import WSCloseCode, WSListener, WSMsgType, ws_connect

    class Listener(WSListener):  # type: ignore[misc]
        reply = ""

        def on_ws_connected(self, transport: Any) -> None:
            transport.send(WSMsgType.TEXT, MESSAGE.encode())

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type == WSMsgType.TEXT:
                self.reply = frame.get_payload_as_utf8_text()
                transport.send_close(WSCloseCode.OK)

    transport, listener = await ws_connect(Listener, url)
    await transport.wait_disconnected()
    return str(listener.reply)


# --- measuring ---

#: The targets measured in this run, printed together at the end (:func:`print_targets`):
#: name -> (target text, ratio or value measured, spread text, met).
TARGETS: dict[str, tuple[str, str, bool]] = {}


def target(name: str, wanted: str, measured: str, met: bool) -> None:
    """Record a target's measurement and print its line at once."""
    TARGETS[name] = (wanted, measured, met)
    print(f"target: {wanted:52} measured: {measured:40} {'met' if met else 'not met'}")


def print_targets() -> None:
    if TARGETS:
        print("\nTargets of this run")
        for wanted, measured, met in TARGETS.values():
            print(f"target: {wanted:52} measured: {measured:40} {'met' if met else 'not met'}")


def ratio_spread(numerators: list[float], denominators: list[float]) -> tuple[float, str]:
    """The ratio of the medians, and the min-max of the ratios pair by pair (the
    pairs are measured side by side: a round, or a chunk of interleaved runs)."""
    ratio = statistics.median(numerators) / statistics.median(denominators)
    pairs = [n / d for n, d in zip(numerators, denominators, strict=True)]
    return ratio, f"{ratio:.2f}x (pairs {min(pairs):.2f}-{max(pairs):.2f})"


def chunked_medians(values: list[float], chunks: int = 3) -> list[float]:
    """Medians of ``chunks`` consecutive slices of interleaved runs."""
    size = max(1, len(values) // chunks)
    return [statistics.median(values[i : i + size]) for i in range(0, size * chunks, size)]


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.9) - 1]


def print_table(
    title: str, rows: list[tuple[str, list[float], list[float]]], base: str
) -> dict[str, float]:
    """Rows of (name, all samples, medians per round); ratios against ``base``."""
    medians = {name: summary(samples)[0] for name, samples, _ in rows}
    print(f"\n{title}")
    print(f"{'client':40} {'median':>10} {'p90':>10} {'rounds (min-max)':>22} {'x ' + base:>14}")
    for name, samples, rounds in rows:
        median, p90 = summary(samples)
        spread = f"{min(rounds) * 1e6:.0f}-{max(rounds) * 1e6:.0f} us"
        print(
            f"{name:40} {median * 1e6:8.0f}us {p90 * 1e6:8.0f}us {spread:>22} "
            f"{median / medians[base]:13.2f}x"
        )
    return medians


def one_shot(port: int, rounds: int, per_round: int) -> dict[str, float]:
    """Target 1: the cost of one call, every client side by side."""
    url = f"ws://127.0.0.1:{port}/"
    default_loop = asyncio.new_event_loop()
    import uvloop

    fast_loop = uvloop.new_event_loop()
    clients: dict[str, Callable[[], str]] = {
        "raw Python blocking socket": lambda: raw_python(port),
        "wsprobe.send_recv": lambda: wsprobe.send_recv(url, MESSAGE),
        "wsprobe.send_recv_async (uvloop)": lambda: fast_loop.run_until_complete(
            wsprobe.send_recv_async(url, MESSAGE)
        ),
        "picows + uvloop": lambda: fast_loop.run_until_complete(picows_client(url)),
        "websocket-client": lambda: websocket_client(url),
        "websockets asyncio client": lambda: default_loop.run_until_complete(
            websockets_async(url)
        ),
        "websockets sync client": lambda: websockets_sync(url),
    }
    try:
        import aiohttp

        session = default_loop.run_until_complete(_aiohttp_session(aiohttp))
        clients["aiohttp"] = lambda: default_loop.run_until_complete(aiohttp_client(url, session))
    except ImportError:
        session = None
    for call in clients.values():  # warm up: imports, caches
        assert call() == MESSAGE
    samples: dict[str, list[float]] = {name: [] for name in ["raw C client", *clients]}
    per_round_medians: dict[str, list[float]] = {name: [] for name in samples}
    client_c = build("wsclient")
    for _ in range(rounds):
        c_times = [
            float(line)
            for line in subprocess.run(
                [str(client_c), str(port), str(per_round), MESSAGE],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
        ]
        samples["raw C client"] += c_times
        per_round_medians["raw C client"].append(statistics.median(c_times))
        this_round: dict[str, list[float]] = {name: [] for name in clients}
        gc.disable()
        for _ in range(per_round):
            for name, call in clients.items():
                started = time.perf_counter()
                call()
                this_round[name].append(time.perf_counter() - started)
        gc.enable()
        for name, times in this_round.items():
            samples[name] += times
            per_round_medians[name].append(statistics.median(times))
    if session is not None:
        default_loop.run_until_complete(session.close())
    default_loop.close()
    fast_loop.close()
    rows = [(name, samples[name], per_round_medians[name]) for name in samples]
    medians = print_table(
        f"1. One call (connect, send, reply, close): {rounds} rounds x {per_round} calls each",
        rows,
        "raw C client",
    )
    ratio, spread = ratio_spread(
        per_round_medians["wsprobe.send_recv"], per_round_medians["picows + uvloop"]
    )
    target("send_recv", "send_recv <= 0.8x picows+uvloop one-shot", spread, ratio <= 0.8)
    return medians


async def _aiohttp_session(aiohttp: Any) -> Any:
    return aiohttp.ClientSession()


async def calls_per_second(
    call: Callable[[], Awaitable[str]], total: int, in_flight: int
) -> float:
    """``total`` calls, ``in_flight`` at a time, on the running loop: calls per second."""
    gate = asyncio.Semaphore(in_flight)

    async def one() -> None:
        async with gate:
            assert await call() == MESSAGE

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(total)))
    return total / (time.perf_counter() - started)


def throughput(port: int, total: int, in_flight: int, rounds: int) -> dict[str, float]:
    """Target 2: calls per second with many calls in flight on one uvloop loop."""
    import uvloop

    url = f"ws://127.0.0.1:{port}/"

    contenders: dict[str, Callable[[], Awaitable[str]]] = {
        "wsprobe.send_recv_async": lambda: wsprobe.send_recv_async(url, MESSAGE),
        "picows + uvloop": lambda: picows_client(url),
        "websockets asyncio client": lambda: websockets_async(url),
    }
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        for _ in range(rounds):
            for name, call in contenders.items():
                rates[name].append(runner.run(calls_per_second(call, total, in_flight)))
    print(f"\n2. {total} calls, {in_flight} in flight, one uvloop loop: calls/s, {rounds} rounds")
    base = statistics.median(rates["picows + uvloop"])
    for name, values in rates.items():
        median = statistics.median(values)
        print(
            f"{name:40} {median:10.0f}/s  rounds {min(values):.0f}-{max(values):.0f}  "
            f"{median / base:6.2f}x picows"
        )
    return {name: statistics.median(values) for name, values in rates.items()}


def through_lua(port: int, total: int, in_flight: int, rounds: int, async_rate: float) -> float:
    """Target 3: the same calls as Lua scripts through `wsprobe run`."""
    from wsprobe.lua.job import RunSettings
    from wsprobe.lua.runner import run_scripts
    from wsprobe.options import make_options

    with tempfile.TemporaryDirectory() as directory:
        script = Path(directory) / "one.lua"
        script.write_text(f'return ws.send_recv("ws://127.0.0.1:{port}/", "{MESSAGE}")')
        settings = RunSettings(options=make_options(), concurrency=in_flight)
        rates = []
        with open(os.devnull, "w") as sink:
            for _ in range(rounds):
                started = time.perf_counter()
                code = run_scripts([str(script)] * total, settings, stdout=sink, stderr=sink)
                rates.append(total / (time.perf_counter() - started))
                assert code == 0
    median = statistics.median(rates)
    print(f"\n3. wsprobe run: {total} one-call scripts, {in_flight} at a time, {rounds} rounds")
    print(
        f"{'wsprobe run':40} {median:10.0f}/s  rounds {min(rates):.0f}-{max(rates):.0f}  "
        f"{median / async_rate:6.2f}x send_recv_async"
    )
    return median


def tls_one_shot(rounds: int, per_round: int) -> None:
    """Target 4: wss:// per call against a raw Python TLS client with a reused context."""
    with tempfile.TemporaryDirectory() as directory:
        port = free_port()
        started = node_tls_server(port, Path(directory))
        if started is None:
            print("\n4. wss:// per call: skipped, Node.js or its ws package is absent")
            return
        server, ca = started
        try:
            context = ssl.create_default_context(cafile=str(ca))
            url = f"wss://127.0.0.1:{port}/"
            clients: dict[str, Callable[[], str]] = {
                "raw Python TLS (reused context)": lambda: raw_python(port, context),
                "wsprobe.send_recv wss://": lambda: wsprobe.send_recv(
                    url, MESSAGE, cafile=str(ca)
                ),
                "websocket-client wss://": lambda: _websocket_client_tls(url, str(ca)),
            }
            for call in clients.values():
                assert call() == MESSAGE
            samples: dict[str, list[float]] = {name: [] for name in clients}
            medians: dict[str, list[float]] = {name: [] for name in clients}
            for _ in range(rounds):
                this_round: dict[str, list[float]] = {name: [] for name in clients}
                for _ in range(per_round):
                    for name, call in clients.items():
                        began = time.perf_counter()
                        call()
                        this_round[name].append(time.perf_counter() - began)
                for name, times in this_round.items():
                    samples[name] += times
                    medians[name].append(statistics.median(times))
            print_table(
                f"4. wss:// one call, Node.js ws over https: {rounds} rounds x {per_round} calls",
                [(name, samples[name], medians[name]) for name in clients],
                "raw Python TLS (reused context)",
            )
        finally:
            server.stop()


def _websocket_client_tls(url: str, ca: str) -> str:
    import websocket

    ws = websocket.create_connection(url, sslopt={"ca_certs": ca})
    ws.send(MESSAGE)
    reply = ws.recv()
    ws.close()
    return str(reply)


def processes(port: int, runs: int) -> None:
    """Target 5: a new process per call, as a scheduler starts a plugin.

    wsprobe's bytecode is compiled first, as an installed package has it: with
    PYTHONDONTWRITEBYTECODE set (as in this project's CI) an editable install
    would otherwise recompile every module in every process (~20 ms here).
    """
    import compileall

    compileall.compile_dir(str(ROOT / "src" / "wsprobe"), quiet=1)
    url = f"ws://127.0.0.1:{port}/"
    python = sys.executable
    wsprobe_command = str(Path(sys.executable).parent / "wsprobe")  # the console script
    commands = {
        "python -c pass": [python, "-c", "pass"],
        "wsprobe send": [wsprobe_command, "send", url, MESSAGE],
        "wsprobe check": [wsprobe_command, "check", url, "--send", MESSAGE],
        "websocket-client one-shot": [
            python,
            "-c",
            "import websocket; w = websocket.create_connection("
            f"{url!r}); w.send('x'); w.recv(); w.close()",
        ],
    }
    wscat = ROOT / ".cache" / "node" / "node_modules" / ".bin" / "wscat"
    if wscat.exists():
        commands["wscat -x (Node.js)"] = [str(wscat), "-c", url, "-x", MESSAGE]
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            began = time.perf_counter()
            subprocess.run(argv, capture_output=True, check=True)
            times[name].append(time.perf_counter() - began)
    print(f"\n5. A process per call: wall time over {runs} runs each, interleaved")
    for name, values in times.items():
        median, p90 = summary(values)
        print(f"{name:40} {median * 1e3:8.1f}ms median {p90 * 1e3:8.1f}ms p90")
    ratio, spread = ratio_spread(
        chunked_medians(times["wsprobe check"]),
        chunked_medians(times["websocket-client one-shot"]),
    )
    target(
        "check process",
        "wsprobe check process <= 1.0x websocket-client's",
        spread.replace("pairs", "thirds"),
        ratio <= 1.0,
    )
    import_profile(url, runs)


def import_profile(url: str, runs: int) -> None:
    """Where `wsprobe check`'s imports go: `python -X importtime`, self times summed
    by top-level package, median over ``runs`` processes (importtime's own overhead
    inflates every figure alike)."""
    totals: dict[str, list[float]] = {}
    # The console script, as a scheduler runs it (`-m wsprobe` would add runpy and
    # importlib.util).
    wsprobe_command = str(Path(sys.executable).parent / "wsprobe")
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", wsprobe_command, "check", url],
            capture_output=True,
            text=True,
            check=False,
        )
        sums: dict[str, float] = {}
        for line in done.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            _, self_us, _, name = (part.strip() for part in line.replace(":", "|", 1).split("|"))
            top = name.split(".")[0]
            group = top if top in ("wsprobe", "websockets") else "standard library"
            for key in {group, top}:
                sums[key] = sums.get(key, 0.0) + float(self_us) / 1e6
        for group, seconds in sums.items():
            totals.setdefault(group, []).append(seconds)
    medians = {name: statistics.median(values) for name, values in totals.items()}
    groups = ("wsprobe", "websockets", "standard library")
    print("   imports of `wsprobe check` by package (self time, -X importtime, median):")
    print("   " + ", ".join(f"{group} {medians.get(group, 0) * 1e3:.1f}ms" for group in groups))
    packages = sorted(
        (name for name in medians if name not in groups), key=lambda name: -medians[name]
    )
    shown = ", ".join(f"{name} {medians[name] * 1e3:.1f}" for name in packages[:16])
    print(f"   by top-level package (ms): {shown}")


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants, now."""
    return sum(int(rss_mib(current) * 2**20) for current in tree_pids(pid))


def memory(port: int, scripts: int, baseline_src: str | None = None) -> None:
    """Target 6: RSS of `wsprobe run` with many scripts waiting on a silent server,
    summed over the supervisor and its workers, sampled every 0.1 s; with
    ``baseline_src`` (another tree's ``src``, same interpreter), its run after this
    tree's, for a figure side by side.

    The calls' timeout is long enough for every connection to be established even
    when the kernel's SYN backlog overflows under 10,000 simultaneous connects
    (retransmissions after 1, 3 and 7 s), so every script really is waiting.
    """
    wait = 20
    trees = {"wsprobe run (all processes)": None}
    if baseline_src:
        trees["baseline (all processes)"] = baseline_src
    print(f"\n6. Memory: {scripts} scripts in flight, each waiting {wait} s on a silent server")
    with tempfile.TemporaryDirectory() as directory:
        script = Path(directory) / "wait.lua"
        script.write_text(
            f'local ok, err = pcall(ws.send_recv, "ws://127.0.0.1:{port}/silent", "x", '
            f"{{timeout = {wait}}})\nreturn err"
        )
        argv = [
            sys.executable,
            "-m",
            "wsprobe",
            "run",
            "--json",
            "--concurrency",
            str(scripts),
            *[str(script)] * scripts,
        ]
        for name, src in trees.items():
            env = {**os.environ, "PYTHONPATH": src} if src else None
            peak, waited, elapsed, cpu = _waiting_run(argv, env)
            print(
                f"{name:40} peak RSS {peak / 2**20:6.0f} MiB  "
                f"({waited} of {scripts} timed out as expected, {elapsed:.1f}s wall, "
                f"{cpu:.1f}s CPU)"
            )
            if scripts == 10000 and src is None:
                target(
                    "memory",
                    "10,000 scripts waiting 20 s < 600 MiB, all processes",
                    f"{peak / 2**20:.0f} MiB (one run; {waited} waited)",
                    peak / 2**20 < 600 and waited == scripts,
                )


def _waiting_run(argv: list[str], env: dict[str, str] | None) -> tuple[int, int, float, float]:
    """Run ``argv`` sampling its processes' RSS: the peak, how many scripts waited
    to their timeout, the seconds it took and the CPU seconds of all its processes."""
    began = time.perf_counter()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    # Records go to a file: a pipe nobody reads while sampling would fill up.
    with (
        tempfile.TemporaryFile("w+") as records,
        subprocess.Popen(argv, stdout=records, text=True, env=env) as process,
    ):
        peak = 0
        while process.poll() is None:
            peak = max(peak, tree_rss(process.pid))
            time.sleep(0.1)
        records.seek(0)
        lines = records.read().splitlines()
    waited = sum('"result":"no response from web socket"' in line for line in lines)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    return peak, waited, time.perf_counter() - began, cpu


def _interleaved(
    script: str, args: list[str], rounds: int, baseline_src: str | None
) -> dict[str, list[dict[str, Any]]]:
    """The JSON each run of ``bench/SCRIPT ARGS`` prints, a fresh process per run, by
    tree: this one's and, with ``baseline_src``, that tree's, runs interleaved."""
    trees = {"this tree": None}
    if baseline_src:
        trees["baseline"] = baseline_src
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    for _ in range(rounds):
        for name, src in trees.items():
            done = subprocess.run(
                [sys.executable, str(HERE / script), *args],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "PYTHONPATH": src} if src else None,
            )
            runs[name].append(json.loads(done.stdout))
    return runs


def lua_states(count: int, baseline_src: str | None) -> None:
    """A waiting script's Lua state (bench/lua_states.py, a fresh process per run):
    Lua memory and RSS per state, CPU to create one and run it to its request; with
    ``baseline_src``, runs of that tree interleaved with this tree's."""
    runs = _interleaved("lua_states.py", [str(count)], 3, baseline_src)
    print(f"\n6a. A waiting script's Lua state: {count} states per run, 3 runs interleaved")
    for name, figures in runs.items():
        lua = statistics.median(run["lua"] for run in figures)
        rss = [run["rss"] for run in figures]
        create = [statistics.median(run["create_us"]) for run in figures]
        print(
            f"{name:40} Lua {lua / 1024:5.1f} KiB  RSS {statistics.median(rss) / 1024:5.1f} KiB "
            f"(runs {min(rss) / 1024:.1f}-{max(rss) / 1024:.1f})  made and run to its request "
            f"{statistics.median(create):4.0f} us CPU (runs {min(create):.0f}-{max(create):.0f})"
        )


def after_burst(port: int, count: int, baseline_src: str | None) -> None:
    """What a worker keeps once a burst of waiting scripts is over (bench/after_burst.py,
    a fresh process per run): its resident memory at the peak and 3 s after the last
    script ended; with ``baseline_src``, that tree's runs interleaved with this tree's.
    Without a trim, freed memory stays resident for as long as the worker lives."""
    runs = _interleaved("after_burst.py", [str(port), str(count)], 2, baseline_src)
    print(
        f"\n6b. One worker after a burst: {count} scripts waiting 10 s at once, 2 runs interleaved"
    )
    for name, figures in runs.items():
        peaks = ", ".join(f"{run['peak'] / 2**20:.0f}" for run in figures)
        after = ", ".join(f"{run['after'] / 2**20:.0f}" for run in figures)
        waited = ", ".join(str(run["waited"]) for run in figures)
        print(
            f"{name:40} peak RSS {peaks} MiB  3 s after the last ended {after} MiB  "
            f"(waited {waited})"
        )


_MULTIARCH = sysconfig.get_config_var("MULTIARCH")
#: The allocators compared in part 6c: the environment each run gets, over this one's.
ALLOCATORS: dict[str, dict[str, str]] = {
    "glibc": {"WSPROBE_JEMALLOC": "0"},
    "jemalloc (workers, default)": {},
    "mimalloc (all processes)": {
        "WSPROBE_JEMALLOC": "0",
        "LD_PRELOAD": f"/usr/lib/{_MULTIARCH}/libmimalloc.so.2",
    },
}


def allocators(port: int, scripts: int, total: int, rounds: int, confs: list[str]) -> None:
    """The workers' C allocator (wsprobe.lua.allocator): glibc, jemalloc and mimalloc,
    and jemalloc with each ``MALLOC_CONF`` of ``confs``, runs interleaved round by
    round: peak RSS of ``scripts`` scripts waiting 20 s on a silent server (all
    processes), and `wsprobe run --workers 1` on ``total`` one-call scripts, 200 in
    flight: CPU per script of all its processes, next to ``send_recv_async`` on a
    uvloop loop in this process (CPU per call, and calls per second)."""
    import uvloop

    variants = {
        name: env
        for name, env in ALLOCATORS.items()
        if "LD_PRELOAD" not in env or Path(env["LD_PRELOAD"]).exists()
    }
    variants |= {f"jemalloc MALLOC_CONF={conf}": {"MALLOC_CONF": conf} for conf in confs}
    url = f"ws://127.0.0.1:{port}/"
    peaks: dict[str, list[float]] = {name: [] for name in variants}
    cpus: dict[str, list[float]] = {name: [] for name in ["send_recv_async", *variants]}
    rates: dict[str, list[float]] = {name: [] for name in cpus}
    with (
        tempfile.TemporaryDirectory() as directory,
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        wait = Path(directory) / "wait.lua"
        wait.write_text(
            f'local ok, err = pcall(ws.send_recv, "ws://127.0.0.1:{port}/silent", "x", '
            "{timeout = 20})\nreturn err"
        )
        one = Path(directory) / "one.lua"
        one.write_text(f'return ws.send_recv("{url}", "{MESSAGE}")')
        run = [sys.executable, "-m", "wsprobe", "run", "--json"]
        waiting = [*run, "--concurrency", str(scripts), *[str(wait)] * scripts]
        calls = [*run, "--workers", "1", "--concurrency", "200", *[str(one)] * total]
        for _ in range(rounds):
            began = time.process_time()
            rate = runner.run(
                calls_per_second(lambda: wsprobe.send_recv_async(url, MESSAGE), total, 200)
            )
            cpus["send_recv_async"].append((time.process_time() - began) / total)
            rates["send_recv_async"].append(rate)
            for name, overrides in variants.items():
                env = {**os.environ, **overrides}
                peak, waited, _, _ = _waiting_run(waiting, env)
                if waited != scripts:
                    raise SystemExit(f"bench: {name}: {waited} of {scripts} waited")
                peaks[name].append(peak / 2**20)
                _, _, seconds, cpu = _waiting_run(calls, env)
                cpus[name].append(cpu / total)
                rates[name].append(total / seconds)
    print(
        f"\n6c. The workers' allocator: {scripts} scripts waiting 20 s (peak RSS, all "
        f"processes); run --workers 1 on {total} one-call scripts; {rounds} rounds interleaved"
    )
    async_cpu = statistics.median(cpus["send_recv_async"])
    print(f"{'send_recv_async':40} {'':29} CPU {async_cpu * 1e6:5.0f} us/call")
    for name in variants:
        _, cpu_spread = ratio_spread(cpus["send_recv_async"], cpus[name])
        _, rate_spread = ratio_spread(rates[name], rates["send_recv_async"])
        print(
            f"{name:40} {statistics.median(peaks[name]):5.0f} MiB "
            f"(rounds {min(peaks[name]):.0f}-{max(peaks[name]):.0f})  "
            f"CPU {statistics.median(cpus[name]) * 1e6:5.0f} us/script, "
            f"async/run {cpu_spread}; by rate {rate_spread}"
        )


def _runs_total(base: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(http_get(base + "metrics").decode()):
        for sample in family.samples:
            if sample.name == "wsprobe_monitor_runs_total":
                total += sample.value
    return total


def _agent_run(
    port: int, monitors: int, interval: int, window: int, *, scripted: bool
) -> dict[str, float]:
    """One agent with ``monitors`` checks every ``interval`` s: its cost over ``window`` s."""
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        (folder / "echo.lua").write_text(
            f'local reply = ws.send_recv("ws://127.0.0.1:{port}/", "{MESSAGE}")\n'
            f'if reply ~= "{MESSAGE}" then error("unexpected reply") end\n'
            'return {value = #reply, status = "MetricOk"}\n'
        )
        if scripted:
            entry = "{{name: m{index}, script: echo.lua}}"
        else:
            entry = (
                f"{{{{name: m{{index}}, url: 'ws://127.0.0.1:{port}/', send: {MESSAGE}, "
                f"expect: {{{{contains: {MESSAGE}}}}}}}}}"
            )
        lines = [f"defaults: {{interval: {interval}s, timeout: 5s}}", "concurrency: 200"]
        lines += ["monitors:"] + [f"  - {entry.format(index=i)}" for i in range(monitors)]
        (folder / "agent.yaml").write_text("\n".join(lines) + "\n")
        with running_agent(folder / "agent.yaml", folder / "state") as (process, base):
            time.sleep(interval + 1)  # every monitor has run once: steady state
            # The counts are read at the start of each scrape: the rate's window runs
            # from one request to the other.
            counted = time.perf_counter()
            runs_before, cpu_before = _runs_total(base), cpu_seconds(process.pid)
            time.sleep(window)
            cpu = cpu_seconds(process.pid) - cpu_before
            counting = time.perf_counter() - counted
            runs = _runs_total(base) - runs_before
            rss = tree_mib(process.pid)
            renders = []
            for _ in range(20):
                began = time.perf_counter()
                size = len(http_get(base + "metrics"))
                renders.append(time.perf_counter() - began)
            return {
                "cpu": cpu / window,
                "rate": runs / counting,
                "cpu_per_check": cpu / max(runs, 1),
                "rss": rss,
                "peak": tree_mib(process.pid, "VmHWM"),
                "render": statistics.median(renders),
                "render_max": max(renders),
                "size": size,
            }


def agent(port: int, monitors: int, interval: int, window: int) -> None:
    """Target 7: `wsprobe agent` with declarative and scripted monitors, next to a
    `wsprobe check` process per check."""
    print(
        f"\n7. wsprobe agent: {monitors} monitors every {interval} s "
        f"({monitors / interval:.0f} checks/s) on this echo server, measured over {window} s; "
        "CPU and RSS of the agent and its script workers together"
    )
    results = {
        kind: _agent_run(port, monitors, interval, window, scripted=kind == "scripted")
        for kind in ("declarative", "scripted")
    }
    for kind, found in results.items():
        print(
            f"{'agent, ' + kind:40} {found['cpu'] * 100:6.1f}% of one core  "
            f"RSS {found['rss']:5.0f} MiB (peak {found['peak']:.0f})  "
            f"{found['rate']:6.1f} checks/s  {found['cpu_per_check'] * 1e3:6.3f} ms CPU/check"
        )
    declarative = results["declarative"]
    scrape = f"/metrics for {monitors} monitors"
    for kind, found in results.items():
        print(
            f"{scrape + ', ' + kind:40} {found['render'] * 1e3:6.1f} ms median of 20 scrapes "
            f"(max {found['render_max'] * 1e3:.1f}; {found['size'] / 1024:.0f} KiB)"
        )
    ratio = results["scripted"]["cpu_per_check"] / declarative["cpu_per_check"]
    print(f"{'scripted / declarative, CPU per check':40} {ratio:6.2f}x")
    target(
        "agent scripted",
        "scripted agent monitor <= 1.5x a declarative one",
        f"{ratio:.2f}x CPU per check (one run each)",
        ratio <= 1.5,
    )
    if monitors >= 1000:
        slower = max(found["render"] for found in results.values())
        target(
            "agent metrics",
            f"/metrics for {monitors:,} monitors < 50 ms",
            f"{slower * 1e3:.1f} ms (median of 20, the slower agent)",
            slower < 0.05,
        )
    checks = 30
    wsprobe_command = str(Path(sys.executable).parent / "wsprobe")
    url = f"ws://127.0.0.1:{port}/"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    for _ in range(checks):
        subprocess.run(
            [wsprobe_command, "check", url, "--send", MESSAGE, "--expect", MESSAGE],
            capture_output=True,
            check=True,
        )
    wall = (time.perf_counter() - began) / checks
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    per_check = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / checks
    rate = monitors / interval
    print(
        f"{'a wsprobe check process per check':40} {per_check * rate * 100:6.1f}% of one core "
        f"for {rate:.0f} checks/s ({per_check * 1e3:.1f} ms CPU, {wall * 1e3:.1f} ms wall each)"
    )
    print(
        f"{'agent vs a process per check':40} "
        f"{per_check / declarative['cpu_per_check']:6.1f}x less CPU per check"
    )
    metrics_render.compare(monitors, 7)


def _counter_sum(base: str, name: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        sample.value
        for family in text_string_to_metric_families(http_get(base + "metrics").decode())
        for sample in family.samples
        if sample.name == name
    )


class _SlowReceiver:
    """An HTTP server that takes ``delay`` seconds to answer each POST, on its own loop."""

    def __init__(self, delay: float) -> None:
        from aiohttp import web

        self.requests = 0
        self._delay = delay
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._take)
        self._runner = web.AppRunner(app, access_log=None)

        async def start() -> int:
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", 0).start()
            return int(self._runner.addresses[0][1])

        self.port = asyncio.run_coroutine_threadsafe(start(), self._loop).result(10)

    async def _take(self, request: Any) -> Any:
        from aiohttp import web

        self.requests += 1
        await request.read()
        await asyncio.sleep(self._delay)
        return web.Response(text="ok")

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def _outbox_rows(path: Path) -> list[tuple[str, float, float]]:
    """``(monitor, run time, queued time)`` of each notice in an agent's outbox."""
    import json
    import sqlite3

    if not path.exists():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT monitor, notice, created FROM alert_outbox").fetchall()
    except sqlite3.Error:
        return []
    return [(monitor, json.loads(notice)["at"], created) for monitor, notice, created in rows]


def _alerting_run(
    port: int, monitors: int, failing: int, interval: int, window: int, hook: str | None
) -> dict[str, float]:
    """An agent with ``monitors`` checks, ``failing`` of them at a closed port, alerting
    to ``hook`` (none: no alerts): its check rate and skips, and when each notice was
    queued after its run."""
    closed = free_port()
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        lines = [f"defaults: {{interval: {interval}s, timeout: 5s}}", "concurrency: 200"]
        if hook is not None:
            lines += [
                f'notifiers: {{hook: {{urls: ["{hook}"]}}}}',
                "alerting: {notify: [hook], failure_threshold: 1}",
            ]
        lines.append("monitors:")
        for index in range(monitors):
            target_port = closed if index < failing else port
            lines.append(f"  - {{name: m{index}, url: 'ws://127.0.0.1:{target_port}/'}}")
        (folder / "agent.yaml").write_text("\n".join(lines) + "\n")
        outbox = folder / "state" / "alerts.db"
        queued: dict[str, float] = {}
        with running_agent(folder / "agent.yaml", folder / "state") as (_, base):
            began = time.monotonic()
            # Every failing monitor runs in the first interval; a notice stays in the
            # outbox at least as long as the receiver takes (5 s): a poll every 0.2 s
            # sees each one.
            while time.monotonic() - began < interval + 1:
                for monitor, at, created in _outbox_rows(outbox):
                    queued.setdefault(monitor, created - at)
                time.sleep(0.2)
            counted = time.perf_counter()
            runs_before = _runs_total(base)
            skipped_before = _counter_sum(base, "wsprobe_monitor_skipped_runs_total")
            time.sleep(window)
            runs = _runs_total(base) - runs_before
            skipped = _counter_sum(base, "wsprobe_monitor_skipped_runs_total") - skipped_before
            counting = time.perf_counter() - counted
            return {
                "rate": runs / counting,
                "skipped": skipped,
                "queued": len(queued),
                "slowest": max(queued.values(), default=float("nan")),
            }


def alerts(port: int, monitors: int, failing: int, interval: int, window: int) -> None:
    """Target 11: alerts queued within a check interval while the receiver is slow, and
    the checks' schedule as without alerts, side by side."""
    print(
        f"\n11. Alerts: {monitors} monitors every {interval} s, {failing} failing at once, "
        f"a json:// receiver taking 5 s per request; the same agent without alerts beside it "
        f"(rates over {window} s)"
    )
    receiver = _SlowReceiver(5.0)
    try:
        hook = f"json://127.0.0.1:{receiver.port}/hook"
        alerting = _alerting_run(port, monitors, failing, interval, window, hook)
        plain = _alerting_run(port, monitors, failing, interval, window, None)
    finally:
        receiver.stop()
    for name, found in (("with alerts", alerting), ("without alerts", plain)):
        print(
            f"{'agent, ' + name:40} {found['rate']:6.1f} checks/s  "
            f"{found['skipped']:.0f} skipped slots"
        )
    print(
        f"{'notifications queued':40} {alerting['queued']:.0f} of {failing}, the slowest "
        f"{alerting['slowest']:.3f} s after its run ({receiver.requests} requests reached "
        "the receiver)"
    )
    target(
        "alerts queued",
        f"{failing} notifications queued within one interval",
        f"{alerting['queued']:.0f}, slowest {alerting['slowest']:.2f} s (interval {interval} s)",
        alerting["queued"] == failing and alerting["slowest"] <= interval,
    )
    ratio = alerting["rate"] / plain["rate"]
    target(
        "alerts schedule",
        "checks with a slow receiver: skips 0, rate as without",
        f"{alerting['skipped']:.0f} skips, {ratio:.2f}x the rate",
        alerting["skipped"] == 0 and ratio >= 0.95,
    )


def workers(port: int, total: int, rounds: int, baseline: str | None) -> None:
    """`wsprobe run` commands (``--workers 1``, ``--workers 2``; with
    ``--baseline-python``, a Python with another wsprobe installed) on one-call
    scripts, 200 in flight, next to the same calls made by ``send_recv_async`` on
    a uvloop loop in this process, interleaved round by round.

    Every process of the runs times its garbage collections (bench/gc_probe): the
    worst pause of a worker is printed, and, from ``--workers 1``'s records, each
    script's duration, whose p99 against the median says whether a script next to
    200 others is held up (collector pauses, steps blocking the loop).
    """
    import uvloop

    run = [sys.executable, "-m", "wsprobe", "run", "--concurrency", "200", "--json"]
    commands = {
        "wsprobe run --workers 1": [*run, "--workers", "1"],
        "wsprobe run --workers 2": [*run, "--workers", "2"],
    }
    if baseline:
        commands["baseline"] = [baseline, *run[1:]]  # its own default of workers
    url = f"ws://127.0.0.1:{port}/"
    rates: dict[str, list[float]] = {name: [] for name in ["send_recv_async", *commands]}
    durations: list[float] = []
    pauses: list[tuple[float, float]] = []
    with (
        tempfile.TemporaryDirectory() as directory,
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        script = Path(directory) / "one.lua"
        script.write_text(f'return ws.send_recv("{url}", "{MESSAGE}")')
        for _ in range(rounds):
            rates["send_recv_async"].append(
                runner.run(
                    calls_per_second(lambda: wsprobe.send_recv_async(url, MESSAGE), total, 200)
                )
            )
            for name, argv in commands.items():
                seconds, lines, worst = _timed_run([*argv, *[str(script)] * total], directory)
                rates[name].append(total / seconds)
                if name == "wsprobe run --workers 1":
                    durations += [
                        float(line.split('"duration":')[1].split(",")[0]) for line in lines
                    ]
                    pauses.append(worst)
    medians = {name: statistics.median(values) for name, values in rates.items()}
    one = medians["wsprobe run --workers 1"]
    print(
        f"\n7. Supervised workers: {total} one-call scripts per command, 200 in flight, "
        f"{rounds} rounds"
    )
    for name, median in medians.items():
        print(
            f"{name:40} {median:10.0f}/s  rounds {min(rates[name]):.0f}-{max(rates[name]):.0f}  "
            f"{median / one:6.2f}x --workers 1"
        )
    ratio, spread = ratio_spread(rates["wsprobe run --workers 1"], rates["send_recv_async"])
    target("run vs async", "run --workers 1 >= 0.6x send_recv_async", spread, ratio >= 0.6)
    ratio, spread = ratio_spread(
        rates["wsprobe run --workers 2"], rates["wsprobe run --workers 1"]
    )
    target("workers 2", "run --workers 2 >= 1.8x --workers 1", spread, ratio >= 1.8)
    worst_cpu = max(cpu for _, cpu in pauses)
    worst_wall = max(wall for wall, _ in pauses)
    # The collector's work is its CPU time; the wall time adds whatever kept the
    # thread from a core (on a loaded machine, other processes), shown beside it.
    target(
        "gc pause",
        "worst collector pause in a worker <= 5 ms (CPU)",
        f"{worst_cpu * 1e3:.1f} ms (rounds {min(c for _, c in pauses) * 1e3:.1f}-"
        f"{worst_cpu * 1e3:.1f}; wall {worst_wall * 1e3:.1f})",
        worst_cpu <= 0.005,
    )
    ordered = sorted(durations)
    median = statistics.median(ordered)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    target(
        "p99",
        "p99 of a script next to 200 others <= 2x median",
        f"{p99 / median:.2f}x ({p99 * 1e3:.1f} / {median * 1e3:.1f} ms)",
        p99 <= 2 * median,
    )


def _timed_run(argv: list[str], directory: str) -> tuple[float, list[str], tuple[float, float]]:
    """Run a `wsprobe run` command: its seconds, its JSON records, and the longest
    collector pause, wall and CPU, of any of its processes but the first (the workers)."""
    pauses = Path(tempfile.mkdtemp(dir=directory))
    env = gc_probe_env(pauses)
    with tempfile.TemporaryFile("w+") as records:
        began = time.perf_counter()
        process = subprocess.Popen(argv, stdout=records, env=env, text=True)
        if process.wait() != 0:
            raise SystemExit(f"bench: {argv[:6]} failed")
        seconds = time.perf_counter() - began
        records.seek(0)
        lines = records.read().splitlines()
    worsts = [
        [float(field) for field in found.read_text().split()[:2]]
        for found in pauses.iterdir()
        if found.name != str(process.pid)
    ]
    worst = (
        max((wall for wall, _ in worsts), default=0.0),
        max((cpu for _, cpu in worsts), default=0.0),
    )
    return seconds, lines, worst


def idle_connections(port: int, count: int) -> None:
    """What a connection waiting for its reply costs: bench/idle_connections.py in a
    fresh process per figure (Python heap by tracemalloc, then resident memory)."""
    figures = {}
    for mode in ("traced", "rss"):
        done = subprocess.run(
            [sys.executable, str(HERE / "idle_connections.py"), str(port), str(count), mode],
            capture_output=True,
            text=True,
            check=True,
        )
        figures[mode] = float(done.stdout)
    print(f"\n10. A waiting connection: {count} send_recv_async calls on a silent server")
    print(
        f"{'bytes per waiting connection':40} {figures['traced'] / 1024:6.1f} KiB Python heap  "
        f"{figures['rss'] / 1024:6.1f} KiB RSS"
    )


def supervision_costs(port: int, scripts: int, rounds: int) -> None:
    """What supervision costs: a worker start (as after a restart) and the
    supervisor's CPU per script. The bench awaits each script in a task of its own
    (as a caller of ``Supervisor.run`` does); what those tasks cost is measured in
    the same rounds, on stand-ins that await a future each, and taken off."""
    import asyncio

    from wsprobe.lua.eventloop import run_event_loop
    from wsprobe.lua.job import Job, RunSettings
    from wsprobe.lua.supervisor import Supervisor
    from wsprobe.options import make_options

    settings = RunSettings(options=make_options(), workers=1, script_timeout=10)

    async def stand_in(future: asyncio.Future[None]) -> None:
        await future

    async def tasks_alone(count: int) -> float:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in range(count)]

        def resolve() -> None:
            for future in futures:
                future.set_result(None)

        cpu = time.process_time()
        loop.call_soon(resolve)
        await asyncio.gather(*(stand_in(future) for future in futures))
        return (time.process_time() - cpu) / count

    async def start_and_run(jobs: list[Job]) -> tuple[float, float, float]:
        # The first script's outcome says the worker is up: its start is all of it.
        began = time.perf_counter()
        async with Supervisor(settings) as supervisor:
            await supervisor.run(Job("first.lua", source=b"return 1"))
            started = time.perf_counter()
            cpu = time.process_time()
            await asyncio.gather(*(supervisor.run(job) for job in jobs))
            per_script = (time.process_time() - cpu) / max(len(jobs), 1)
            return started - began, per_script, await tasks_alone(len(jobs))

    quick = f'return ws.send_recv("ws://127.0.0.1:{port}/", "{MESSAGE}")'.encode()
    starts, per_script, own = [], [], []
    for _ in range(rounds):
        jobs = [Job(f"s{n}.lua", source=quick) for n in range(scripts)]
        # What the bench holds (every section's modules and results) is not the
        # supervisor's for the collector to walk, as it is not in `wsprobe run`.
        gc.collect()
        gc.freeze()
        try:
            start, cpu, tasks = run_event_loop(start_and_run(jobs))
        finally:
            gc.unfreeze()
        starts.append(start)
        per_script.append(cpu - tasks)
        own.append(tasks)
    print(f"\n8. Supervision costs ({rounds} rounds)")
    print(
        f"{'worker start to first outcome':40} {statistics.median(starts) * 1e3:8.1f}ms  "
        "(what a restart costs)"
    )
    supervisor_cpu = statistics.median(per_script)
    print(
        f"{'supervisor CPU per script':40} {supervisor_cpu * 1e6:8.1f}µs  "
        f"({scripts} one-call scripts; the bench's own tasks, "
        f"{statistics.median(own) * 1e6:.1f}µs a script, taken off)"
    )
    target(
        "supervisor",
        "supervisor CPU per script <= 30 µs",
        f"{supervisor_cpu * 1e6:.1f} µs (rounds {min(per_script) * 1e6:.1f}-"
        f"{max(per_script) * 1e6:.1f})",
        supervisor_cpu <= 30e-6,
    )


def starvation(rounds: int) -> None:
    """A healthy script 0.5 s from its reply, alone and next to 30 busy ones
    (target: within 0.5 s of alone), against `wsprobe serve`'s /delay."""
    port = free_port()
    wsprobe_command = str(Path(sys.executable).parent / "wsprobe")
    with subprocess.Popen(
        [wsprobe_command, "serve", "--port", str(port)], stdout=subprocess.PIPE, text=True
    ) as server:
        assert server.stdout is not None
        server.stdout.readline()
        try:
            with tempfile.TemporaryDirectory() as directory:
                folder = Path(directory)
                healthy = folder / "healthy.lua"
                healthy.write_text(
                    f'return ws.send_recv("ws://127.0.0.1:{port}/delay?ms=500", "ok")'
                )
                busy = []
                for n in range(30):
                    busy.append(folder / f"busy{n}.lua")
                    busy[-1].write_text("while true do end")
                alone: list[float] = []
                crowded: list[float] = []
                for _ in range(rounds):
                    for paths, durations in (([healthy], alone), ([healthy, *busy], crowded)):
                        done = subprocess.run(
                            [
                                wsprobe_command,
                                "run",
                                "--json",
                                "--script-timeout",
                                "5",
                                *map(str, paths),
                            ],
                            capture_output=True,
                            text=True,
                            check=False,
                        )
                        for line in done.stdout.splitlines():
                            if '"name":"healthy.lua"' in line and '"ok":true' in line:
                                durations.append(float(line.split('"duration":')[1].split(",")[0]))
        finally:
            server.terminate()
            server.wait(timeout=10)
            server.stdout.close()
    print(f"\n9. Starvation: a healthy script 0.5 s from its reply ({rounds} rounds)")
    print(f"{'alone':40} {statistics.median(alone):8.3f}s")
    print(
        f"{'next to 30 busy scripts':40} {statistics.median(crowded):8.3f}s  "
        f"(+{statistics.median(crowded) - statistics.median(alone):.3f}s; target +0.5s at most; "
        f"{len(crowded)} of {rounds} succeeded)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, for a smoke run")
    parser.add_argument("--only-agent", action="store_true", help="only the agent's section")
    parser.add_argument(
        "--agent-monitors", type=int, default=1000, help="monitors of the agent's section"
    )
    parser.add_argument(
        "--only",
        choices=["workers", "memory", "allocators", "processes", "connections", "pages", "soak"],
        help="only the supervised-workers parts (7-9 and 6), the waiting scripts' memory "
        "(6, 6a, 6b), the workers' allocator (6c), the process per call (5), the waiting "
        "connection (10), the agent's pages (11), or the agent's soak (12)",
    )
    parser.add_argument(
        "--soak-minutes",
        type=float,
        help="minutes of the agent's soak (default 10; 2 with --quick)",
    )
    parser.add_argument(
        "--pages-monitors", type=int, default=1000, help="monitors of the pages' section"
    )
    parser.add_argument(
        "--baseline-python", help="a Python with the single-process wsprobe, for part 7"
    )
    parser.add_argument(
        "--baseline-src",
        help="another tree's src directory, run by this Python side by side in parts 6, 6a and 6b",
    )
    parser.add_argument(
        "--malloc-conf",
        action="append",
        default=[],
        help="a jemalloc MALLOC_CONF to compare in part 6c besides the default (repeatable)",
    )
    args = parser.parse_args()
    rounds, per_round = (2, 50) if args.quick else (5, 300)
    soak_minutes = args.soak_minutes or (2 if args.quick else 10)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(
        f"wsprobe bench: Python {sys.version.split()[0]}, {os.cpu_count()} cores; "
        f"server: bench/wsecho.c (C, epoll, one thread)"
    )
    port = free_port()
    server = Server([str(build("wsecho")), str(port)])
    try:
        if args.only_agent:
            agent(port, args.agent_monitors, 10, 10 if args.quick else 30)
            return 0
        if args.only == "workers":
            workers(port, 1000 if args.quick else 3000, 3, args.baseline_python)
            supervision_costs(port, 2000, 3)
            starvation(3)
            memory(port, 2000 if args.quick else 10000, args.baseline_src)
            print_targets()
            return 0
        if args.only == "memory":
            lua_states(2000, args.baseline_src)
            after_burst(port, 5000, args.baseline_src)
            memory(port, 2000 if args.quick else 10000, args.baseline_src)
            print_targets()
            return 0
        if args.only == "allocators":
            allocators(port, 2000 if args.quick else 10000, 3000, 3, args.malloc_conf)
            return 0
        if args.only == "processes":
            processes(port, 10 if args.quick else 30)
            return 0
        if args.only == "connections":
            idle_connections(port, 2000)
            return 0
        if args.only == "pages":
            pages.serving(port, args.pages_monitors, 30, target)
            pages.writing(target)
            print_targets()
            return 0
        if args.only == "soak":
            soak.soak(port, soak_minutes, target)
            print_targets()
            return 0
        one_shot(port, rounds, per_round)
        rates = throughput(port, 2000, 200, 3)
        through_lua(port, 2000, 200, 3, rates["wsprobe.send_recv_async"])
        tls_one_shot(rounds, per_round // 2)
        processes(port, 10 if args.quick else 30)
        lua_states(2000, args.baseline_src)
        after_burst(port, 5000, args.baseline_src)
        memory(port, 2000 if args.quick else 10000, args.baseline_src)
        idle_connections(port, 2000)
        agent(port, args.agent_monitors, 10, 10 if args.quick else 30)
        workers(port, 3000, 3, args.baseline_python)
        supervision_costs(port, 2000, 3)
        starvation(3)
        pages.serving(port, args.pages_monitors, 30, target)
        pages.writing(target)
        soak.soak(port, soak_minutes, target)
        print_targets()
    finally:
        server.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return 0


if __name__ == "__main__":
    sys.exit(main())
