"""`make bench`'s pages: the API, the status page and the badges of an agent whose
history holds 30 days of a thousand monitors at a run a minute, and what the roll-ups
add to writing a result.

The history is written here directly with SQLite, as the agent leaves it after 30 days
with its default retention of a day: the last day's results in ``agent_results``, the
30 days in the roll-ups' hours, and their mark (the last result they include).
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from agent_process import running_agent

from wsprobe.agent.history import DATABASE_NAME, create_tables, insert_results
from wsprobe.agent.outcome import Outcome, State
from wsprobe.agent.uptime import Rollups

Target = Callable[[str, str, str, bool], None]

_MINUTE = 60
_HOUR = 3600
_DAY = 86_400


def build_history(state_dir: Path, monitors: int, days: int, now: float) -> int:
    """``days`` of ``monitors`` at a run a minute (each down 1% of the time); the rows
    of ``agent_results`` written (the last day's)."""
    state_dir.mkdir(parents=True)
    db = sqlite3.connect(state_dir / DATABASE_NAME, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")
    create_tables(db)
    end = int(now // _MINUTE * _MINUTE)
    first_hour = (end - days * _DAY) // _HOUR * _HOUR
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO agent_uptime_hours VALUES (?, ?, 60, ?, ?)",
        (
            (f"m{index}", hour, 60 if (hour // _HOUR + index) % 100 else 0, 0.6)
            for index in range(monitors)
            for hour in range(first_hour, end // _HOUR * _HOUR + _HOUR, _HOUR)
        ),
    )
    rows = 0
    for minute in range(end - _DAY, end + _MINUTE, _MINUTE):
        hour_down = (minute // _HOUR) % 100
        batch = [
            (f"m{index}", float(minute + index % 60), 0 if (hour_down + index) % 100 else 2)
            for index in range(monitors)
        ]
        db.executemany(
            "INSERT INTO agent_results (monitor, time, status, value, error, duration, "
            "timings, status_code, cert_expires) VALUES (?, ?, ?, NULL, NULL, 0.01, '{}', "
            "101, NULL)",
            batch,
        )
        rows += len(batch)
    db.execute(
        "INSERT OR REPLACE INTO agent_uptime_mark VALUES (0, (SELECT max(rowid) FROM "
        "agent_results))"
    )
    db.execute("COMMIT")
    db.close()
    return rows


def _get(url: str) -> tuple[float, int]:
    began = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        size = len(response.read())
    return time.perf_counter() - began, size


def _median_ms(url: str, count: int) -> tuple[float, float, int]:
    """The first answer's milliseconds (nothing made yet), the median's, the size."""
    samples = []
    size = 0
    for _ in range(count):
        took, size = _get(url)
        samples.append(took)
    return samples[0] * 1000, statistics.median(samples) * 1000, size


def serving(port: int, monitors: int, days: int, target: Target) -> None:
    """A real agent on the prebuilt history, its monitors running every minute against
    the echo server: ``/api/monitors``, ``/`` and a badge, timed from a client."""
    print(
        f"\n11. pages: {monitors} monitors, {days} days of history at a run a minute "
        f"(the last day's results, {days} days of hour roll-ups), each monitor running "
        "every 60 s meanwhile"
    )
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        began = time.perf_counter()
        rows = build_history(folder / "state", monitors, days, time.time())
        print(f"    history written: {rows} results in {time.perf_counter() - began:.1f} s")
        lines = ["defaults: {interval: 60s, timeout: 5s}", "page: {group_by: team}", "monitors:"]
        lines += [
            f"  - {{name: m{i}, url: 'ws://127.0.0.1:{port}/', labels: {{team: t{i % 10}}}}}"
            for i in range(monitors)
        ]
        (folder / "agent.yaml").write_text("\n".join(lines) + "\n")
        started = time.perf_counter()
        with running_agent(folder / "agent.yaml", folder / "state") as (_, base):
            print(f"    agent listening after {time.perf_counter() - started:.1f} s")
            time.sleep(5)
            page_first, page, page_size = _median_ms(base, 20)
            api_first, api, api_size = _median_ms(base + "api/monitors", 20)
            _, detail, _ = _median_ms(base + "monitors/m1", 20)
            _, badge, _ = _median_ms(base + "badges/m1/uptime/30d.svg", 200)
            print(
                f"    /api/monitors {api_size / 1024:.0f} KiB (first {api_first:.1f} ms), "
                f"/ {page_size / 1024:.0f} KiB (first {page_first:.1f} ms)"
            )
            for key, wanted, took, limit in [
                ("api", f"/api/monitors, {monitors} monitors: < 100 ms", api, 100),
                ("page", f"status page, {monitors} monitors: < 100 ms", page, 100),
                ("monitor page", "a monitor's page: < 100 ms", detail, 100),
                ("badge", "a badge: < 5 ms", badge, 5),
            ]:
                target(f"pages {key}", wanted, f"{took:.2f} ms (median)", took < limit)


def writing(target: Target, monitors: int = 1000, interval: int = 10, seconds: int = 900) -> None:
    """What the roll-ups add to writing a result: ``monitors`` every ``interval`` s, one
    transaction a second as the history's writer does, for ``seconds`` of simulated time
    (three checkpoints), into two databases side by side, one without the roll-ups;
    the seconds alternate between the two."""
    per_second = monitors // interval
    print(
        f"\n12. writing results: {monitors} monitors every {interval} s "
        f"({per_second} results a transaction), {seconds} s of history, with and without "
        "the roll-ups"
    )
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        dbs = {}
        for kind in ("plain", "rollups"):
            (folder / kind).mkdir()
            db = sqlite3.connect(folder / kind / DATABASE_NAME, isolation_level=None)
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            create_tables(db)
            dbs[kind] = db
        rollups = Rollups(dbs["rollups"])
        start = time.time() // _HOUR * _HOUR
        rollups.load(start)
        spent = {"plain": [0.0], "rollups": [0.0]}
        for second in range(seconds):
            now = start + second
            batch = [
                (
                    f"m{index}",
                    Outcome(now, State.OK if (index + second) % 50 else State.CRITICAL, 0.01),
                )
                for index in range(second % interval, monitors, interval)
            ]
            kinds = ("plain", "rollups") if second % 2 else ("rollups", "plain")
            for kind in kinds:
                db = dbs[kind]
                began = time.perf_counter()
                db.execute("BEGIN IMMEDIATE")
                insert_results(db, batch)
                if kind == "rollups":
                    rollups.record(batch, now)
                db.execute("COMMIT")
                spent[kind][-1] += time.perf_counter() - began
            if second % 60 == 59:
                spent["plain"].append(0.0)
                spent["rollups"].append(0.0)
        for db in dbs.values():
            db.close()
    minutes = [
        (with_, without)
        for with_, without in zip(spent["rollups"], spent["plain"], strict=True)
        if without
    ]
    added = sum(w for w, _ in minutes) / sum(p for _, p in minutes) - 1
    per_minute = sorted(w / p - 1 for w, p in minutes)
    spread = f"minutes {per_minute[0] * 100:+.0f} to {per_minute[-1] * 100:+.0f}%"
    target(
        "pages write",
        "roll-ups' cost added to writing a result: < 10%",
        f"{added * 100:+.1f}% ({spread})",
        added < 0.10,
    )
