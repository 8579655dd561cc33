"""Histories the tests write: results as the agent's history writes them, in its file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from wsprobe.agent.history import DATABASE_NAME, History
from wsprobe.agent.outcome import Outcome


def write_results(state_dir: Path, results: Iterable[tuple[str, Outcome]]) -> None:
    """Write ``(monitor, outcome)`` pairs into ``state_dir``'s history, as the agent
    does (roll-ups included), and close it."""
    history = History(state_dir, retention=365 * 86_400.0)
    latest = 0.0
    for monitor, outcome in results:
        history.add(monitor, outcome)
        latest = max(latest, outcome.time)
    history.flush(latest)
    history.close()


def delete_results_before(state_dir: Path, moment: float) -> None:
    """What the history's retention does: drop the results older than ``moment``."""
    with sqlite3.connect(state_dir / DATABASE_NAME) as db:
        db.execute("DELETE FROM agent_results WHERE time < ?", (moment,))
    db.close()
