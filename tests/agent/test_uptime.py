"""Uptime and incidents from roll-ups in a real SQLite file, written as the history writes:
outages of known length, a restart, a history retention shorter than the windows."""

from __future__ import annotations

import math
import sqlite3
import time
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
# Midnight UTC 20 days ago: whole hours and minutes, and every result the tests write
# within the history's retention (40 days) when it prunes by the clock, on closing.
T0 = time.time() // DAY * DAY - 20 * DAY


class Writer:
    """Results and their roll-ups written in one transaction, as the history writer will."""

    def __init__(self, state_dir: Path, *, retention: float = 40 * DAY, now: float = T0) -> None:
        self.history = History(state_dir, retention=retention)
        self.db = sqlite3.connect(self.history.path, isolation_level=None)
        self.db.execute("PRAGMA busy_timeout = 5000")
        Rollups.create(self.db)
        self.rollups = Rollups(self.db)
        self.now = now
        self.rollups.load(now)

    def write(self, results: Iterable[tuple[str, Outcome]], now: float) -> None:
        results = list(results)
        for monitor, outcome in results:
            self.history.add(monitor, outcome)
        self.history.flush(now)
        self.now = now
        with self.transaction():
            self.rollups.record(results, now)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            self.rollups.load(self.now)
            raise
        self.db.execute("COMMIT")

    def close(self, *, crash: bool = False) -> None:
        """Stop; a crash writes no last checkpoint."""
        if not crash:
            with self.transaction():
                self.rollups.checkpoint(self.now)
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
    written(writer, "api", day[:1800])
    # Ten hours after the outage began, 24h covers it: hours 5 to 29.
    assert writer.rollups.uptime("api", T0 + 30 * HOUR - 1)["24h"] == (1500 - 90) / 1500
    written(writer, "api", day[1800:])
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


