"""Uptime and incidents, kept up to date as results are written, in the history's database.

Per monitor, counts per hour (runs, runs that were up, the sum of their durations) answer
"how reliable over 24h, 7d, 30d" from at most 721 rows, whatever the rate of runs, and
counts per minute of the last hour, kept in memory, answer "over 1h". The hour counts are
kept for 31 days, apart from the history's own retention.

Writing a result must stay cheap, so :meth:`Rollups.record` only adds to memory; every
:data:`CHECKPOINT_EVERY` seconds it writes what changed (hour counts, incidents) together
with a mark: the last row of ``agent_results`` those counts include. On start,
:meth:`Rollups.load` replays the results after the mark (and the last hour's, for the
minutes), so a crash loses nothing the history kept.

For every monitor at once (:meth:`Rollups.all_windows`), the sums of the written hours are
kept in memory and slid along as time passes (one hour in, one out, per window).

An incident is a period the monitor was not OK: it opens with the first result that is not
OK and closes with the next OK result (``end`` is that result's time); it keeps its worst
state (critical is worse than unknown, which is worse than a warning), its first error and
its count of runs. A warning still counts as up for the uptime, as for ``probe_success``.

:class:`Rollups` never begins or commits a transaction: :meth:`Rollups.record` runs inside
the history writer's, on its connection, after the results are inserted; when that
transaction fails, the writer calls :meth:`Rollups.load` again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from .outcome import Outcome, State

__all__ = ["CHECKPOINT_EVERY", "INCIDENTS_PER_MONITOR", "WINDOWS", "Incident", "Rollups", "Window"]

#: The uptime windows, by name, in seconds.
WINDOWS: Mapping[str, int] = {"1h": 3600, "24h": 86_400, "7d": 7 * 86_400, "30d": 30 * 86_400}
#: Closed incidents kept per monitor (the newest); older ones are dropped by :meth:`Rollups.prune`.
INCIDENTS_PER_MONITOR = 1000
#: Seconds between two writes of the roll-ups.
CHECKPOINT_EVERY = 300.0

_K = TypeVar("_K")
_MINUTE = 60
_HOUR = 3600
_HOUR_WINDOWS = {name: seconds for name, seconds in WINDOWS.items() if seconds > _HOUR}
_KEEP_HOURS = 31 * 86_400
_KEEP_INCIDENTS = 90 * 86_400
# Hours a cached sum is slid over, one query each; past that it is read again whole.
_SLIDE_AT_MOST = 5
# Minutes kept in memory (past the 1h window, for results that come late).
_MINUTES_KEPT = 120
# How bad a state is, for an incident's worst state.
_SEVERITY = {State.OK: 0, State.WARNING: 1, State.UNKNOWN: 2, State.CRITICAL: 3}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_uptime_hours (
    monitor TEXT NOT NULL,
    start INTEGER NOT NULL,
    runs INTEGER NOT NULL,
    up INTEGER NOT NULL,
    latency_sum REAL NOT NULL,
    PRIMARY KEY (monitor, start)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS agent_uptime_hours_by_start ON agent_uptime_hours (start);
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
CREATE TABLE IF NOT EXISTS agent_uptime_mark (
    only INTEGER PRIMARY KEY CHECK (only = 0),
    result INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Window:
    """What the runs of one window add up to; ``uptime`` and ``latency`` are ``None``
    without runs."""

    runs: int = 0
    up: int = 0
    latency_sum: float = 0.0

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

    def add(self, runs: int, up: int, latency_sum: float, sign: int = 1) -> None:
        self.runs += sign * runs
        self.up += sign * up
        self.latency_sum += sign * latency_sum

    def window(self) -> Window:
        return Window(self.runs, self.up, self.latency_sum)


@dataclass(slots=True)
class _Open:
    """An incident in memory: the open one, or one closed since the last checkpoint."""

    id: int
    monitor: str
    start: float
    state: State
    error: str | None
    runs: int
    end: float | None = None

    def incident(self) -> Incident:
        return Incident(self.start, self.end, self.state, self.error, self.runs)


class _Sliding:
    """For every monitor, the sums of the written hours in each window of ``now``'s hour."""

    def __init__(self) -> None:
        self.current: int | None = None
        self.sums: dict[str, dict[str, _Bucket]] = {}

    def move_to(self, db: sqlite3.Connection, current: int) -> None:
        steps = None if self.current is None else (current - self.current) // _HOUR
        if steps is None or not 0 <= steps <= _SLIDE_AT_MOST:
            self._read(db, current)
            return
        while self.current is not None and self.current < current:
            self.current += _HOUR
            # The hour that leaves each window (the hours that enter are counted as written).
            for name, seconds in _HOUR_WINDOWS.items():
                for monitor, runs, up, latency_sum in db.execute(
                    "SELECT monitor, runs, up, latency_sum FROM agent_uptime_hours "
                    "WHERE start = ?",
                    (self.current - seconds - _HOUR,),
                ):
                    self._sum(monitor, name).add(runs, up, latency_sum, -1)

    def written(self, monitor: str, start: int, bucket: _Bucket) -> None:
        if self.current is None:
            return
        for name, seconds in _HOUR_WINDOWS.items():
            if start >= self.current - seconds:
                self._sum(monitor, name).add(bucket.runs, bucket.up, bucket.latency_sum)

    def _sum(self, monitor: str, name: str) -> _Bucket:
        return self.sums.setdefault(monitor, {}).setdefault(name, _Bucket())

    def _read(self, db: sqlite3.Connection, current: int) -> None:
        columns = ", ".join(
            f"sum(runs) FILTER (WHERE start >= {current - seconds}), "
            f"sum(up) FILTER (WHERE start >= {current - seconds}), "
            f"sum(latency_sum) FILTER (WHERE start >= {current - seconds})"
            for seconds in _HOUR_WINDOWS.values()
        )
        self.sums = {}
        # "+start": one pass in key order, not a lookup per row through the start index.
        for monitor, *values in db.execute(
            f"SELECT monitor, {columns} FROM agent_uptime_hours WHERE +start >= ? "
            "GROUP BY monitor",
            (current - max(_HOUR_WINDOWS.values()),),
        ):
            self.sums[monitor] = {
                name: _Bucket(values[3 * i] or 0, values[3 * i + 1] or 0, values[3 * i + 2] or 0.0)
                for i, name in enumerate(_HOUR_WINDOWS)
            }
        self.current = current


