"""The store's choice: a direct sqlite3 call on the event loop, or a hand-off to a thread.

Times, for the store's own statements on a WAL database in a temporary directory: a
put (BEGIN IMMEDIATE, the quota's sum, the upsert, COMMIT) and a get, called directly
(the event loop is blocked for the whole call) and through a one-thread executor (the loop is free
while SQLite works; the caller waits for the hand-off). Also how long a direct call
would block the loop while another process holds the write lock.

    .venv/bin/python bench/store_calls.py
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# The module's own statements, so that the measure follows the code.
from wsprobe.services.store import _GET, _HELD, _PUT, _SCHEMA

N = 2000


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA busy_timeout = 5000")
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    for statement in _SCHEMA:
        connection.execute(statement)
    return connection


async def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "wsprobe.db"
        connection = _connect(path)
        executor = ThreadPoolExecutor(max_workers=1)
        loop = asyncio.get_running_loop()
        value = '{"a":[1,2,3],"b":"text"}'

        def put(i: int) -> None:
            key = f"m:k{i % 100}"
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(_HELD, ("m", key)).fetchone()
            connection.execute(_PUT, (key, "m", len(key) + len(value), time.time(), value))
            connection.execute("COMMIT")

        def get(i: int) -> None:
            connection.execute(_GET, (f"m:k{i % 100}",)).fetchone()

        for name, function in (("put", put), ("get", get)):
            direct, handed = [], []
            for i in range(N):
                started = time.perf_counter()
                function(i)
                direct.append(time.perf_counter() - started)
                started = time.perf_counter()
                await loop.run_in_executor(executor, function, i)
                handed.append(time.perf_counter() - started)
            print(
                f"{name}: direct {statistics.median(direct) * 1e6:.0f} µs "
                f"(p99 {statistics.quantiles(direct, n=100)[98] * 1e6:.0f}), "
                f"thread hand-off {statistics.median(handed) * 1e6:.0f} µs "
                f"(p99 {statistics.quantiles(handed, n=100)[98] * 1e6:.0f})"
            )

        # Another process holds the write lock for 1 s: a direct put blocks the loop.
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sqlite3, sys, time\n"
                "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
                "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(1)\n"
                "c.execute('COMMIT')",
                str(path),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout is not None
        holder.stdout.readline()
        started = time.perf_counter()
        put(0)
        blocked = time.perf_counter() - started
        print(f"direct put while another process holds the lock: {blocked:.3f} s")
        holder.wait()
        holder.stdout.close()
        executor.shutdown()
        connection.close()


if __name__ == "__main__":
    asyncio.run(main())
