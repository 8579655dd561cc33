"""The supervisor's watchdogs: a worker whose event loop stopped is replaced, a worker
busy starting thousands of scripts is not; a worker killed for a stuck script takes
down with it no script that would not have overrun anyway, and its other scripts run
again where no stuck neighbour, older or newer, can take them down a second time.

All run real worker processes under a :class:`~wsprobe.lua.supervisor.Supervisor` in
this process; the stall cases lower the stall limit so that they take a second (the
others keep it: a worker whose step is stuck in C, on a loaded machine, may miss
beats for longer than that)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
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


@pytest.fixture
def _short_stall(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervision, "STALL", STALL)


def _workers() -> list[int]:
    return [
        pid
        for pid in worker_pids(os.getpid())
        if b"wsprobe.lua.worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


@pytest.mark.usefixtures("_short_stall")
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


@pytest.mark.usefixtures("_short_stall")
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


def waits_for_replies(servers: Servers, count: int, last: str) -> bytes:
    """A script that waits for ``count`` held replies (about a second each) and
    returns the last one, ``last``."""
    return "\n".join(
        [f'ws.send_recv("{servers.ws}/delay", "{n}")' for n in range(count - 1)]
        + [f'return ws.send_recv("{servers.ws}/delay", "{last}")']
    ).encode()


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


def test_a_script_waiting_does_not_go_to_the_worker_whose_stuck_step_just_had_its_record(
    servers: Servers,
) -> None:
    # One script at a time on one worker: next.lua waits for first.lua's record, which
    # comes at its deadline while its step, stuck in C, holds the worker until the
    # watchdog kills it. next.lua goes to the fresh worker that replaces it, however
    # soon after the deadline the watchdog looks (each round another race).
    waiting = f'return ws.send_recv("{servers.ws}/delay", "next")'.encode()

    async def scenario() -> list[tuple[str | None, object, str | None]]:
        settings = RunSettings(options=make_options(), workers=1, concurrency=1)
        seen = []
        async with supervision.Supervisor(settings) as supervisor:
            for _ in range(3):
                first, (after, _) = await asyncio.gather(
                    supervisor.submit(Job("first.lua", source=STUCK, script_timeout=1)),
                    supervisor.submit(Job("next.lua", source=waiting)),
                )
                seen.append((first[0].error, after.result, after.rerun))
        return seen

    assert (
        run_event_loop(scenario()) == [("script exceeded its time limit of 1s", "next", None)] * 3
    )


def test_a_rerun_is_not_taken_down_by_a_stuck_script_run_again_beside_it(
    servers: Servers,
) -> None:
    # One worker: first.lua's step sticks and takes it down; second.lua, stuck too but
    # far from its deadline then, runs again with waiting.lua on the fresh worker, and
    # takes that one down before waiting.lua's replies have all come.
    waiting = waits_for_replies(servers, 4, "b")

    async def scenario() -> list[ScriptOutcome]:
        settings = RunSettings(options=make_options(), workers=1, script_timeout=30)
        async with supervision.Supervisor(settings) as supervisor:
            first = supervisor.submit(Job("first.lua", source=STUCK, script_timeout=1))
            rerun = supervisor.submit(Job("waiting.lua", source=waiting))
            second = supervisor.submit(Job("second.lua", source=STUCK, script_timeout=3))
            finished = await asyncio.gather(first, rerun, second)
        return [outcome for outcome, _ in finished]

    first, rerun, second = run_event_loop(scenario())
    assert first.error == "script exceeded its time limit of 1s"
    assert second.error == "script exceeded its time limit of 3s"
    assert (rerun.ok, rerun.result, rerun.error) == (True, "b", None)
    assert rerun.rerun == "its first worker was lost: a script on it overran its time limit"


# One worker: first.lua and waiting.lua on it; first.lua's step sticks and takes the
# worker down GRACE after its deadline. late.lua, handed over after that deadline, is
# stuck too, with a shorter time limit than waiting.lua's run again needs: on the fresh
# worker beside the rerun, it would take that worker down too. When workers take 1.5 s
# more to start (as on a loaded machine), waiting.lua's time limit on the fresh worker
# runs from that start, not from its hand-over: late.lua, with a deadline GRACE before
# the one reckoned at the hand-over, would still take it down.
@pytest.mark.parametrize(
    ("start_delay", "replies", "waiting_timeout", "late_timeout"),
    [(0, 2, None, 0.5), (1.5, 3, 4, 1)],
    ids=["started", "starting"],
)
def test_a_rerun_is_not_taken_down_by_a_stuck_script_handed_over_after_it(
    servers: Servers,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    start_delay: float,
    replies: int,
    waiting_timeout: float | None,
    late_timeout: float,
) -> None:
    if start_delay:
        (tmp_path / "sitecustomize.py").write_text(f"import time\ntime.sleep({start_delay})\n")
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), *sys.path]))
    waiting = waits_for_replies(servers, replies, "b")

    async def scenario() -> list[ScriptOutcome]:
        settings = RunSettings(options=make_options(), workers=1, script_timeout=30)
        async with supervision.Supervisor(settings) as supervisor:
            first = supervisor.submit(Job("first.lua", source=STUCK, script_timeout=1))
            rerun = supervisor.submit(
                Job("waiting.lua", source=waiting, script_timeout=waiting_timeout)
            )
            await first
            late = supervisor.submit(Job("late.lua", source=STUCK, script_timeout=late_timeout))
            finished = await asyncio.gather(first, rerun, late)
        return [outcome for outcome, _ in finished]

    first, rerun, late = run_event_loop(scenario())
    assert first.error == "script exceeded its time limit of 1s"
    assert late.error == f"script exceeded its time limit of {late_timeout:g}s"
    assert (rerun.ok, rerun.result, rerun.error) == (True, "b", None)
    assert rerun.rerun == "its first worker was lost: a script on it overran its time limit"


def test_a_script_whose_caller_stopped_waiting_before_its_hand_over_does_not_run(
    servers: Servers,
) -> None:
    # One script at a time: dropped.lua waits behind first.lua; its caller stops
    # waiting (an agent's monitor removed by a reload), and it never starts.
    first = f'return ws.send_recv("{servers.ws}/delay", "first")'.encode()

    async def scenario() -> tuple[ScriptOutcome, ScriptOutcome]:
        settings = RunSettings(options=make_options(), workers=1, concurrency=1)
        async with supervision.Supervisor(settings) as supervisor:
            ahead = supervisor.submit(Job("first.lua", source=first))
            dropped = supervisor.submit(
                Job("dropped.lua", source=b'cache.put("ran", true, 60)\nreturn 1')
            )
            dropped.cancel()
            after = supervisor.submit(Job("after.lua", source=b'return cache.get("ran")'))
            (ahead_outcome, _), (after_outcome, _) = await asyncio.gather(ahead, after)
        return ahead_outcome, after_outcome

    ahead, after = run_event_loop(scenario())
    assert (ahead.ok, ahead.result) == (True, "first")
    assert (after.ok, after.result) == (True, None)


def test_a_rerun_holds_scripts_with_shorter_limits_back_for_a_bounded_time(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One worker: first.lua takes it down, long.lua runs again on the fresh one for
    # about 4 s with a 30 s limit. quick.lua, with a far shorter limit, is held back
    # beside it only RERUN_SHIELD seconds, not until long.lua ends.
    monkeypatch.setattr(supervision, "RERUN_SHIELD", 1.0)
    long = waits_for_replies(servers, 4, "long")

    async def scenario() -> tuple[ScriptOutcome, bool, ScriptOutcome]:
        settings = RunSettings(options=make_options(), workers=1, script_timeout=30)
        async with supervision.Supervisor(settings) as supervisor:
            first = supervisor.submit(Job("first.lua", source=STUCK, script_timeout=1))
            rerun = supervisor.submit(Job("long.lua", source=long))
            await first
            quick, _ = await supervisor.run(
                Job("quick.lua", source=b"return 1", script_timeout=0.2)
            )
            ended_first = not rerun.done()
            long_outcome, _ = await rerun
        return quick, ended_first, long_outcome

    quick, ended_first, long_outcome = run_event_loop(scenario())
    assert (quick.ok, quick.result, quick.rerun) == (True, 1, None)
    assert ended_first
    assert (long_outcome.ok, long_outcome.result) == (True, "long")
    assert long_outcome.rerun == "its first worker was lost: a script on it overran its time limit"


def test_the_scripts_of_a_lost_worker_running_thousands_run_again_at_once() -> None:
    # 8000 scripts wait beside a stuck one that takes their worker down: their reruns
    # all go to the fresh worker in one dispatch, each checked against the others in
    # constant time, and none starts after another has ended (as when the dispatch
    # took longer than GRACE and those handed over last had to wait).
    count = 8000
    sleeper = (
        b'local ended = cache.get("ended")\nsleep(15)\ncache.put("ended", true, 60)\n'
        b"return ended == nil"
    )

    async def scenario() -> list[ScriptOutcome]:
        settings = RunSettings(options=make_options(), workers=1, concurrency=count + 1)
        async with supervision.Supervisor(settings) as supervisor:
            stuck = supervisor.submit(Job("stuck.lua", source=STUCK, script_timeout=1))
            waiting = [supervisor.submit(Job(f"s{n}.lua", source=sleeper)) for n in range(count)]
            finished = await asyncio.gather(stuck, *waiting)
        return [outcome for outcome, _ in finished]

    stuck, *outcomes = run_event_loop(scenario())
    assert stuck.error == "script exceeded its time limit of 1s"
    assert {(o.ok, o.result, o.rerun is not None) for o in outcomes} == {(True, True, True)}
