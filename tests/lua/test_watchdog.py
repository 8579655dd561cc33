"""The supervisor's watchdogs: a worker whose event loop stopped is replaced, a worker
busy starting thousands of scripts is not; a worker killed for a stuck script takes
down with it no script that would not have overrun anyway, and its other scripts run
again where no older stuck neighbour can take them down a second time.

All run real worker processes under a :class:`~wsprobe.lua.supervisor.Supervisor` in
this process, with the stall limit lowered so that those cases take a second."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import Servers, steps_running, worker_pids
from wsprobe.lua import supervisor as supervision
from wsprobe.lua.eventloop import run_event_loop
from wsprobe.lua.job import Job, RunSettings
from wsprobe.lua.output import ScriptOutcome
from wsprobe.options import make_options

pytestmark = pytest.mark.slow

STALL = 0.5


@pytest.fixture(autouse=True)
def _short_stall(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervision, "STALL", STALL)


def _workers() -> list[int]:
    return [
        pid
        for pid in worker_pids(os.getpid())
        if b"wsprobe.lua.worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


def test_a_burst_of_starts_is_not_taken_for_a_stalled_worker() -> None:
    # Thousands of starts in one frame: each makes a Lua state and runs it, a few
    # hundred microseconds, far more than STALL in all.
    count = 4000

    async def scenario() -> tuple[list[int], list[int], list[ScriptOutcome]]:
        settings = RunSettings(options=make_options(), workers=1, concurrency=count)
        async with supervision.Supervisor(settings) as supervisor:
            before = _workers()
            finished = await asyncio.gather(
                *(
                    supervisor.run(Job(f"s{n}.lua", source=f"return {n}".encode()))
                    for n in range(count)
                )
            )
            after = _workers()
        return before, after, [outcome for outcome, _ in finished]

    before, after, outcomes = run_event_loop(scenario())
    assert after == before
    assert [(o.name, o.ok, o.result, o.rerun) for o in outcomes] == [
        (f"s{n}.lua", True, n, None) for n in range(count)
    ]


def test_a_worker_whose_loop_stopped_is_replaced() -> None:
    async def scenario() -> tuple[int, list[int], ScriptOutcome, ScriptOutcome]:
        settings = RunSettings(options=make_options(), workers=1)
        async with supervision.Supervisor(settings) as supervisor:
            # One script first: the worker's loop has beaten once.
            before, _ = await supervisor.run(Job("before.lua", source=b"return 1"))
            (stopped,) = _workers()
            os.kill(stopped, signal.SIGSTOP)
            after, _ = await supervisor.run(Job("after.lua", source=b"return 2"))
            workers = _workers()
        return stopped, workers, before, after

    stopped, workers, before, after = run_event_loop(scenario())
    assert stopped not in workers
    assert (before.result, before.rerun) == (1, None)
    assert (after.ok, after.result, after.rerun) == (
        True,
        2,
        "its first worker was lost: its event loop stopped responding",
    )


# A step stuck in C, where no Lua hook fires: its record comes at its deadline, and
# the watchdog kills its worker GRACE later.
STUCK = b'return string.find(string.rep("a", 30000), ".-.-.-.-.-b")'


def test_a_rerun_waits_for_a_worker_whose_older_scripts_cannot_take_it_down(
    servers: Servers,
) -> None:
    # Hand-overs go to the least busy worker, the first of equals: first.lua and
    # waiting.lua to one worker, second.lua and pinger.lua to the other. first.lua's
    # worker is killed at 1.5 s; second.lua's at 3 s, while waiting.lua's rerun would
    # still wait for its replies there. pinger.lua's cache calls make the supervisor
    # dispatch right after the first loss, before a fresh worker is up, until the
    # rerun starts.
    waiting = (
        'if cache.get("ran") then cache.put("stop", true, 60) end\n'
        'cache.put("ran", true, 60)\n'
        f'ws.send_recv("{servers.ws}/delay", "a")\n'
        f'return ws.send_recv("{servers.ws}/delay", "b")'
    ).encode()
    pinger = b'local n = 0\nwhile not cache.get("stop") do n = n + 1 end\nreturn "pinged"'

    async def scenario() -> list[ScriptOutcome]:
        settings = RunSettings(options=make_options(), workers=2, script_timeout=30)
        async with supervision.Supervisor(settings) as supervisor:
            finished = await asyncio.gather(
                supervisor.run(Job("first.lua", source=STUCK, script_timeout=1)),
                supervisor.run(Job("second.lua", source=STUCK, script_timeout=2.5)),
                supervisor.run(Job("waiting.lua", source=waiting)),
                supervisor.run(Job("pinger.lua", source=pinger)),
            )
        return [outcome for outcome, _ in finished]

    first, second, rerun, pinger_outcome = run_event_loop(scenario())
    assert (first.error, first.rerun) == ("script exceeded its time limit of 1s", None)
    assert (second.error, second.rerun) == ("script exceeded its time limit of 2.5s", None)
    assert (rerun.ok, rerun.result, rerun.error) == (True, "b", None)
    assert rerun.rerun == "its first worker was lost: a script on it overran its time limit"
    assert (pinger_outcome.ok, pinger_outcome.result) == (True, "pinged")


def test_a_worker_with_a_step_past_its_deadline_takes_no_new_script(servers: Servers) -> None:
    # first.lua has its record at its deadline; its step, stuck in C, keeps its worker
    # (the first of equals, with nothing running) until the watchdog kills it.
    waiting = f'return ws.send_recv("{servers.ws}/delay", "new")'.encode()

    async def scenario() -> ScriptOutcome:
        settings = RunSettings(options=make_options(), workers=2)
        async with supervision.Supervisor(settings) as supervisor:
            await supervisor.run(Job("first.lua", source=STUCK, script_timeout=1))
            (stuck,) = [pid for pid in _workers() if steps_running(pid)]
            # The watchdog, on this loop, looks every 50 ms: let it see the overrun.
            while not any(time.monotonic() > d + 0.2 for _n, d in steps_running(stuck)):
                await asyncio.sleep(0.01)
            new, _ = await supervisor.run(Job("new.lua", source=waiting))
        return new

    new = run_event_loop(scenario())
    assert (new.ok, new.result, new.rerun) == (True, "new", None)
