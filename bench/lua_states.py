"""What a waiting script's Lua state costs: N scripts started to their first request
(a ``ws.send_recv`` to a silent server, the memory section's script) and compacted, as
a worker with thousands in flight keeps them; no connection is made.

Run in a fresh process (``python bench/lua_states.py N``); prints one JSON object:
Lua memory per state (what Lua allocated, after a full collection), resident memory
per state, and the CPU microseconds of creating a state with its prelude, running
the script to its request, and letting the state go (median of rounds of N/4).
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time

import lupa.lua54 as lupa
from idle_connections import resident_bytes  # bench/idle_connections.py, beside this file

from wsprobe.lua.registry import IN_PLACE
from wsprobe.lua.runtime import LuaScript, ScriptLimits

SOURCE = b'local ok, err = pcall(ws.send_recv, "ws://127.0.0.1:9/silent", "x", {timeout = 20})\n'
SOURCE += b"return err"
LIMITS = ScriptLimits(64 << 20, 10**8, 60.0, "memory", "cpu", "time")
HOST = {operation.name.encode(): operation.handler for operation in IN_PLACE.values()}


def _waiting() -> LuaScript:
    script = LuaScript("wait.lua", SOURCE, limits=LIMITS, environment={}, host=HOST)
    script.start()
    return script


def main(count: int) -> None:
    # lupa counts a state's memory from after it opened the standard libraries:
    # what they took first, measured on a bare state, is added.
    bare = lupa.LuaRuntime(encoding=None, max_memory=1 << 26)
    opened = bare.eval('collectgarbage("count")') * 1024 - bare.get_memory_used()
    for _ in range(50):
        _waiting().close()
    gc.collect()
    before = resident_bytes()
    kept = []
    for _ in range(count):
        script = _waiting()
        script.compact()
        kept.append(script)
    resident = (resident_bytes() - before) / count
    lua = opened + statistics.mean(script.memory_used() for script in kept)
    for script in kept:
        script.close()
    del kept
    rounds = []
    for _ in range(4):
        began = time.process_time()
        for _ in range(count // 4):
            _waiting().close()
        rounds.append((time.process_time() - began) / (count // 4) * 1e6)
    print(json.dumps({"lua": lua, "rss": resident, "create_us": rounds}))


if __name__ == "__main__":
    main(int(sys.argv[1]))
