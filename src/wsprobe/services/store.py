"""The ``store`` module's Python side: values that survive runs, in SQLite.

A script's values live in one table, ``script_store``, of ``STATE_DIR/wsprobe.db``
(the agent keeps its own tables in the same file; each side creates only its own,
with ``CREATE TABLE IF NOT EXISTS``). As Monsta's page describes, ``put``/``get``/
``delete`` prefix the key with the monitor's identifier (``"ident:key"``) and the
``*_global`` calls use the key as given, so a global key ``"ident:key"`` *is* that
monitor's key.

Values are anything JSON can hold and are stored as their JSON text, so a value read
back has the type it was stored with (``5`` stays an integer, ``5.0`` a float). Each
call is one transaction (a put checks its monitor's quota and writes, holding the
write lock); the database is in WAL mode (readers
never wait for the writer) with ``synchronous=NORMAL`` (a commit survives a crash of
the process; the last commits may be lost on power loss) and a ``busy_timeout`` of
5 s: several processes may write at once, each write waits its turn, and a write
that cannot get the lock in 5 s fails with ``store.put: database is locked``.

Where SQLite runs: every call is handed to one thread that owns the connection.
Measured here (``bench/store_calls.py``, WAL database on disk, 2000 calls each, two
runs): a put (lock, quota sum, upsert, commit) costs 52-58 µs called directly (p99
117-130 µs) and 182-185 µs through the thread; a get 10 µs directly, 120 µs through
the thread. But a direct put while another process held the write lock for 1 s
blocked the event loop for 1.03 s, and with it every script of the run. The
hand-off's ~0.13 ms is small next to any network call a monitor makes, and it bounds
what SQLite can do to the loop: nothing.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ..errors import StoreError
from .database import Database
from .jsontext import encode

__all__ = [
    "BUSY_SECONDS",
    "DATABASE_NAME",
    "MAX_KEY_LENGTH",
    "MAX_OWNER_BYTES",
    "MAX_VALUE_BYTES",
    "Store",
    "default_state_dir",
]

DATABASE_NAME = "wsprobe.db"
#: Bounds on what one call may write, and on what one monitor may hold (its keys and
#: values, global ones included): a script cannot fill the disk.
MAX_KEY_LENGTH = 1024
MAX_VALUE_BYTES = 1024 * 1024
MAX_OWNER_BYTES = 64 * 1024 * 1024
#: How long a write waits for another writer (``PRAGMA busy_timeout``).
BUSY_SECONDS = 5.0

# owner: the monitor that wrote the row, whose quota its size counts against. The
# value comes last, so that summing sizes does not read the values' overflow pages.
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS script_store ("
    "key TEXT PRIMARY KEY NOT NULL, owner TEXT NOT NULL, size INTEGER NOT NULL, "
    "updated REAL NOT NULL, value TEXT NOT NULL"
    ") WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS script_store_owner ON script_store (owner)",
)
_HELD = "SELECT COALESCE(SUM(size), 0) FROM script_store WHERE owner = ? AND key != ?"
_PUT = (
    "INSERT INTO script_store (key, owner, size, updated, value) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, size = excluded.size, "
    "updated = excluded.updated, value = excluded.value"
)
_GET = "SELECT value, updated FROM script_store WHERE key = ?"
_DELETE = "DELETE FROM script_store WHERE key = ?"

_T = TypeVar("_T")


def default_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where wsprobe keeps state unless told (``--state-dir``).

    ``$WSPROBE_STATE_DIR`` when set (as for ``wsprobe agent``), else
    ``$XDG_STATE_HOME/wsprobe`` when that variable holds an absolute path (the XDG
    Base Directory rule), else ``~/.local/state/wsprobe``.
    """
    env = os.environ if environ is None else environ
    if env.get("WSPROBE_STATE_DIR"):
        return Path(env["WSPROBE_STATE_DIR"])
    base = env.get("XDG_STATE_HOME", "")
    if not os.path.isabs(base):
        home = env.get("HOME") or os.path.expanduser("~")
        base = os.path.join(home, ".local", "state")
    return Path(base) / "wsprobe"