class _LastHour:
    """The minutes of the last two hours in memory, and for every monitor the sums of the
    minutes in the 1h window of the minute ``current`` (the 61 minutes up to it), slid
    along as time passes."""

    def __init__(self) -> None:
        self.minutes: dict[int, dict[str, _Bucket]] = {}
        self.current: int | None = None
        self.sums: dict[str, _Bucket] = {}

    def add(self, monitor: str, minute: int, up: int, duration: float) -> None:
        monitors = self.minutes.get(minute)
        if monitors is None:
            monitors = self.minutes[minute] = {}
            newest = max(self.minutes)
            if len(self.minutes) > 2 * _MINUTES_KEPT:
                for old in [m for m in self.minutes if m < newest - _MINUTES_KEPT * _MINUTE]:
                    del self.minutes[old]
        _count(monitors, monitor, up, duration)
        if self.current is not None and 0 <= self.current - minute <= WINDOWS["1h"]:
            _count(self.sums, monitor, up, duration)

    def of(self, monitor: str, now: float) -> Window:
        current = _minute(now)
        sums = _Bucket()
        for minute in range(current - WINDOWS["1h"], current + _MINUTE, _MINUTE):
            bucket = self.minutes.get(minute, {}).get(monitor)
            if bucket is not None:
                sums.add(bucket.runs, bucket.up, bucket.latency_sum)
        return sums.window()

    def all(self, now: float) -> dict[str, _Bucket]:
        current = _minute(now)
        previous = self.current
        if previous is None or not 0 <= current - previous <= _SLIDE_AT_MOST * _MINUTE:
            self.sums = {}
            for minute, monitors in self.minutes.items():
                if 0 <= current - minute <= WINDOWS["1h"]:
                    self._add_all(monitors, 1)
        else:
            # One minute enters the window, the oldest one leaves, for each minute passed.
            for minute in range(previous + _MINUTE, current + _MINUTE, _MINUTE):
                self._add_all(self.minutes.get(minute, {}), 1)
                self._add_all(self.minutes.get(minute - WINDOWS["1h"] - _MINUTE, {}), -1)
        self.current = current
        return self.sums

    def _add_all(self, monitors: Mapping[str, _Bucket], sign: int) -> None:
        for monitor, bucket in monitors.items():
            sums = self.sums.get(monitor)
            if sums is None:
                sums = self.sums[monitor] = _Bucket()
            sums.add(bucket.runs, bucket.up, bucket.latency_sum, sign)


