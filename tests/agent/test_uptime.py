"""Uptime and incidents from roll-ups in a real SQLite file, written as the history writes:
outages of known length, a restart, a history retention shorter than the windows."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsprobe.agent.history import History
from wsprobe.agent.outcome import Outcome, State
from wsprobe.agent.uptime import INCIDENTS_PER_MONITOR, WINDOWS, Incident, Rollups, Window

MINUTE = 60.0
HOUR = 3600.0
DAY = 86_400.0
# A Monday at 00:00 UTC: whole hours and minutes, far from the epoch.
T0 = 1_767_571_200.0


class Writer:
    """Results and their roll-ups written in one transaction, as the history writer will."""

    def __init__(self, state_dir: Path, *, retention: float = 40 * DAY) -> None:
        self.history = History(state_dir, retention=retention)
        self.db = sqlite3.connect(self.history.path, isolation_level=None)
        self.db.execute("PRAGMA busy_timeout = 5000")
        Rollups.create(self.db)
        self.rollups = Rollups(self.db)

    def write(self, results: Iterable[tuple[str, Outcome]], now: float) -> None:
        results = list(results)
        for monitor, outcome in results:
            self.history.add(monitor, outcome)
        self.history.flush(now)
        with self.transaction():
            self.rollups.record(results)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.history.close()
        self.db.close()


def runs(
    start: float,
    count: int,
    status: State = State.OK,
    *,
    every: float = MINUTE,
    error: str | None = None,
) -> list[Outcome]:
    return [
        Outcome(start + index * every, status, 0.01 * (1 + index % 3), error=error)
        for index in range(count)
    ]


def written(writer: Writer, monitor: str, outcomes: list[Outcome], batch: int = 50) -> None:
    for index in range(0, len(outcomes), batch):
        chunk = outcomes[index : index + batch]
        writer.write(((monitor, outcome) for outcome in chunk), chunk[-1].time + 1)


def test_an_outage_of_known_length(tmp_path: Path) -> None:
    writer = Writer(tmp_path)
    # Two days of a run a minute: 20 h OK, 90 min down, 30 min of warnings, OK to the end.
    day = [
        *runs(T0, 1200),
        *runs(T0 + 1200 * MINUTE, 60, State.CRITICAL, error="no response from web socket"),
        *runs(T0 + 1260 * MINUTE, 30, State.UNKNOWN, error="syntax error"),
        *runs(T0 + 1290 * MINUTE, 30, State.WARNING, error="slow"),
        *runs(T0 + 1320 * MINUTE, 2 * 1440 - 1320),
    ]
    written(writer, "api", day)
    now = T0 + 2 * DAY - 1
    windows = writer.rollups.windows("api", now)
    assert windows["30d"] == windows["7d"]
    assert (windows["30d"].runs, windows["30d"].up) == (2880, 2880 - 90)
    # 24h: from the start of the hour 24 hours ago (hour 23), after the outage.
    assert (windows["24h"].runs, windows["24h"].up) == (1500, 1500)
    # 1h: from the start of the minute an hour ago: 61 runs.
    assert (windows["1h"].runs, windows["1h"].up) == (61, 61)
    assert writer.rollups.uptime("api", now) == {
        "1h": 1.0,
        "24h": 1.0,
        "7d": (2880 - 90) / 2880,
        "30d": (2880 - 90) / 2880,
    }
    # Ten hours after the outage began, 24h covers it: hours 5 to 29.
    assert writer.rollups.uptime("api", T0 + 30 * HOUR - 1)["24h"] == (1500 - 90) / 1500
    assert windows["30d"].latency_max == 0.03
    assert windows["1h"].latency == pytest.approx(sum(o.duration for o in day[-61:]) / 61)
    # One incident: critical is worse than unknown, which is worse than a warning.
    assert writer.rollups.incidents("api") == [
        Incident(
            T0 + 1200 * MINUTE,
            T0 + 1320 * MINUTE,
            State.CRITICAL,
            "no response from web socket",
            120,
        )
    ]
    assert writer.rollups.incidents("api")[0].as_json() == {
        "start": T0 + 1200 * MINUTE,
        "end": T0 + 1320 * MINUTE,
        "state": "critical",
        "error": "no response from web socket",
        "runs": 120,
    }
    assert writer.rollups.windows("other", now) == dict.fromkeys(WINDOWS, Window())
    assert writer.rollups.uptime("other", now) == dict.fromkeys(WINDOWS)
    writer.close()


def test_an_open_incident_across_a_restart_and_past_retention(tmp_path: Path) -> None:
    # The history keeps one hour; the roll-ups keep what the windows need.
    writer = Writer(tmp_path, retention=HOUR)
    written(writer, "db", runs(T0, 600))
    written(writer, "db", runs(T0 + 600 * MINUTE, 30, State.WARNING, error="slow reply"))
    written(writer, "db", runs(T0 + 630 * MINUTE, 10, State.CRITICAL, error="refused"))
    (open_,) = writer.rollups.incidents("db")
    assert (open_.end, open_.state, open_.runs, open_.error) == (
        None,
        State.CRITICAL,
        40,
        "slow reply",
    )
    writer.close()

    writer = Writer(tmp_path, retention=HOUR)
    written(writer, "db", runs(T0 + 640 * MINUTE, 20, State.CRITICAL, error="refused"))
    written(writer, "db", runs(T0 + 660 * MINUTE, 3 * 1440 - 660))
    now = T0 + 3 * DAY - 1
    # The history has only its last hour; the 7d uptime still has the three days.
    (oldest,) = writer.db.execute("SELECT min(time) FROM agent_results").fetchone()
    assert oldest >= now - HOUR - MINUTE
    assert writer.rollups.uptime("db", now)["7d"] == (3 * 1440 - 30) / (3 * 1440)
    assert writer.rollups.incidents("db") == [
        Incident(T0 + 600 * MINUTE, T0 + 660 * MINUTE, State.CRITICAL, "slow reply", 60)
    ]
    writer.close()


def test_incidents_newest_first_limited_and_pruned(tmp_path: Path) -> None:
    writer = Writer(tmp_path)
    flaps = [
        Outcome(
            T0 + index * MINUTE, State.CRITICAL if index % 2 else State.OK, 0.01, error=f"e{index}"
        )
        for index in range(2 * INCIDENTS_PER_MONITOR + 11)
    ]
    written(writer, "flappy", flaps, batch=400)
    newest = writer.rollups.incidents("flappy", limit=3)
    assert [(i.start, i.error) for i in newest] == [
        (T0 + index * MINUTE, f"e{index}") for index in (2009, 2007, 2005)
    ]
    assert all(i.end == i.start + MINUTE and i.runs == 1 for i in newest)
    with writer.transaction():
        writer.rollups.prune(T0 + 2 * DAY)
    kept = writer.rollups.incidents("flappy", limit=10_000)
    assert len(kept) == INCIDENTS_PER_MONITOR
    assert kept[0].start == T0 + 2009 * MINUTE
    # Far later, the roll-ups of those days are gone too.
    with writer.transaction():
        writer.rollups.prune(T0 + 100 * DAY)
    assert writer.rollups.incidents("flappy") == []
    assert writer.db.execute("SELECT count(*) FROM agent_uptime_hours").fetchone() == (0,)
    assert writer.db.execute("SELECT count(*) FROM agent_uptime_minutes").fetchone() == (0,)
    writer.close()


def test_a_failed_transaction_leaves_no_roll_ups(tmp_path: Path) -> None:
    writer = Writer(tmp_path)
    try:
        with writer.transaction():
            writer.rollups.record([("x", Outcome(T0, State.CRITICAL, 0.1, error="down"))])
            raise RuntimeError("the disk is full")
    except RuntimeError:
        pass
    assert writer.rollups.incidents("x") == []
    assert writer.rollups.windows("x", T0 + 1) == dict.fromkeys(WINDOWS, Window())
    written(writer, "x", runs(T0 + 1, 1, State.CRITICAL, error="down again"))
    assert [i.error for i in writer.rollups.incidents("x")] == ["down again"]
    writer.close()


# A model of the definitions, over the raw results.
def expected_windows(outcomes: list[Outcome], now: float) -> dict[str, tuple[int, int]]:
    shown = {}
    for name, seconds in WINDOWS.items():
        size = MINUTE if name == "1h" else HOUR
        since = (now - seconds) // size * size
        chosen = [o for o in outcomes if since <= o.time < (now // size + 1) * size]
        shown[name] = (len(chosen), sum(o.success for o in chosen))
    return shown


def expected_incidents(outcomes: list[Outcome]) -> list[Incident]:
    severity = [State.OK, State.WARNING, State.UNKNOWN, State.CRITICAL]
    found: list[Incident] = []
    current: list[Outcome] = []
    for outcome in [*outcomes, None]:
        if outcome is not None and outcome.status != State.OK:
            current.append(outcome)
            continue
        if current:
            worst = max((o.status for o in current), key=severity.index)
            end = None if outcome is None else outcome.time
            found.append(Incident(current[0].time, end, worst, current[0].error, len(current)))
            current = []
    return found[::-1]


step = st.tuples(
    st.sampled_from([*State]),
    st.floats(min_value=1, max_value=3 * HOUR),  # the gap before this run
    st.booleans(),  # the batch ends after this run
    st.booleans(),  # the agent restarts after this run
    # Someone reads every monitor's uptime this long after this run, before the next
    # results are written: a run that started before then lands in an hour already read.
    st.none() | st.floats(min_value=0, max_value=2 * HOUR),
)


def same(left: dict[str, Window], right: dict[str, Window]) -> bool:
    """Equal windows, latency sums added in another order aside."""
    return left.keys() == right.keys() and all(
        (a.runs, a.up, a.latency_max) == (b.runs, b.up, b.latency_max)
        and math.isclose(a.latency_sum, b.latency_sum)
        for a, b in ((left[key], right[key]) for key in left)
    )


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(step, min_size=1, max_size=120), monitors=st.integers(1, 3))
def test_roll_ups_match_the_results(
    tmp_path_factory: pytest.TempPathFactory,
    steps: list[tuple[State, float, bool, bool, float | None]],
    monitors: int,
) -> None:
    directory = tmp_path_factory.mktemp("uptime")
    writer = Writer(directory)
    names = [f"m{index}" for index in range(monitors)]
    written_so_far: dict[str, list[Outcome]] = {name: [] for name in names}
    pending: list[tuple[str, Outcome]] = []
    moment = T0
    for index, (status, gap, flush, restart, read) in enumerate(steps):
        moment += gap
        name = names[index % monitors]
        outcome = Outcome(moment, status, gap / 1e4, error=f"error {index}")
        pending.append((name, outcome))
        written_so_far[name].append(outcome)
        if flush or restart or read is not None:
            writer.write(pending, moment)
            pending = []
        if restart:
            writer.close()
            writer = Writer(directory)
        if read is not None:
            everyone = writer.rollups.all_windows(moment + read)
            for name_ in names:
                assert same(
                    everyone.get(name_, dict.fromkeys(WINDOWS, Window())),
                    writer.rollups.windows(name_, moment + read),
                )
    writer.write(pending, moment)
    for name in names:
        now = moment + 1
        windows = writer.rollups.windows(name, now)
        shown = {key: (window.runs, window.up) for key, window in windows.items()}
        assert shown == expected_windows(written_so_far[name], now)
        assert writer.rollups.incidents(name, limit=1000) == expected_incidents(
            written_so_far[name]
        )
        everyone = writer.rollups.all_windows(now)
        assert same(everyone.get(name, dict.fromkeys(WINDOWS, Window())), windows)
    writer.close()
