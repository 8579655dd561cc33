"""Every result, kept in SQLite under the state directory, for a retention period.

The database file is shared with the scripts' ``store`` (its own tables, created by
its own module); this module creates only ``agent_results``. Writes are buffered
and committed in one transaction by :meth:`History.flush`, which the service calls
every second: a thousand monitors write about a hundred rows a second.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from ..errors import Error
from .outcome import Outcome, State
from .uptime import Incident, Rollups, Window

__all__ = ["DATABASE_NAME", "History", "HistoryError", "create_tables", "insert_results"]

DATABASE_NAME = "wsprobe.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_results (
    monitor TEXT NOT NULL,
    time REAL NOT NULL,
    status INTEGER NOT NULL,
    value,
    error TEXT,
    duration REAL NOT NULL,
    timings TEXT NOT NULL,
    status_code INTEGER,
    cert_expires REAL
);
CREATE INDEX IF NOT EXISTS agent_results_by_monitor ON agent_results (monitor, time);
CREATE INDEX IF NOT EXISTS agent_results_by_time ON agent_results (time);
"""
_PRUNE_EVERY = 60.0
_COLUMNS = "time, status, value, error, duration, timings, status_code, cert_expires"


class HistoryError(Error):
    """The state directory or its database cannot be used."""


class History:
    """The results table of ``STATE_DIR/wsprobe.db``.

    ``retention`` is in seconds; :meth:`flush` deletes older rows.
    """

    def __init__(self, state_dir: Path, *, retention: float) -> None:
        self.retention = retention
        self.path = state_dir / DATABASE_NAME
        self._pending: list[tuple[str, Outcome]] = []
        self._pruned = 0.0
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            # The event loop's thread is the only user; the store opens its own connection.
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA busy_timeout = 5000")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            create_tables(self._db)
            self._rollups = Rollups(self._db)
            now = time.time()
            self._rollups.load(now)
            # The first reading of every monitor's windows scans 30 days of hours: done
            # here, not on the first request.
            self._rollups.all_windows(now)
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(f"cannot open history at {self.path}: {exc}") from exc

    def add(self, monitor: str, outcome: Outcome) -> None:
        """Queue a result; it is written by the next :meth:`flush`."""
        self._pending.append((monitor, outcome))

    def flush(self, now: float | None = None) -> None:
        """Write queued results in one transaction; at most once a minute, also drop
        rows past the retention."""
        now = time.time() if now is None else now
        prune = now - self._pruned >= _PRUNE_EVERY
        if not self._pending and not prune:
            return
        pending, self._pending = self._pending, []
        try:
            with self._transaction():
                insert_results(self._db, pending)
                self._rollups.record(pending, now)
                if prune:
                    self._db.execute(
                        "DELETE FROM agent_results WHERE time < ?", (now - self.retention,)
                    )
                    self._rollups.prune(now)
        except sqlite3.Error as exc:
            # The roll-ups counted what was not written: read again from what was.
            self._rollups.load(now)
            raise HistoryError(f"cannot write history to {self.path}: {exc}") from exc
        if prune:
            self._pruned = now

    def results(self, monitor: str, *, since: float = 0.0, limit: int = 1000) -> list[Outcome]:
        """A monitor's results from ``since`` (Unix seconds) on, oldest first, at most ``limit``
        (the newest ones when there are more)."""
        self.flush()
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM agent_results WHERE monitor = ? AND time >= ? "
            "ORDER BY time DESC LIMIT ?",
            (monitor, since, limit),
        ).fetchall()
        return [_outcome(row) for row in reversed(rows)]

    async def uptimes(self) -> dict[str, dict[str, Window]]:
        """Every monitor's uptime windows (those with runs in the last 31 days)."""
        self.flush()
        return self._rollups.all_windows(time.time())

    async def windows(self, monitor: str) -> dict[str, Window]:
        """``monitor``'s uptime windows."""
        self.flush()
        return self._rollups.windows(monitor, time.time())

    async def incidents(self, monitor: str, limit: int) -> list[Incident]:
        """``monitor``'s incidents, newest first."""
        self.flush()
        return self._rollups.incidents(monitor, limit=limit)

    def close(self) -> None:
        """Write what is queued and the roll-ups, and close the database."""
        try:
            self.flush()
            with self._transaction():
                self._rollups.checkpoint(time.time())
        finally:
            self._db.close()

    def _transaction(self) -> sqlite3.Connection:
        self._db.execute("BEGIN IMMEDIATE")
        return self._db


def create_tables(db: sqlite3.Connection) -> None:
    """The history's table and the roll-ups' (idempotent; outside a transaction)."""
    db.executescript(_SCHEMA)
    Rollups.create(db)


def insert_results(db: sqlite3.Connection, results: list[tuple[str, Outcome]]) -> None:
    """Insert ``(monitor, outcome)`` pairs, inside the caller's transaction."""
    db.executemany(
        f"INSERT INTO agent_results (monitor, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [_row(monitor, outcome) for monitor, outcome in results],
    )


def _row(monitor: str, outcome: Outcome) -> tuple[object, ...]:
    return (
        monitor,
        outcome.time,
        int(outcome.status),
        outcome.value,
        outcome.error,
        outcome.duration,
        json.dumps(dict(outcome.timings), separators=(",", ":")),
        outcome.status_code,
        outcome.cert_expires,
    )


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
