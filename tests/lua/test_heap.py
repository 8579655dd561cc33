"""A worker gives the memory of a burst of scripts back once the burst is over, and a
steady flow of scripts does not make it trim."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.conftest import worker_pids
from tests.support.agent import wait_for
from wsprobe.lua import heap
from wsprobe.lua.allocator import SWITCH
from wsprobe.lua.eventloop import run_event_loop
from wsprobe.lua.job import Job, RunSettings
from wsprobe.lua.supervisor import Supervisor
from wsprobe.options import make_options


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@pytest.mark.slow
@pytest.mark.parametrize("jemalloc", ["1", "0"], ids=["jemalloc", "system allocator"])
def test_a_worker_returns_the_memory_of_a_burst_once_it_is_over(
    jemalloc: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SWITCH, jemalloc)
    count = 3000
    # Each script holds some memory of its own while it waits.
    source = b'local t = {} for i = 1, 100 do t[i] = string.rep("x", i) .. i end time.sleep(3) return #t'

    async def scenario() -> tuple[int, int]:
        settings = RunSettings(options=make_options(), workers=1, concurrency=count)
        async with Supervisor(settings) as supervisor:
            (worker,) = worker_pids(os.getpid())
            peak = 0

            async def sample() -> None:
                nonlocal peak
                while True:
                    peak = max(peak, _rss(worker))
                    await asyncio.sleep(0.02)

            sampler = asyncio.create_task(sample())
            finished = await asyncio.gather(
                *(supervisor.run(Job(f"s{n}.lua", source=source)) for n in range(count))
            )
            sampler.cancel()
            assert all(outcome.result == 100 for outcome, _ in finished)
            settled = await asyncio.to_thread(
                wait_for, lambda: (rss := _rss(worker)) < peak // 2 and rss, 20, "the trim"
            )
        return peak, settled

    peak, settled = run_event_loop(scenario())
    assert settled < peak // 2


@pytest.mark.parametrize(
    ("events", "trims"),
    [
        # A burst of 2,000 receding: a trim once 1,000 ended (half are left), and
        # one once the other 1,000 ended.
        ("s" * 2000 + "e" * 2000, 2),
        # Fewer than TRIM_AFTER ended and some still in flight: nothing worth a trim.
        ("s" * 2000 + "e" * 999, 0),
        # A steady flow of 100 in flight, 10,000 through: never half as many.
        ("s" * 100 + "se" * 10_000, 0),
        # Two bursts of 3,000: a trim at 1,500 left, at 500, and once idle, each time.
        ("s" * 3000 + "e" * 3000 + "s" * 3000 + "e" * 3000, 6),
        # One script at a time: a trim once idle with a tenth of TRIM_AFTER ended.
        ("se" * 250, 2),
    ],
)
def test_trims_only_when_a_burst_has_receded(events: str, trims: int) -> None:
    calls: list[int] = []

    def trim(pad: int) -> int:
        calls.append(pad)
        return 1

    memory = heap.Heap(trim=trim)
    for event in events:
        if event == "s":
            memory.started()
        else:
            memory.ended()
            wait_for(lambda: not memory.trimming, 10, "the trim's thread")
    assert calls == [0] * trims