class Store:
    """The persistent key-value store in ``state_dir/wsprobe.db``.

    Nothing touches the disk until the first call, so a run whose scripts never use
    the store creates no file. The directory is created (mode 0700) when missing.
    Every error is a :class:`~wsprobe.errors.StoreError` naming the operation, e.g.
    ``store.get: cannot open /x/wsprobe.db: permission denied``.

    Keys: ``namespace`` given → the key stored is ``f"{namespace}:{key}"``; ``None``
    → the key as given (the ``*_global`` calls). Calls must come from one event loop.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        busy_seconds: float = BUSY_SECONDS,
        owner_bytes: int = MAX_OWNER_BYTES,
    ) -> None:
        self.path = state_dir / DATABASE_NAME
        self._owner_bytes = owner_bytes
        self._database = Database(
            self.path, busy_seconds=busy_seconds, schema=_SCHEMA, name="wsprobe-store"
        )

    async def put(
        self,
        operation: str,
        key: str,
        value: Any,
        *,
        namespace: str | None,
        owner: str | None = None,
    ) -> None:
        """Store ``value`` (JSON-encodable) under the key, stamped with the time now.

        ``operation`` names the call in errors (``store.put`` or ``store.put_global``).
        ``owner`` is the monitor writing (default: ``namespace``, else ``""``): the
        keys and values it holds, global ones included, may not pass ``owner_bytes``
        (64 MiB by default). Refuses keys longer than :data:`MAX_KEY_LENGTH`
        characters and values whose JSON is larger than :data:`MAX_VALUE_BYTES`;
        overwrites any previous value (which then counts for this owner).
        """
        stored = _stored_key(operation, key, namespace)
        try:
            text = encode(value)
        except ValueError as exc:
            raise StoreError(operation, f"value cannot be stored: {exc}") from None
        if len(text.encode()) > MAX_VALUE_BYTES:
            raise StoreError(operation, f"value larger than {MAX_VALUE_BYTES} bytes as JSON")
        writer = owner if owner is not None else namespace or ""
        size = len(stored.encode()) + len(text.encode())

        def write(db: sqlite3.Connection) -> None:
            # One transaction, holding the write lock: the quota check and the write
            # cannot be interleaved with another writer's, in this process or another.
            db.execute("BEGIN IMMEDIATE")
            try:
                (held,) = db.execute(_HELD, (writer, stored)).fetchone()
                if held + size > self._owner_bytes:
                    raise StoreError(
                        operation,
                        f"{writer or 'the caller'} would hold more than "
                        f"{self._owner_bytes} bytes in the store",
                    )
                db.execute(_PUT, (stored, writer, size, time.time(), text))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

        await self._run(operation, write)

    async def get(
        self, operation: str, key: str, *, namespace: str | None
    ) -> tuple[Any, int | None]:
        """The value under the key and when it was stored (whole Unix seconds, so that
        ``os.date`` takes it), or ``(None, None)`` when there is none."""
        stored = _stored_key(operation, key, namespace)
        row = await self._run(operation, lambda db: db.execute(_GET, (stored,)).fetchone())
        if row is None:
            return None, None
        text, updated = row
        try:
            value = json.loads(text)
        except (TypeError, ValueError):
            # Another program wrote the row: say so rather than guess.
            raise StoreError(operation, f"the stored value of {key!r} is not JSON") from None
        return value, math.floor(updated)

    async def delete(self, operation: str, key: str, *, namespace: str | None) -> None:
        """Remove the key; nothing happens when it is absent."""
        stored = _stored_key(operation, key, namespace)
        await self._run(operation, lambda db: db.execute(_DELETE, (stored,)))

    async def close(self) -> None:
        """Close the database and stop the thread; the store can be used again after."""
        await self._database.close()

    async def _run(self, operation: str, work: Callable[[sqlite3.Connection], _T]) -> _T:
        try:
            return await self._database.call(work)
        except sqlite3.Error as exc:
            raise StoreError(operation, _sqlite_reason(exc, self.path)) from exc
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise StoreError(operation, f"cannot open {self.path}: {reason}") from exc


def _stored_key(operation: str, key: str, namespace: str | None) -> str:
    if not isinstance(key, str):
        raise StoreError(operation, f"key must be a string, got {type(key).__name__}")
    if len(key) > MAX_KEY_LENGTH:
        raise StoreError(operation, f"key longer than {MAX_KEY_LENGTH} characters")
    return key if namespace is None else f"{namespace}:{key}"


def _sqlite_reason(exc: sqlite3.Error, path: Path) -> str:
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, sqlite3.OperationalError) and "unable to open" in reason:
        return f"cannot open {path}: {reason}"
    return reason
