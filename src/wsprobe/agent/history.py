"""Every result, kept in SQLite under the state directory, for a retention period.

The database file is shared with the scripts' ``store`` (its own tables, created by
its own module); this module creates only ``agent_results``. SQLite never runs on
the event loop: writes go to one thread, reads for the API to another (in WAL mode a
reader never waits for a writer, not even another process holding the write lock).

Results wait in a bounded queue (:data:`QUEUE_LIMIT`) and are written once a second,
up to :data:`BATCH` rows per transaction. A batch the database cannot take *now*
(another process holds the lock, the disk is full) stays queued and is tried again
the next second: nothing is lost while the queue has room; past it, new results are
counted (``wsprobe_history_dropped_results_total``) and the loss is told once. A row
the database refuses for what it holds fails alone, as an internal error.

Retention deletes at most :data:`PRUNE_BATCH` rows per transaction, so a writer
waits for one small batch, never for the whole purge. Its notion of "now" may not
run ahead of the monotonic clock: a wall clock stepped forward by days does not
make a day of history look old.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import math
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from ..errors import Error
from ..services.database import Database, is_transient
from .faults import Faults, describe
from .outcome import Outcome, State

__all__ = ["BATCH", "DATABASE_NAME", "PRUNE_BATCH", "QUEUE_LIMIT", "History", "HistoryError"]

DATABASE_NAME = "wsprobe.db"
#: Results held in memory while the database cannot take them (about 16 minutes of
#: a thousand monitors at 10 s).
QUEUE_LIMIT = 100_000
#: Rows written per transaction, and deleted per transaction by retention.
BATCH = 10_000
PRUNE_BATCH = 5_000
#: How long one write waits for another process's lock before it is tried again later.
BUSY_SECONDS = 2.0
WRITE_EVERY = 1.0
PRUNE_EVERY = 60.0

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS agent_results (
    monitor TEXT NOT NULL,
    time REAL NOT NULL,
    status INTEGER NOT NULL,
    value,
    error TEXT,
    duration REAL NOT NULL,
    timings TEXT NOT NULL,
    status_code INTEGER,
    cert_expires REAL
)""",
    "CREATE INDEX IF NOT EXISTS agent_results_by_monitor ON agent_results (monitor, time)",
    "CREATE INDEX IF NOT EXISTS agent_results_by_time ON agent_results (time)",
)
_COLUMNS = "time, status, value, error, duration, timings, status_code, cert_expires"
_INSERT = f"INSERT INTO agent_results (monitor, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_PRUNE = (
    "DELETE FROM agent_results WHERE rowid IN "
    "(SELECT rowid FROM agent_results WHERE time < ? LIMIT ?)"
)


class HistoryError(Error):
    """The state directory or its database cannot be used."""


