"""One SQLite connection on one thread: the event loop hands it calls and awaits them.

SQLite blocks: a write waits up to its busy timeout for another process's lock, a
large DELETE or a checkpoint takes as long as the disk does. Run on the event loop,
that time would be taken from every check and every HTTP answer; here it is taken
from one thread. ``sqlite3`` objects stay on the thread that made them, so the
connection is opened there, on the first call, and closed there.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

__all__ = ["Database", "is_transient"]

_T = TypeVar("_T")


class Database:
    """``path`` opened in WAL mode (readers never wait for the writer) with
    ``synchronous=NORMAL`` and a busy timeout of ``busy_seconds``, its directory made
    (mode 0700) when missing and ``schema``'s statements run once it is open.

    :meth:`call` runs ``work(connection)`` on the thread; errors (``sqlite3.Error``,
    ``OSError``) come back to the caller as they are. Calls come from one event loop.
    """

    def __init__(
        self, path: Path, *, busy_seconds: float, schema: Iterable[str], name: str
    ) -> None:
        self.path = path
        self._busy_seconds = busy_seconds
        self._schema = tuple(schema)
        self._name = name
        self._executor: ThreadPoolExecutor | None = None
        self._connection: sqlite3.Connection | None = None

    async def call(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """``work(connection)`` on the database's thread (opening it first if needed)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, work)

    async def close(self) -> None:
        """Close the connection and stop the thread; the database can be used again after."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        await asyncio.get_running_loop().run_in_executor(executor, self._close_connection)
        executor.shutdown(wait=True)

    def _call(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._connection is None:
            self._connection = self._open()
        return work(self._connection)

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Processes opening a new database at once race to turn it to WAL, and SQLite
        # answers the losers "locked" at once, without waiting its busy timeout: they
        # try again, within that timeout.
        deadline = time.monotonic() + self._busy_seconds
        pause = 0.005
        while True:
            try:
                return self._connect()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)  # on the database's own thread, never the event loop's
            pause = min(pause * 2, 0.1)

    def _connect(self) -> sqlite3.Connection:
        # Autocommit: each statement is its own transaction unless a call says BEGIN.
        connection = sqlite3.connect(self.path, isolation_level=None, timeout=self._busy_seconds)
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            for statement in self._schema:
                connection.execute(statement)
        except sqlite3.Error:
            connection.close()
            raise
        return connection

    def _close_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


def is_transient(exc: BaseException) -> bool:
    """An error that trying again later may cure: another writer holds the lock, or the
    disk (or the database's quota) is full."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    # The extended code's low byte is the primary one (SQLITE_IOERR_WRITE is an IOERR).
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _TRANSIENT


_TRANSIENT = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CANTOPEN,
    }
)
