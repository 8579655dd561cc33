"""aiohttp next to httpx for the Lua `http` module: one GET against a local server.

Both clients keep one session (a pool of keep-alive connections) and make the same
request against the same aiohttp.web server on 127.0.0.1, interleaved call by call
in one run so that machine noise hits them alike. Also timed: a fresh session per
request (a cold connection each time) and importing each library in a fresh
interpreter. Ratios are what to read, not absolute times.

    .venv/bin/python bench/http_clients.py [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping

import aiohttp
import httpx
from aiohttp import web

Call = Callable[[], Awaitable[None]]


async def _hello(_request: web.Request) -> web.Response:
    return web.Response(text="hello")


async def _measure(calls: Mapping[str, Call], rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            await call()
            times[name].append(time.perf_counter() - started)
    return times


async def main(requests: int) -> None:
    app = web.Application()
    app.router.add_get("/", _hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/"

    aio = aiohttp.ClientSession()
    hx = httpx.AsyncClient()

    async def aiohttp_pooled() -> None:
        async with aio.get(url) as response:
            assert await response.text() == "hello"

    async def httpx_pooled() -> None:
        response = await hx.get(url)
        assert response.text == "hello"

    async def aiohttp_cold() -> None:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert await response.text() == "hello"

    async def httpx_cold() -> None:
        async with httpx.AsyncClient() as client:
            response = await client.get(url)
            assert response.text == "hello"

    pooled = {"aiohttp": aiohttp_pooled, "httpx": httpx_pooled}
    cold = {"aiohttp": aiohttp_cold, "httpx": httpx_cold}
    await _measure(pooled, 50)  # warm-up
    for label, calls, rounds in (
        ("pooled session", pooled, requests),
        ("new session", cold, requests // 5),
    ):
        times = await _measure(calls, rounds)
        medians = {name: statistics.median(values) for name, values in times.items()}
        print(f"{label} ({rounds} requests each, median):")
        for name, value in medians.items():
            ratio = value / medians["aiohttp"]
            print(f"  {name:8} {value * 1e6:8.0f} µs  ({ratio:.2f}x aiohttp)")
    await aio.close()
    await hx.aclose()
    await runner.cleanup()

    print("import in a fresh interpreter (median of 5):")
    for module in ("aiohttp", "httpx"):
        spent = []
        for _ in range(5):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
            spent.append(time.perf_counter() - started)
        print(f"  {module:8} {statistics.median(spent) * 1e3:8.1f} ms (with interpreter start)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    asyncio.run(main(parser.parse_args().requests))
