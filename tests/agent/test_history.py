"""The agent's history in a real SQLite file: retention, reopening, a shared database."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from wsprobe.agent.faults import Faults
from wsprobe.agent.history import History
from wsprobe.agent.outcome import Outcome, State


def outcome(at: float, status: State = State.OK, **extra: object) -> Outcome:
    return Outcome(at, status, 0.01, **extra)  # type: ignore[arg-type]


def test_retention_reopening_and_a_shared_database(tmp_path: Path) -> None:
    asyncio.run(_retention_reopening_and_a_shared_database(tmp_path))


async def _retention_reopening_and_a_shared_database(tmp_path: Path) -> None:
    history = History(tmp_path / "state", retention=100, faults=Faults(print))
    await history.open()
    now = time.time()
    history.add("a", outcome(now - 500))
    history.add("a", outcome(now - 50, State.WARNING, value=1.5, error="slow"))
    history.add("b", outcome(now - 10, State.CRITICAL, error="down", status_code=404))
    assert await history.flush()
    assert await history.prune() == 1
    assert [r.time for r in await history.results("a")] == [now - 50]
    # Another module (the scripts' store) keeps its own tables in the same file.
    with sqlite3.connect(history.path) as other:
        other.execute("PRAGMA busy_timeout = 5000")
        other.execute("CREATE TABLE IF NOT EXISTS store (key TEXT PRIMARY KEY, value TEXT)")
        other.execute("INSERT INTO store VALUES ('k', 'v')")
    history.add("a", outcome(now - 5, value="text"))
    await history.close(5)

    reopened = History(tmp_path / "state", retention=100, faults=Faults(print))
    await reopened.open()
    results = await reopened.results("a", since=now - 60)
    assert [(r.status, r.value, r.error) for r in results] == [
        (State.WARNING, 1.5, "slow"),
        (State.OK, "text", None),
    ]
    assert (await reopened.results("a", since=now - 60, limit=1))[0].value == "text"
    (latest,) = await reopened.results("b")
    assert (latest.status, latest.error, latest.status_code) == (State.CRITICAL, "down", 404)
    assert await reopened.results("c") == []
    await reopened.close(5)
    with sqlite3.connect(history.path) as db:
        assert db.execute("SELECT value FROM store").fetchall() == [("v",)]


class Lines(list[str]):
    """A log sink that keeps its lines."""

    def __call__(self, line: str) -> None:
        self.append(line)


def stored(history: History) -> list[tuple[str, float]]:
    with sqlite3.connect(history.path) as db:
        return db.execute("SELECT monitor, time FROM agent_results ORDER BY time").fetchall()


def holding_the_write_lock(history: History) -> sqlite3.Connection:
    holder = sqlite3.connect(history.path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


def test_a_held_lock_keeps_every_result_queued_and_readable(tmp_path: Path) -> None:
    lines = Lines()

    async def scenario() -> None:
        history = History(
            tmp_path, retention=86400, faults=Faults(lines), busy_seconds=0.05, queue_limit=4
        )
        await history.open()
        now = time.time()
        holder = holding_the_write_lock(history)
        for index in range(6):
            history.add("a", outcome(now + index))
        assert not await history.flush()
        assert not await history.flush()
        # Reads go on under the lock, the queued results included.
        assert [r.time for r in await history.results("a")] == [now + i for i in range(4)]
        assert (history.queued, history.dropped) == (4, 2)
        holder.execute("COMMIT")
        holder.close()
        assert await history.flush()
        assert stored(history) == [("a", now + i) for i in range(4)]
        await history.close(5)

    asyncio.run(scenario())
    assert lines == [
        "history: 4 results wait to be written; newer results are lost until the "
        "database takes them",
        f"cannot write history to {tmp_path / 'wsprobe.db'}: database is locked; "
        "4 results wait in memory",
        "history is written again; 2 results were lost meanwhile",
    ]


def test_a_stop_writes_the_backlog_or_says_what_is_lost(tmp_path: Path) -> None:
    lines = Lines()

    async def scenario() -> None:
        history = History(tmp_path, retention=86400, faults=Faults(lines), busy_seconds=0.05)
        await history.open()
        history.start()
        holder = holding_the_write_lock(history)
        history.add("a", outcome(time.time()))
        # Released while the stop waits: written.
        asyncio.get_running_loop().call_later(0.5, holder.execute, "COMMIT")
        await history.close(30)
        assert len(stored(history)) == 1

        again = History(tmp_path, retention=86400, faults=Faults(lines), busy_seconds=0.05)
        await again.open()
        holder.execute("BEGIN EXCLUSIVE")
        again.add("a", outcome(time.time()))
        await again.close(0.3)
        holder.execute("COMMIT")
        holder.close()
        assert len(stored(again)) == 1

    asyncio.run(scenario())
    assert lines[-1] == "history: 1 results could not be written within 0.3s and are lost"


def test_what_a_server_sent_is_stored_whatever_it_is(tmp_path: Path) -> None:
    lines = Lines()

    async def scenario() -> None:
        history = History(tmp_path, retention=86400, faults=Faults(lines))
        await history.open()
        now = time.time()
        history.add("a", outcome(now, State.CRITICAL, status_code=10**20, error="\udcff bad"))
        history.add("a", outcome(now + 1, value=10**30))
        history.add("a", outcome(now + 2, value=10**400))
        # A value nothing expected: that row fails alone, counted.
        history.add("a", outcome(now + 3, value={"not": "storable"}))
        history.add("a", outcome(now + 4))
        assert await history.flush()
        kept = await history.results("a")
        await history.close(5)
        assert [(r.status_code, r.error, r.value) for r in kept] == [
            (None, "\\udcff bad", None),
            (None, None, 1e30),
            (None, None, str(10**400)),
            (None, None, None),
        ]
        assert history.queued == 0

    asyncio.run(scenario())
    assert lines == [
        "internal error in history: ProgrammingError: Error binding parameter 4: "
        "type 'dict' is not supported"
    ]


def test_retention_in_small_batches_and_never_ahead_of_the_monotonic_clock(
    tmp_path: Path,
) -> None:
    day = 86400.0
    wall = [1_000_000.0]
    tick = [50.0]

    async def scenario() -> None:
        history = History(
            tmp_path,
            retention=day,
            faults=Faults(Lines()),
            clock=lambda: wall[0],
            monotonic=lambda: tick[0],
        )
        await history.open()
        start = wall[0]
        old = [outcome(start - 2 * day + i / 1000) for i in range(12_000)]
        for result in old:
            history.add("a", result)
        history.add("a", outcome(start - day / 2))
        history.add("a", outcome(start))
        assert await history.flush()
        assert await history.prune() == 12_000
        # The wall clock steps two days forward; ten seconds really pass.
        wall[0] += 2 * day
        tick[0] += 10
        assert await history.prune() == 0
        assert [t for _, t in stored(history)] == [start - day / 2, start]
        # Real time passes: the half-day-old row goes when it is a day old.
        tick[0] += day / 2
        assert await history.prune() == 1
        await history.close(5)

        # Reopened after the clock stepped while the agent was down: "now" is the
        # newest result, not the clock.
        reopened = History(
            tmp_path,
            retention=day,
            faults=Faults(Lines()),
            clock=lambda: wall[0] + 5 * day,
            monotonic=lambda: tick[0],
        )
        await reopened.open()
        assert await reopened.prune() == 0
        await reopened.close(5)

    asyncio.run(scenario())
