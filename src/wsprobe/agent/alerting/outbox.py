"""The outbox and the alerts' state, in ``STATE_DIR/alerts.db`` (SQLite, WAL).

A notice and the alert state that decided it are written in one transaction: after
a restart the engine resumes where the outbox stands, so an outage is never told
twice and a queued notice is still sent. Every method is blocking; the agent calls
them on one thread of its own (:class:`~.service.Alerting`).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ...errors import Error
from .engine import AlertState
from .notice import Notice

__all__ = ["DATABASE_NAME", "MAX_QUEUED", "Item", "OnOutbox", "Outbox", "OutboxError"]

DATABASE_NAME = "alerts.db"
#: Notices the outbox holds at most; past it, new ones are refused (and said so).
MAX_QUEUED = 100_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    destination TEXT NOT NULL,
    monitor TEXT NOT NULL,
    notice TEXT NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_outbox_heads ON alert_outbox (destination, monitor, id);
CREATE TABLE IF NOT EXISTS alert_states (
    monitor TEXT PRIMARY KEY,
    state TEXT NOT NULL
);
"""


T = TypeVar("T")


class OnOutbox(Protocol):
    """Runs a call on the outbox's thread: ``await on_outbox(lambda outbox: ...)``."""

    def __call__(self, call: Callable[[Outbox], T], /) -> Awaitable[T]: ...


class OutboxError(Error):
    """The alerts' database cannot be used."""


@dataclass(frozen=True, slots=True)
class Item:
    """A queued notice for one destination; ``attempts`` so far, the next one due at
    ``next_at`` (Unix seconds)."""

    id: int
    destination: str
    monitor: str
    notice: str
    created: float
    attempts: int
    next_at: float


class Outbox:
    """``alert_outbox`` (notices per destination, oldest first) and ``alert_states``."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / DATABASE_NAME
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            # One thread at a time uses it, not always the one that opened it.
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout = 5000")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise OutboxError(f"cannot open the alerts' database at {self.path}: {exc}") from exc

    def save(
        self,
        states: Mapping[str, AlertState],
        notices: Sequence[tuple[str, Notice]],
        now: float,
        forget: Iterable[str] = (),
    ) -> int:
        """Write ``states``, drop those of ``forget`` and queue ``notices``
        (``(destination key, notice)``) in one transaction; return how many notices were
        refused because the outbox is full."""
        with self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO alert_states (monitor, state) VALUES (?, ?)",
                [(name, json.dumps(state.as_json())) for name, state in states.items()],
            )
            self._db.executemany(
                "DELETE FROM alert_states WHERE monitor = ?", [(name,) for name in forget]
            )
            room = MAX_QUEUED - self._count()
            kept = notices[: max(room, 0)]
            self._db.executemany(
                "INSERT INTO alert_outbox (destination, monitor, notice, created, next_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [(key, n.monitor, n.to_json(), now, now) for key, n in kept],
            )
        return len(notices) - len(kept)

    def states(self) -> dict[str, AlertState]:
        """Every saved state; one that cannot be read is left out (it starts afresh)."""
        states = {}
        for monitor, text in self._read("SELECT monitor, state FROM alert_states"):
            try:
                states[monitor] = AlertState.from_json(json.loads(text))
            except (ValueError, TypeError):
                continue
        return states

    def heads(self, busy: set[tuple[str, str]]) -> list[Item]:
        """The oldest notice of each (destination, monitor) pair, due or not, except
        for the pairs in ``busy``; oldest first."""
        rows = self._read(
            "SELECT o.id, o.destination, o.monitor, o.notice, o.created, o.attempts, o.next_at "
            "FROM alert_outbox o JOIN (SELECT MIN(id) AS id FROM alert_outbox "
            "GROUP BY destination, monitor) h ON o.id = h.id ORDER BY o.id"
        )
        items = (Item(*row) for row in rows)
        return [item for item in items if (item.destination, item.monitor) not in busy]

    def queued(self) -> set[tuple[str, str]]:
        """The (destination, monitor) pairs with notices queued."""
        return set(self._read("SELECT DISTINCT destination, monitor FROM alert_outbox"))

    def done(self, item: Item) -> None:
        """``item`` was sent, or given up on."""
        with self._transaction():
            self._db.execute("DELETE FROM alert_outbox WHERE id = ?", (item.id,))

    def retry(self, item: Item, at: float) -> None:
        """Try ``item`` again at Unix time ``at``."""
        with self._transaction():
            self._db.execute(
                "UPDATE alert_outbox SET attempts = attempts + 1, next_at = ? WHERE id = ?",
                (at, item.id),
            )

    def length(self) -> int:
        """Notices queued."""
        return self._count()

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def _count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM alert_outbox").fetchone()[0])

    def _read(self, sql: str, parameters: Sequence[object] = ()) -> list[Any]:
        try:
            return self._db.execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot read the alerts' database at {self.path}: {exc}") from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise OutboxError(f"cannot write the alerts' database at {self.path}: {exc}") from exc
