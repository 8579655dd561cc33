"""The ``cache`` module's Python side: values with a time to live, shared by a run's scripts.

As Monsta's page describes: ``put(key, value, ttl)``, ``get(key)`` (``None`` when
absent or expired), ``delete(key)`` and ``mark_pending(key)``, which makes other
scripts' ``get`` of that key wait until someone ``put``\\ s it (or deletes it, or
the mark expires after 300 s) so that one script computes an expensive value and
the others wait for it instead of all computing it.

Decisions the page leaves open:

- Values are kept as their JSON text: what a script gets is a copy, never an
  object another script can change, and its size is known.
- The cache is bounded: at most :data:`MAX_ENTRIES` entries and :data:`MAX_BYTES`
  of JSON in all; when full, expired entries go first, then the least recently
  used. One value may be at most :data:`MAX_VALUE_BYTES`.
- ``mark_pending`` on a key another script has marked fails (the page's pattern
  catches that with ``pcall``); marking again one's own key renews the mark.
- The script that marked a key does not wait on its own mark, and its marks are
  released when it ends (:meth:`Cache.release`), so a script that fails between
  ``mark_pending`` and ``put`` does not make the others wait five minutes.
- A waiting ``get`` is bounded by the mark's expiry and, above it, by the
  script's own time limit.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import CacheError, InvalidOption
from ..options import seconds as to_seconds
from .jsontext import encode

__all__ = [
    "MAX_BYTES",
    "MAX_ENTRIES",
    "MAX_VALUE_BYTES",
    "OPERATIONS",
    "PENDING_SECONDS",
    "Cache",
    "SharedCache",
]

#: The operations :meth:`Cache.call` performs by name.
OPERATIONS = ("put", "get", "delete", "mark_pending")

MAX_ENTRIES = 10_000
MAX_BYTES = 64 * 1024 * 1024
MAX_VALUE_BYTES = 1024 * 1024
PENDING_SECONDS = 300.0


@dataclass(slots=True)
class _Entry:
    text: str
    expires: float


@dataclass(slots=True)
class _Pending:
    owner: Hashable
    expires: float
    settled: asyncio.Event = field(default_factory=asyncio.Event)


class SharedCache(Protocol):
    """What a script's calls need of the run's cache: a :class:`Cache` in this
    process, or a worker's link to the one its supervisor holds."""

    async def call(self, operation: str, key: str, owner: Hashable, *args: Any) -> Any:
        """Perform one of :data:`OPERATIONS` for the script ``owner``."""

    def release(self, owner: Hashable) -> None:
        """The script ``owner`` ended: its marks end too."""


class Cache:
    """An in-memory cache for the scripts of one run (one event loop).

    ``owner`` identifies the calling script (any hashable: the runner uses one
    object per script). ``clock`` is monotonic seconds; tests may pass their own.
    """

    def __init__(
        self,
        *,
        max_entries: int = MAX_ENTRIES,
        max_bytes: int = MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._pending: dict[str, _Pending] = {}
        self._bytes = 0
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._clock = clock

    async def call(self, operation: str, key: str, owner: Hashable, *args: Any) -> Any:
        """Perform one of :data:`OPERATIONS` by name: ``put`` takes ``value, ttl``;
        ``get`` returns the value. Errors are :class:`CacheError`."""
        if operation == "put":
            value, ttl = args
            self.put(key, value, ttl)
        elif operation == "get":
            return await self.get(key, owner=owner)
        elif operation == "delete":
            self.delete(key)
        elif operation == "mark_pending":
            self.mark_pending(key, owner=owner)
        else:
            raise ValueError(f"unknown cache operation {operation!r}")
        return None

    def put(self, key: str, value: Any, ttl: float) -> None:
        """Keep ``value`` (JSON-encodable) for ``ttl`` seconds; wake anyone waiting on it.

        Raises :class:`CacheError` for a ``ttl`` that is not a positive number of seconds, a value
        JSON cannot hold or one larger than :data:`MAX_VALUE_BYTES` (or the whole
        cache's bound) as JSON.
        """
        try:
            seconds = to_seconds("ttl", ttl)
        except InvalidOption as exc:
            raise CacheError("cache.put", f"ttl {exc.reason}") from None
        try:
            text = encode(value)
        except ValueError as exc:
            raise CacheError("cache.put", f"value cannot be cached: {exc}") from None
        size = _size(key, text)
        limit = min(MAX_VALUE_BYTES, self._max_bytes)
        if size > limit:
            raise CacheError("cache.put", f"value larger than {limit} bytes as JSON")
        self._remove(key)
        self._entries[key] = _Entry(text, self._clock() + seconds)
        self._bytes += size
        self._settle(key)
        self._evict()

    async def get(self, key: str, *, owner: Hashable) -> Any:
        """The value under ``key``, or ``None`` when absent or expired.

        While another owner's mark on the key stands, waits until the key is put or
        deleted, or the mark expires.
        """
        while True:
            pending = self._pending.get(key)
            if pending is not None and pending.owner != owner:
                remaining = pending.expires - self._clock()
                if remaining > 0:
                    try:
                        async with asyncio.timeout(remaining):
                            await pending.settled.wait()
                    except TimeoutError:
                        pass
                    continue
                self._settle(key)
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.expires <= self._clock():
                self._remove(key)
                return None
            self._entries.move_to_end(key)
            return json.loads(entry.text)

    def delete(self, key: str) -> None:
        """Remove ``key`` and any mark on it (those waiting get ``None``)."""
        self._remove(key)
        self._settle(key)

    def mark_pending(self, key: str, *, owner: Hashable) -> None:
        """Mark ``key`` as being computed by ``owner`` for :data:`PENDING_SECONDS`.

        Raises :class:`CacheError` when another owner's mark on it stands.
        """
        now = self._clock()
        pending = self._pending.get(key)
        if pending is not None and pending.owner != owner and pending.expires > now:
            raise CacheError("cache.mark_pending", f"key {key!r} is already pending")
        if pending is None and len(self._pending) >= self._max_entries:
            raise CacheError("cache.mark_pending", f"more than {self._max_entries} keys pending")
        if pending is not None and pending.owner != owner:
            self._settle(key)
            pending = None
        if pending is None:
            self._pending[key] = _Pending(owner, now + PENDING_SECONDS)
        else:
            pending.expires = now + PENDING_SECONDS

    def release(self, owner: Hashable) -> None:
        """Drop every mark ``owner`` holds (its script ended); waiters read what is there."""
        for key in [key for key, pending in self._pending.items() if pending.owner == owner]:
            self._settle(key)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """Bytes of keys and JSON text held now."""
        return self._bytes

    def _settle(self, key: str) -> None:
        pending = self._pending.pop(key, None)
        if pending is not None:
            pending.settled.set()

    def _remove(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= _size(key, entry.text)

    def _evict(self) -> None:
        if len(self._entries) <= self._max_entries and self._bytes <= self._max_bytes:
            return
        now = self._clock()
        for key in [key for key, entry in self._entries.items() if entry.expires <= now]:
            self._remove(key)
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            self._remove(next(iter(self._entries)))


def _size(key: str, text: str) -> int:
    return len(key.encode()) + len(text.encode())
