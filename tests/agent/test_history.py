"""The agent's history in a real SQLite file: retention, reopening, a shared database."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from wsprobe.agent.history import History
from wsprobe.agent.outcome import Outcome, State


def outcome(at: float, status: State = State.OK, **extra: object) -> Outcome:
    return Outcome(at, status, 0.01, **extra)  # type: ignore[arg-type]


def test_retention_reopening_and_a_shared_database(tmp_path: Path) -> None:
    history = History(tmp_path / "state", retention=100)
    now = time.time()
    history.add("a", outcome(now - 500))
    history.add("a", outcome(now - 50, State.WARNING, value=1.5, error="slow"))
    history.add("b", outcome(now - 10, State.CRITICAL, error="down", status_code=404))
    history.flush(now)
    assert [r.time for r in history.results("a")] == [now - 50]
    # Another module (the scripts' store) keeps its own tables in the same file.
    with sqlite3.connect(history.path) as other:
        other.execute("PRAGMA busy_timeout = 5000")
        other.execute("CREATE TABLE IF NOT EXISTS store (key TEXT PRIMARY KEY, value TEXT)")
        other.execute("INSERT INTO store VALUES ('k', 'v')")
    history.add("a", outcome(now - 5, value="text"))
    history.close()

    reopened = History(tmp_path / "state", retention=100)
    results = reopened.results("a", since=now - 60)
    assert [(r.status, r.value, r.error) for r in results] == [
        (State.WARNING, 1.5, "slow"),
        (State.OK, "text", None),
    ]
    assert reopened.results("a", since=now - 60, limit=1)[0].value == "text"
    (latest,) = reopened.results("b")
    assert (latest.status, latest.error, latest.status_code) == (State.CRITICAL, "down", 404)
    assert reopened.results("c") == []
    reopened.close()
    with sqlite3.connect(history.path) as db:
        assert db.execute("SELECT value FROM store").fetchall() == [("v",)]
