"""Uptime and incidents, kept up to date as results are written, in the history's database.

Counts per monitor per minute and per hour (runs, runs that were up, latency sum and
maximum) answer "how reliable over 1h, 24h, 7d, 30d" by reading at most 61 minute rows and
721 hour rows, whatever the rate of runs; they are kept for 2 hours and 31 days, apart from
the history's own retention, so a shorter retention does not shorten the uptime.

An incident is a period the monitor was not OK: it opens with the first result that is not
OK and closes with the next OK result (``end`` is that result's time); it keeps its worst
state (critical is worse than unknown, which is worse than a warning), its first error and
its count of runs. A warning is not an incident for the uptime: it counts as up, as
``probe_success`` does.

:class:`Rollups` never begins or commits a transaction: :meth:`Rollups.record` runs inside
the history writer's, on its connection, so a result and its roll-ups are written together.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .outcome import Outcome, State

__all__ = ["INCIDENTS_PER_MONITOR", "WINDOWS", "Incident", "Rollups", "Window"]

#: The uptime windows, by name, in seconds.
WINDOWS: Mapping[str, int] = {"1h": 3600, "24h": 86_400, "7d": 7 * 86_400, "30d": 30 * 86_400}
#: Closed incidents kept per monitor (the newest); older ones are dropped by :meth:`Rollups.prune`.
INCIDENTS_PER_MONITOR = 1000

_MINUTE = 60
_HOUR = 3600
_KEEP_MINUTES = 2 * _HOUR
_KEEP_HOURS = 31 * 86_400
_KEEP_INCIDENTS = 90 * 86_400
# How bad a state is, for an incident's worst state.
_SEVERITY = {State.OK: 0, State.WARNING: 1, State.UNKNOWN: 2, State.CRITICAL: 3}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_uptime_minutes (
    monitor TEXT NOT NULL,
    start INTEGER NOT NULL,
    runs INTEGER NOT NULL,
    up INTEGER NOT NULL,
    latency_sum REAL NOT NULL,
    latency_max REAL NOT NULL,
    PRIMARY KEY (monitor, start)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agent_uptime_hours (
    monitor TEXT NOT NULL,
    start INTEGER NOT NULL,
    runs INTEGER NOT NULL,
    up INTEGER NOT NULL,
    latency_sum REAL NOT NULL,
    latency_max REAL NOT NULL,
    PRIMARY KEY (monitor, start)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agent_incidents (
    id INTEGER PRIMARY KEY,
    monitor TEXT NOT NULL,
    start REAL NOT NULL,
    end REAL,
    state INTEGER NOT NULL,
    error TEXT,
    runs INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS agent_incidents_by_monitor ON agent_incidents (monitor, start);
CREATE INDEX IF NOT EXISTS agent_incidents_open ON agent_incidents (monitor) WHERE end IS NULL;
"""
_TABLES = {_MINUTE: "agent_uptime_minutes", _HOUR: "agent_uptime_hours"}
# runs, up, latency_sum, latency_max: a bucket's row, or a sum of them.
_Row = tuple[int, int, float, float]


@dataclass(frozen=True, slots=True)
class Window:
    """What the runs of one window add up to; ``uptime`` and ``latency`` are ``None``
    without runs."""

    runs: int = 0
    up: int = 0
    latency_sum: float = 0.0
    latency_max: float = 0.0

    @property
    def uptime(self) -> float | None:
        """The share of runs that were up (OK or warning), 0 to 1."""
        return self.up / self.runs if self.runs else None

    @property
    def latency(self) -> float | None:
        """The mean duration of the runs, in seconds."""
        return self.latency_sum / self.runs if self.runs else None


@dataclass(frozen=True, slots=True)
class Incident:
    """A period a monitor was not OK; ``end`` is ``None`` while it lasts."""

    start: float
    end: float | None
    state: State
    error: str | None
    runs: int

    def as_json(self) -> dict[str, object]:
        """The API's shape."""
        return {
            "start": round(self.start, 6),
            "end": None if self.end is None else round(self.end, 6),
            "state": self.state.name.lower(),
            "error": self.error,
            "runs": self.runs,
        }


@dataclass(slots=True)
class _Bucket:
    runs: int = 0
    up: int = 0
    latency_sum: float = 0.0
    latency_max: float = 0.0

    def add(self, outcome: Outcome) -> None:
        self.runs += 1
        self.up += outcome.success
        self.latency_sum += outcome.duration
        self.latency_max = max(self.latency_max, outcome.duration)


@dataclass(slots=True)
class _Open:
    id: int
    state: State
    runs: int


