"""What a worker keeps after a burst: N scripts, each waiting 10 s on a silent server,
all started at once on one supervised worker; then the worker's resident memory at
its peak, and once every script has ended and the worker has had 3 s to settle.

Run in a fresh process (``python bench/after_burst.py PORT N``); prints one JSON
object: ``peak`` and ``after`` in bytes, ``waited``: the scripts that timed out as
expected.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from wsprobe.lua.eventloop import run_event_loop
from wsprobe.lua.job import Job, RunSettings
from wsprobe.lua.supervisor import Supervisor
from wsprobe.options import make_options


async def burst(port: int, count: int) -> dict[str, int]:
    source = (
        f'local ok, err = pcall(ws.send_recv, "ws://127.0.0.1:{port}/silent", "x", '
        "{timeout = 10})\nreturn err"
    ).encode()
    settings = RunSettings(options=make_options(), workers=1, concurrency=count)
    async with Supervisor(settings) as supervisor:
        loop = asyncio.get_running_loop()
        (worker,) = _children()
        peak = 0

        async def sample() -> None:
            nonlocal peak
            while True:
                peak = max(peak, await loop.run_in_executor(None, resident_bytes, worker))
                await asyncio.sleep(0.1)

        sampler = asyncio.create_task(sample())
        finished = await asyncio.gather(
            *(supervisor.run(Job(f"s{n}.lua", source=source)) for n in range(count))
        )
        sampler.cancel()
        await asyncio.sleep(3)
        after = resident_bytes(worker)
    waited = sum(outcome.result == "no response from web socket" for outcome, _ in finished)
    return {"peak": peak, "after": after, "waited": waited}


def _children() -> list[int]:
    pid = os.getpid()
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


if __name__ == "__main__":
    print(json.dumps(run_event_loop(burst(int(sys.argv[1]), int(sys.argv[2])))))
