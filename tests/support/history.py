"""Histories the tests write: results as the agent's history writes them, in its file."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from wsprobe.agent.faults import Faults
from wsprobe.agent.history import DATABASE_NAME, History
from wsprobe.agent.outcome import Outcome


def write_results(state_dir: Path, results: Iterable[tuple[str, Outcome]]) -> None:
    """Write ``(monitor, outcome)`` pairs into ``state_dir``'s history, as the agent
    does (roll-ups included), and close it."""

    async def write() -> None:
        said: list[str] = []
        history = History(state_dir, retention=365 * 86_400.0, faults=Faults(said.append))
        await history.open()
        for monitor, outcome in results:
            history.add(monitor, outcome)
        written = await history.flush()
        await history.close(10)
        assert written, said
        assert not said, said

    asyncio.run(write())


def delete_results_before(state_dir: Path, moment: float) -> None:
    """What the history's retention does: drop the results older than ``moment``."""
    with sqlite3.connect(state_dir / DATABASE_NAME) as db:
        db.execute("DELETE FROM agent_results WHERE time < ?", (moment,))
    db.close()