class Rollups:
    """The roll-ups of the history's database, on the history writer's connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._reset()

    def _reset(self) -> None:
        self._last_hour = _LastHour()
        self._hours: dict[tuple[str, int], _Bucket] = {}  # not written yet
        self._incidents: dict[str, list[_Open]] = {}  # changed since the last checkpoint
        self._open: dict[str, _Open] = {}
        self._next_id = 1
        self._checkpoint_at = 0.0
        self._sliding = _Sliding()

    @staticmethod
    def create(db: sqlite3.Connection) -> None:
        """Create the tables (idempotent); outside a transaction, like the history's schema."""
        db.executescript(_SCHEMA)

    def load(self, now: float) -> None:
        """Read what was written and replay the results after it (and the last hour's, for
        the minutes) from ``agent_results``."""
        self._reset()
        self._checkpoint_at = now
        for row in self._db.execute(
            "SELECT id, monitor, start, state, error, runs FROM agent_incidents WHERE end IS NULL"
        ):
            incident_id, monitor, start, state, error, runs = row
            self._open[monitor] = _Open(incident_id, monitor, start, State(state), error, runs)
        (last_id,) = self._db.execute("SELECT max(id) FROM agent_incidents").fetchone()
        self._next_id = (last_id or 0) + 1
        (mark,) = self._db.execute(
            "SELECT coalesce((SELECT result FROM agent_uptime_mark), 0)"
        ).fetchone()
        (last_row,) = self._db.execute(
            "SELECT coalesce(max(rowid), 0) FROM agent_results"
        ).fetchone()
        if last_row < mark:
            # The history was emptied by its retention since: its rows were numbered again.
            mark = 0
        since = _minute(now - WINDOWS["1h"])
        # Two queries, each on an index: the last hour's minutes that were written, then
        # everything after the mark, in the order it was written.
        for monitor, time, status, duration in self._db.execute(
            "SELECT monitor, time, status, duration FROM agent_results "
            "WHERE time >= ? AND rowid <= ?",
            (since, mark),
        ):
            self._last_hour.add(monitor, _minute(time), int(status <= State.WARNING), duration)
        for monitor, time, status, error, duration in self._db.execute(
            "SELECT monitor, time, status, error, duration FROM agent_results WHERE rowid > ? "
            "ORDER BY rowid",
            (mark,),
        ):
            outcome = Outcome(time, State(status), duration, error=error)
            self._add(monitor, outcome, minutes=time >= since)

    def record(self, results: Iterable[tuple[str, Outcome]], now: float) -> None:
        """Add results, inside the caller's transaction, after they were inserted in
        ``agent_results``; every :data:`CHECKPOINT_EVERY` seconds, write the roll-ups.

        A monitor's results must come in the order they started (they do: a monitor never
        runs twice at once); the results of different monitors may interleave.
        """
        for monitor, outcome in results:
            self._add(monitor, outcome, minutes=True)
        if now - self._checkpoint_at >= CHECKPOINT_EVERY or now < self._checkpoint_at:
            self.checkpoint(now)

    def _add(self, monitor: str, outcome: Outcome, *, minutes: bool) -> None:
        moment, state, duration = outcome.time, outcome.status, outcome.duration
        up = 1 if state <= State.WARNING else 0
        _count(self._hours, (monitor, int(moment // _HOUR) * _HOUR), up, duration)
        if minutes:
            self._last_hour.add(monitor, int(moment // _MINUTE) * _MINUTE, up, duration)
        if state == State.OK and monitor not in self._open:
            return
        current = self._open.get(monitor)
        if outcome.status == State.OK:
            if current is None:
                return
            current.end = outcome.time
            del self._open[monitor]
        elif current is None:
            current = _Open(self._next_id, monitor, outcome.time, outcome.status, outcome.error, 1)
            self._next_id += 1
            self._open[monitor] = current
        else:
            current.runs += 1
            if _SEVERITY[outcome.status] > _SEVERITY[current.state]:
                current.state = outcome.status
        changed = self._incidents.setdefault(monitor, [])
        if not changed or changed[-1] is not current:
            changed.append(current)

    def checkpoint(self, now: float) -> None:
        """Write the roll-ups changed since the last checkpoint, inside the caller's
        transaction (also when the history closes)."""
        self._db.executemany(
            "INSERT INTO agent_uptime_hours VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (monitor, start) DO UPDATE SET runs = runs + excluded.runs, "
            "up = up + excluded.up, latency_sum = latency_sum + excluded.latency_sum",
            [(m, start, b.runs, b.up, b.latency_sum) for (m, start), b in self._hours.items()],
        )
        self._db.executemany(
            "INSERT OR REPLACE INTO agent_incidents VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (i.id, i.monitor, i.start, i.end, int(i.state), i.error, i.runs)
                for changed in self._incidents.values()
                for i in changed
            ],
        )
        self._db.execute(
            "INSERT OR REPLACE INTO agent_uptime_mark VALUES "
            "(0, (SELECT coalesce(max(rowid), 0) FROM agent_results))"
        )
        for (monitor, start), bucket in self._hours.items():
            self._sliding.written(monitor, start, bucket)
        self._hours = {}
        self._incidents = {}
        self._checkpoint_at = now

    def windows(self, monitor: str, now: float) -> dict[str, Window]:
        """``monitor``'s runs over each of :data:`WINDOWS` up to ``now``.

        The 1h window counts whole minutes, the others whole hours: a window runs from the
        beginning of the minute (hour) that holds ``now`` less its length to the end of the
        minute (hour) that holds ``now`` (so "24h" is 24 to 25 hours; hours are summed up
        to the newest, results being never later than ``now``).
        """
        current = _hour(now)
        hours: list[tuple[int, _Bucket]] = [
            (start, _Bucket(runs, up, latency_sum))
            for start, runs, up, latency_sum in self._db.execute(
                "SELECT start, runs, up, latency_sum FROM agent_uptime_hours "
                "WHERE monitor = ? AND start >= ?",
                (monitor, current - max(_HOUR_WINDOWS.values())),
            )
        ]
        hours += [(s, b) for (m, s), b in self._hours.items() if m == monitor]
        shown = {"1h": self._last_hour.of(monitor, now)}
        for name, seconds in _HOUR_WINDOWS.items():
            sums = _Bucket()
            for start, bucket in hours:
                if start >= current - seconds:
                    sums.add(bucket.runs, bucket.up, bucket.latency_sum)
            shown[name] = sums.window()
        return shown

    def all_windows(self, now: float) -> dict[str, dict[str, Window]]:
        """:meth:`windows` of every monitor with runs in the last 31 days."""
        current = _hour(now)
        self._sliding.move_to(self._db, current)
        shown: dict[str, dict[str, _Bucket]] = {
            monitor: {name: _Bucket(b.runs, b.up, b.latency_sum) for name, b in sums.items()}
            for monitor, sums in self._sliding.sums.items()
        }
        for (monitor, start), bucket in self._hours.items():
            for name, seconds in _HOUR_WINDOWS.items():
                if start >= current - seconds:
                    sums = shown.setdefault(monitor, {}).setdefault(name, _Bucket())
                    sums.add(bucket.runs, bucket.up, bucket.latency_sum)
        last_hour = self._last_hour.all(now)
        result = {}
        for monitor in shown.keys() | last_hour.keys():
            windows = {"1h": last_hour.get(monitor, _Bucket()).window()}
            found = shown.get(monitor, {})
            for name in _HOUR_WINDOWS:
                windows[name] = found.get(name, _Bucket()).window()
            if any(window.runs for window in windows.values()):
                result[monitor] = windows
        return result

    def uptime(self, monitor: str, now: float) -> dict[str, float | None]:
        """The share of ``monitor``'s runs that were up, per window (``None``: no runs)."""
        return {name: window.uptime for name, window in self.windows(monitor, now).items()}

    def incidents(self, monitor: str, *, limit: int = 100) -> list[Incident]:
        """``monitor``'s incidents, newest first, at most ``limit``."""
        pending = {i.id: i.incident() for i in self._incidents.get(monitor, [])}
        rows = self._db.execute(
            "SELECT id, start, end, state, error, runs FROM agent_incidents WHERE monitor = ? "
            "ORDER BY start DESC LIMIT ?",
            (monitor, limit),
        ).fetchall()
        found = {
            incident_id: Incident(start, end, State(state), error, runs)
            for incident_id, start, end, state, error, runs in rows
        }
        found.update(pending)
        return sorted(found.values(), key=lambda i: i.start, reverse=True)[:limit]

    def prune(self, now: float) -> None:
        """Drop hours too old for any window and old or surplus closed incidents, inside
        the caller's transaction (after a checkpoint)."""
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


def _count(buckets: dict[_K, _Bucket], key: _K, up: int, duration: float) -> None:
    # On every result: plain attribute updates, no method call.
    bucket = buckets.get(key)
    if bucket is None:
        bucket = buckets[key] = _Bucket()
    bucket.runs += 1
    bucket.up += up
    bucket.latency_sum += duration


def _minute(moment: float) -> int:
    return int(moment // _MINUTE) * _MINUTE


def _hour(moment: float) -> int:
    return int(moment // _HOUR) * _HOUR