class Rollups:
    """The roll-up tables of the history's database, on the history writer's connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        # Hour rows are read for every monitor at once by :meth:`all_windows`; the sums of
        # the hours that are over change only when a late result lands in one.
        self._closed: tuple[int, dict[str, dict[str, _Bucket]]] | None = None

    @staticmethod
    def create(db: sqlite3.Connection) -> None:
        """Create the tables (idempotent); outside a transaction, like the history's schema."""
        db.executescript(_SCHEMA)

    def record(self, results: Iterable[tuple[str, Outcome]]) -> None:
        """Add results to the roll-ups and the incidents, inside the caller's transaction.

        A monitor's results must come in the order they started (they do: a monitor never
        runs twice at once); the results of different monitors may interleave.
        """
        by_monitor: dict[str, list[Outcome]] = {}
        buckets: dict[tuple[int, str, int], _Bucket] = {}
        for monitor, outcome in results:
            by_monitor.setdefault(monitor, []).append(outcome)
            for size in _TABLES:
                start = int(outcome.time // size) * size
                buckets.setdefault((size, monitor, start), _Bucket()).add(outcome)
        if not by_monitor:
            return
        for size, table in _TABLES.items():
            rows = [
                (monitor, start, b.runs, b.up, b.latency_sum, b.latency_max)
                for (bucket_size, monitor, start), b in buckets.items()
                if bucket_size == size
            ]
            self._db.executemany(
                f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (monitor, start) DO UPDATE SET runs = runs + excluded.runs, "
                "up = up + excluded.up, latency_sum = latency_sum + excluded.latency_sum, "
                "latency_max = max(latency_max, excluded.latency_max)",
                rows,
            )
        if self._closed is not None:
            current = self._closed[0]
            if any(size == _HOUR and start < current for size, _, start in buckets):
                self._closed = None
        self._record_incidents(by_monitor)

    def _record_incidents(self, by_monitor: Mapping[str, list[Outcome]]) -> None:
        # Open incidents are few: one query for all of them.
        open_ = {
            monitor: _Open(incident_id, State(state), runs)
            for incident_id, monitor, state, runs in self._db.execute(
                "SELECT id, monitor, state, runs FROM agent_incidents WHERE end IS NULL"
            )
        }
        for monitor, outcomes in by_monitor.items():
            current = open_.get(monitor)
            for outcome in outcomes:
                if outcome.status == State.OK:
                    if current is not None:
                        self._db.execute(
                            "UPDATE agent_incidents SET end = ?, state = ?, runs = ? WHERE id = ?",
                            (outcome.time, int(current.state), current.runs, current.id),
                        )
                        current = None
                elif current is None:
                    cursor = self._db.execute(
                        "INSERT INTO agent_incidents (monitor, start, end, state, error, runs) "
                        "VALUES (?, ?, NULL, ?, ?, 1)",
                        (monitor, outcome.time, int(outcome.status), outcome.error),
                    )
                    assert cursor.lastrowid is not None
                    current = _Open(cursor.lastrowid, outcome.status, 1)
                else:
                    current.runs += 1
                    if _SEVERITY[outcome.status] > _SEVERITY[current.state]:
                        current.state = outcome.status
            if current is not None:
                self._db.execute(
                    "UPDATE agent_incidents SET state = ?, runs = ? WHERE id = ?",
                    (int(current.state), current.runs, current.id),
                )

    def windows(self, monitor: str, now: float) -> dict[str, Window]:
        """``monitor``'s runs over each of :data:`WINDOWS` up to ``now``.

        The 1h window counts whole minutes, the others whole hours: a window runs from the
        beginning of the minute (hour) that holds ``now`` less its length to the end of the
        minute (hour) that holds ``now`` (so "24h" is 24 to 25 hours).
        """
        shown = {"1h": self._sum_minutes(monitor, now)}
        hours: list[tuple[int, _Row]] = [
            (start, (runs, up, latency_sum, latency_max))
            for start, runs, up, latency_sum, latency_max in self._db.execute(
                "SELECT start, runs, up, latency_sum, latency_max FROM agent_uptime_hours "
                "WHERE monitor = ? AND start BETWEEN ? AND ?",
                (monitor, _hour(now - WINDOWS["30d"]), now),
            )
        ]
        for name, seconds in WINDOWS.items():
            if name != "1h":
                since = _hour(now - seconds)
                shown[name] = _window(row for start, row in hours if start >= since)
        return shown

    def all_windows(self, now: float) -> dict[str, dict[str, Window]]:
        """:meth:`windows` of every monitor that has runs in the last 30 days."""
        current = _hour(now)
        if self._closed is None or self._closed[0] != current:
            self._closed = (current, self._closed_hours(current))
        closed = self._closed[1]
        live = {
            monitor: (runs, up, latency_sum, latency_max)
            for monitor, runs, up, latency_sum, latency_max in self._db.execute(
                "SELECT monitor, runs, up, latency_sum, latency_max "
                "FROM agent_uptime_hours WHERE start = ?",
                (current,),
            )
        }
        minutes: dict[str, list[_Row]] = {}
        for monitor, runs, up, latency_sum, latency_max in self._db.execute(
            "SELECT monitor, runs, up, latency_sum, latency_max FROM agent_uptime_minutes "
            "WHERE start BETWEEN ? AND ?",
            (_minute(now - WINDOWS["1h"]), now),
        ):
            minutes.setdefault(monitor, []).append((runs, up, latency_sum, latency_max))
        shown: dict[str, dict[str, Window]] = {}
        for monitor in closed.keys() | live.keys() | minutes.keys():
            windows = {"1h": _window(minutes.get(monitor, []))}
            this_hour = live.get(monitor)
            for name in WINDOWS:
                if name == "1h":
                    continue
                bucket = closed.get(monitor, {}).get(name, _Bucket())
                parts = [(bucket.runs, bucket.up, bucket.latency_sum, bucket.latency_max)]
                windows[name] = _window([*parts, *([this_hour] if this_hour else [])])
            shown[monitor] = windows
        return shown

    def uptime(self, monitor: str, now: float) -> dict[str, float | None]:
        """The share of ``monitor``'s runs that were up, per window (``None``: no runs)."""
        return {name: window.uptime for name, window in self.windows(monitor, now).items()}

    def incidents(self, monitor: str, *, limit: int = 100) -> list[Incident]:
        """``monitor``'s incidents, newest first, at most ``limit``."""
        rows = self._db.execute(
            "SELECT start, end, state, error, runs FROM agent_incidents WHERE monitor = ? "
            "ORDER BY start DESC LIMIT ?",
            (monitor, limit),
        ).fetchall()
        return [
            Incident(start, end, State(state), error, runs)
            for start, end, state, error, runs in rows
        ]

    def prune(self, now: float) -> None:
        """Drop roll-ups too old for any window and old or surplus closed incidents, inside
        the caller's transaction."""
        self._db.execute(
            "DELETE FROM agent_uptime_minutes WHERE start < ?", (_minute(now - _KEEP_MINUTES),)
        )
        self._db.execute(
            "DELETE FROM agent_uptime_hours WHERE start < ?", (_hour(now - _KEEP_HOURS),)
        )
        self._db.execute("DELETE FROM agent_incidents WHERE end < ?", (now - _KEEP_INCIDENTS,))
        self._db.execute(
            "DELETE FROM agent_incidents WHERE id IN (SELECT id FROM (SELECT id, row_number() "
            "OVER (PARTITION BY monitor ORDER BY start DESC) AS n FROM agent_incidents "
            "WHERE end IS NOT NULL) WHERE n > ?)",
            (INCIDENTS_PER_MONITOR,),
        )

    def _sum_minutes(self, monitor: str, now: float) -> Window:
        return _window(
            self._db.execute(
                "SELECT runs, up, latency_sum, latency_max FROM agent_uptime_minutes "
                "WHERE monitor = ? AND start BETWEEN ? AND ?",
                (monitor, _minute(now - WINDOWS["1h"]), now),
            )
        )

    def _closed_hours(self, current: int) -> dict[str, dict[str, _Bucket]]:
        """Per monitor and window, the sums of the hours before ``current``."""
        sums: dict[str, dict[str, _Bucket]] = {}
        starts = {name: _hour(current - seconds) for name, seconds in WINDOWS.items()}
        for monitor, start, runs, up, latency_sum, latency_max in self._db.execute(
            "SELECT monitor, start, runs, up, latency_sum, latency_max FROM agent_uptime_hours "
            "WHERE start >= ? AND start < ?",
            (starts["30d"], current),
        ):
            windows = sums.setdefault(monitor, {})
            for name, since in starts.items():
                if name != "1h" and start >= since:
                    bucket = windows.setdefault(name, _Bucket())
                    bucket.runs += runs
                    bucket.up += up
                    bucket.latency_sum += latency_sum
                    bucket.latency_max = max(bucket.latency_max, latency_max)
        return sums


def _window(rows: Iterable[_Row]) -> Window:
    runs = up = 0
    latency_sum = latency_max = 0.0
    for row_runs, row_up, row_sum, row_max in rows:
        runs += int(row_runs)
        up += int(row_up)
        latency_sum += float(row_sum)
        latency_max = max(latency_max, float(row_max))
    return Window(runs, up, latency_sum, latency_max)


def _minute(moment: float) -> int:
    return int(moment // _MINUTE) * _MINUTE


def _hour(moment: float) -> int:
    return int(moment // _HOUR) * _HOUR