class History:
    """The results table of ``STATE_DIR/wsprobe.db``; ``retention`` is in seconds.

    :meth:`open` before use; :meth:`write_forever` and :meth:`prune_forever` are the
    background tasks; :meth:`close` writes what is queued within a bound.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        retention: float,
        faults: Faults,
        queue_limit: int = QUEUE_LIMIT,
        busy_seconds: float = BUSY_SECONDS,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.retention = retention
        self.path = state_dir / DATABASE_NAME
        self.dropped = 0
        self._faults = faults
        self._limit = queue_limit
        self._queue: deque[tuple[str, Outcome]] = deque()
        self._writer = Database(
            self.path, busy_seconds=busy_seconds, schema=_SCHEMA, name="wsprobe-history"
        )
        self._reader = Database(
            self.path, busy_seconds=busy_seconds, schema=(), name="wsprobe-history-read"
        )
        self._clock = clock
        self._monotonic = monotonic
        self._trusted = (clock(), monotonic())
        self._failing: str | None = None
        self._dropping = False
        self._closing = asyncio.Event()
        self._writing: asyncio.Task[None] | None = None
        self._pruning: asyncio.Task[None] | None = None

    @property
    def queued(self) -> int:
        """Results waiting to be written."""
        return len(self._queue)

    async def open(self) -> None:
        """Open the database (creating the table), or raise :class:`HistoryError`."""
        try:
            newest = await self._writer.call(
                lambda db: db.execute("SELECT max(time) FROM agent_results").fetchone()[0]
            )
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(f"cannot open history at {self.path}: {_reason(exc)}") from exc
        wall, tick = self._trusted
        # A wall clock ahead of everything stored may have been stepped while the agent
        # was down: retention starts from the newest result, not from the clock.
        if isinstance(newest, float) and math.isfinite(newest):
            self._trusted = (min(wall, newest), tick)

    def start(self) -> None:
        """Start writing once a second and applying the retention once a minute."""
        self._writing = asyncio.create_task(self._write_forever(), name="history")
        self._pruning = asyncio.create_task(self._prune_forever(), name="retention")

    def add(self, monitor: str, outcome: Outcome) -> None:
        """Queue a result for the next write; past :data:`QUEUE_LIMIT`, count it lost."""
        if len(self._queue) < self._limit:
            self._queue.append((monitor, outcome))
            return
        if not self._dropping:
            self._faults.log(
                f"history: {self._limit} results wait to be written; "
                "newer results are lost until the database takes them"
            )
            self._dropping = True
        self.dropped += 1

    async def flush(self) -> bool:
        """Write the queue, :data:`BATCH` rows per transaction; ``False`` when the
        database cannot take them now (they stay queued), said once until it can."""
        while self._queue:
            batch = list(itertools.islice(self._queue, BATCH))
            try:
                await self._writer.call(functools.partial(_insert, rows=batch))
            except Exception as exc:  # sorted below: wait, or fail one row
                if is_transient(exc) or isinstance(exc, OSError):
                    self._failed(exc)
                    return False
                # Something in the batch the database refuses: each row on its own.
                if not await self._rows_alone(batch):
                    return False
            for _ in batch:
                self._queue.popleft()
        self._dropping = False
        if self._failing is not None:
            lost = f"; {self.dropped} results were lost meanwhile" if self.dropped else ""
            self._faults.log(f"history is written again{lost}")
            self._failing = None
        return True

    async def prune(self) -> int:
        """Delete the rows past the retention, a small batch per transaction; how many."""
        cutoff = self._now() - self.retention
        deleted = 0
        while True:
            count = await self._writer.call(
                lambda db: db.execute(_PRUNE, (cutoff, PRUNE_BATCH)).rowcount
            )
            deleted += count
            if count < PRUNE_BATCH:
                return deleted

    async def _write_forever(self) -> None:
        # Stopped by an event, never cancelled: a batch cancelled while its thread commits
        # it would be written again.
        while not self._closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), WRITE_EVERY)
            with self._faults.unit("history"):
                await self.flush()

    async def _prune_forever(self) -> None:
        # The first pass a minute after the start: the start is not slowed by a purge.
        while True:
            await asyncio.sleep(PRUNE_EVERY)
            with self._faults.unit("retention"):
                try:
                    await self.prune()
                except sqlite3.Error as exc:
                    if not is_transient(exc):
                        raise
                    # Locked or full: the rows are deleted on the next pass.

    async def results(
        self, monitor: str, *, since: float = 0.0, limit: int = 1000
    ) -> list[Outcome]:
        """A monitor's results from ``since`` (Unix seconds) on, oldest first, at most
        ``limit`` (the newest ones when there are more); those still queued included."""

        def read(db: sqlite3.Connection) -> list[tuple[object, ...]]:
            return db.execute(
                f"SELECT {_COLUMNS} FROM agent_results WHERE monitor = ? AND time >= ? "
                "ORDER BY time DESC LIMIT ?",
                (monitor, since, limit),
            ).fetchall()

        try:
            rows = await self._reader.call(read)
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(f"cannot read history at {self.path}: {_reason(exc)}") from exc
        # A run's start time names it: a batch committed while this read ran is not
        # shown twice.
        found = {outcome.time: outcome for outcome in map(_outcome, rows)}
        for name, outcome in self._queue:
            if name == monitor and outcome.time >= since:
                found[outcome.time] = outcome
        return [found[at] for at in sorted(found)[-limit:]]

    async def close(self, wait: float) -> None:
        """Write what is queued, trying for at most ``wait`` seconds, and close the
        database; results still queued then are told as lost."""
        deadline = self._monotonic() + wait
        self._closing.set()
        if self._pruning is not None:
            self._pruning.cancel()
        try:
            for task in (self._pruning, self._writing):
                if task is not None:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            while self._queue and self._monotonic() < deadline:
                with self._faults.unit("history"):
                    if await self.flush():
                        break
                await asyncio.sleep(min(WRITE_EVERY, max(0.0, deadline - self._monotonic())))
            if self._queue:
                self._faults.log(
                    f"history: {len(self._queue)} results could not be written "
                    f"within {wait:g}s and are lost"
                )
        finally:
            await self._writer.close()
            await self._reader.close()

    def _now(self) -> float:
        wall, tick = self._trusted
        return min(self._clock(), wall + (self._monotonic() - tick))

    def _failed(self, exc: BaseException) -> None:
        reason = _reason(exc)
        if self._failing != reason:
            self._faults.log(
                f"cannot write history to {self.path}: {reason}; "
                f"{len(self._queue)} results wait in memory"
            )
            self._failing = reason

    async def _rows_alone(self, batch: list[tuple[str, Outcome]]) -> bool:
        # Each row its own transaction: the refused ones fail alone. False: the database
        # stopped taking rows at all (the written ones are then left out of the queue).
        for index, row in enumerate(batch):
            try:
                await self._writer.call(functools.partial(_insert, rows=[row]))
            except Exception as exc:  # one refused row is one failed unit
                if is_transient(exc) or isinstance(exc, OSError):
                    for _ in range(index):
                        self._queue.popleft()
                    self._failed(exc)
                    return False
                self._faults.failed("history", exc)
        return True


def _insert(db: sqlite3.Connection, rows: list[tuple[str, Outcome]]) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany(_INSERT, [_row(monitor, outcome) for monitor, outcome in rows])
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return (exc.strerror or str(exc)).lower()
    return describe(exc) if not isinstance(exc, sqlite3.Error) else str(exc) or type(exc).__name__


def _row(monitor: str, outcome: Outcome) -> tuple[object, ...]:
    return (
        monitor,
        outcome.time,
        int(outcome.status),
        _storable(outcome.value),
        _storable(outcome.error),
        outcome.duration,
        json.dumps(dict(outcome.timings), separators=(",", ":")),
        outcome.status_code if _fits(outcome.status_code) else None,
        outcome.cert_expires,
    )


def _storable(value: float | str | None) -> float | str | None:
    # What a server or a script sent, as SQLite can hold it: an integer past 64 bits
    # as a float, text with lone surrogates escaped.
    if isinstance(value, int) and not _fits(value):
        return float(value) if abs(value) < 2**1023 else str(value)
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return value.encode(errors="backslashreplace").decode()
    return value


def _fits(number: int | None) -> bool:
    return number is not None and -(2**63) <= number < 2**63


def _outcome(row: tuple[object, ...]) -> Outcome:
    time_, status, value, error, duration, timings, status_code, cert_expires = row
    assert isinstance(time_, float)
    assert isinstance(status, int)
    assert isinstance(duration, float)
    assert isinstance(timings, str)
    return Outcome(
        time=time_,
        status=State(status),
        duration=duration,
        value=value if isinstance(value, int | float | str) else None,
        error=error if isinstance(error, str) else None,
        timings=json.loads(timings),
        status_code=status_code if isinstance(status_code, int) else None,
        cert_expires=cert_expires if isinstance(cert_expires, float) else None,
    )