def test_an_open_incident_across_a_crash_and_past_retention(tmp_path: Path) -> None:
    # The history keeps one hour and prunes by the clock when it closes: the crash comes
    # 642 to 643 minutes after the first run, now.
    base = time.time() // MINUTE * MINUTE - 642 * MINUTE
    day = [
        *runs(base, 600),
        *runs(base + 600 * MINUTE, 30, State.WARNING, error="slow reply"),
        *runs(base + 630 * MINUTE, 13, State.CRITICAL, error="refused"),
        *runs(base + 643 * MINUTE, 17, State.CRITICAL, error="refused"),
        *runs(base + 660 * MINUTE, 3 * 1440 - 660),
    ]
    writer = Writer(tmp_path, retention=HOUR)
    written(writer, "db", day[:640])
    # Three more, one a minute: not yet in a checkpoint when the agent crashes.
    written(writer, "db", day[640:643], batch=1)
    (open_,) = writer.rollups.incidents("db")
    assert (open_.end, open_.state, open_.runs, open_.error) == (
        None,
        State.CRITICAL,
        43,
        "slow reply",
    )
    assert writer.db.execute("SELECT runs FROM agent_incidents").fetchall() == [(40,)]
    writer.close(crash=True)

    # The results after the last checkpoint are replayed from the history.
    restart = base + 643 * MINUTE
    writer = Writer(tmp_path, retention=HOUR, now=restart)
    assert writer.rollups.incidents("db")[0].runs == 43
    # The last hour's minutes come back too: minutes 583 to 642.
    last_hour = writer.rollups.windows("db", restart)["1h"]
    assert (last_hour.runs, last_hour.up) == (60, 47)
    assert last_hour.latency_sum == pytest.approx(sum(o.duration for o in day[583:643]))
    written(writer, "db", day[643:])
    now = base + 3 * DAY - 1
    # The history has only its last hour; the 7d uptime still has the three days.
    (oldest,) = writer.db.execute("SELECT min(time) FROM agent_results").fetchone()
    assert oldest >= now - HOUR - MINUTE
    assert writer.rollups.uptime("db", now)["7d"] == (3 * 1440 - 30) / (3 * 1440)
    assert writer.rollups.incidents("db") == [
        Incident(base + 600 * MINUTE, base + 660 * MINUTE, State.CRITICAL, "slow reply", 60)
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
    with writer.transaction():
        writer.rollups.checkpoint(T0 + 2 * DAY)
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
    assert writer.rollups.all_windows(T0 + 100 * DAY) == {}
    writer.close()


def test_a_failed_transaction_leaves_no_roll_ups(tmp_path: Path) -> None:
    writer = Writer(tmp_path)
    written(writer, "x", runs(T0, 3))
    now = T0 + 2 * HOUR
    before = writer.rollups.all_windows(now)
    assert before["x"]["24h"] == Window(3, 3, 0.06)

    def fails() -> None:
        # A late result for an hour already over, in a transaction that fails after the
        # roll-ups were written.
        writer.now = now
        with writer.transaction():
            late = Outcome(T0 + 5, State.CRITICAL, 0.1, error="down")
            writer.rollups.record([("x", late)], now)
            assert writer.db.execute("SELECT count(*) FROM agent_incidents").fetchone() == (1,)
            raise RuntimeError("the disk is full")

    with pytest.raises(RuntimeError, match=r"^the disk is full$"):
        fails()
    assert writer.rollups.incidents("x") == []
    assert writer.db.execute("SELECT count(*) FROM agent_incidents").fetchone() == (0,)
    assert writer.rollups.windows("x", now) == before["x"]
    assert writer.rollups.all_windows(now) == before
    written(writer, "x", runs(T0 + 10, 1, State.CRITICAL, error="down again"))
    assert [i.error for i in writer.rollups.incidents("x")] == ["down again"]
    assert writer.rollups.all_windows(now)["x"]["24h"].runs == 4
    writer.close()


def test_every_monitor_at_once_as_time_passes(tmp_path: Path) -> None:
    writer = Writer(tmp_path)
    # Three days of a run every 10 minutes, down one run in seven, read every 7 minutes.
    outcomes = [
        Outcome(T0 + index * 600, State.CRITICAL if index % 7 == 0 else State.OK, 0.01)
        for index in range(3 * 144)
    ]
    moment = T0
    for outcome in outcomes:
        writer.write([("m", outcome), ("n", outcome)], outcome.time)
        while moment < outcome.time:
            moment += 7 * MINUTE
            everyone = writer.rollups.all_windows(moment)
            for name in ("m", "n"):
                assert same(everyone[name], writer.rollups.windows(name, moment))
    writer.close()


def test_the_last_hour_of_every_monitor_minute_by_minute(tmp_path: Path) -> None:
    writer = Writer(tmp_path)
    # Three hours of a run every 25 s, read every 50 s, half a minute behind the newest.
    for index in range(3 * 3600 // 25):
        at = T0 + index * 25
        state = State.CRITICAL if index % 5 == 0 else State.OK
        writer.write([("m", Outcome(at, state, 0.01)), ("n", Outcome(at + 1, State.OK, 0.02))], at)
        if index % 2:
            everyone = writer.rollups.all_windows(at - 30)
            for name in ("m", "n"):
                assert same(everyone[name], writer.rollups.windows(name, at - 30))
    # Runs 288 to 431 (from T0 + 2 h), a fifth of them down (290, 295, ... 430).
    last_hour = writer.rollups.all_windows(T0 + 3 * HOUR)["m"]["1h"]
    assert (last_hour.runs, last_hour.up) == (144, 144 - 29)
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
    # The gap before this run: a run every few seconds, or minutes, or hours.
    st.floats(min_value=1, max_value=120) | st.floats(min_value=1, max_value=3 * HOUR),
    st.booleans(),  # the batch ends after this run
    st.sampled_from([None, "clean", "crash"]),  # the agent restarts after this run
    # Someone reads every monitor's uptime this long after this run, before the next
    # results are written: a run that started before then lands in an hour already read.
    st.none() | st.floats(min_value=0, max_value=2 * HOUR),
)


def same(left: dict[str, Window], right: dict[str, Window]) -> bool:
    """Equal windows, latency sums added in another order aside."""
    return left.keys() == right.keys() and all(
        (a.runs, a.up) == (b.runs, b.up) and math.isclose(a.latency_sum, b.latency_sum)
        for a, b in ((left[key], right[key]) for key in left)
    )


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(steps=st.lists(step, min_size=1, max_size=120), monitors=st.integers(1, 3))
def test_roll_ups_match_the_results(
    tmp_path_factory: pytest.TempPathFactory,
    steps: list[tuple[State, float, bool, str | None, float | None]],
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
            writer.close(crash=restart == "crash")
            writer = Writer(directory, now=moment)
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
