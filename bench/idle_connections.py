"""What one waiting connection costs: N `send_recv_async` calls on one uvloop loop,
each upgraded and waiting for a reply a silent server never sends.

Run in a fresh process per measurement (``python bench/idle_connections.py PORT N
MODE``): ``traced`` counts the Python heap with tracemalloc, ``rss`` the process's
resident memory; each prints bytes per connection, measured from after a warm-up
call to when every connection is upgraded and waiting.
"""

from __future__ import annotations

import asyncio
import gc
import resource
import sys
import tracemalloc
from pathlib import Path

import uvloop

import wsprobe
from wsprobe.protocol.core import ClientCore


def resident_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _waiting() -> int:
    return sum(1 for found in gc.get_objects() if isinstance(found, ClientCore) and found.upgraded)


async def measure(port: int, count: int, traced: bool) -> float:
    url = f"ws://127.0.0.1:{port}/"
    assert await wsprobe.send_recv_async(url, "warm-up") == "warm-up"
    gc.collect()
    if traced:
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0] if traced else resident_bytes()
    calls = [
        asyncio.ensure_future(wsprobe.send_recv_async(url + "silent", "x", timeout=120))
        for _ in range(count)
    ]
    while _waiting() < count:
        await asyncio.sleep(0.2)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0] if traced else resident_bytes()
    for call in calls:
        call.cancel()
    await asyncio.gather(*calls, return_exceptions=True)
    return (after - before) / count


def main() -> int:
    port, count, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        print(f"{runner.run(measure(port, count, mode == 'traced')):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
