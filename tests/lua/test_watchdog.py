"""The supervisor's stall watchdog: a worker whose event loop stopped is replaced, a
worker busy starting thousands of scripts is not.

Both run a real worker process under a :class:`~wsprobe.lua.supervisor.Supervisor` in
this process, with the watchdog's limit lowered so that the cases take a second."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from tests.conftest import worker_pids
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
