"""The run's one cache, served to the scripts of every worker from the supervisor.

A worker's scripts reach it through their pipes (:class:`~.wire.CacheCall` up,
:class:`~.wire.CacheAnswer` down): a ``mark_pending`` in one worker makes a
``get`` in another wait, as if all ran in one process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable

from ..errors import Error
from ..services.cache import Cache
from .wire import CacheAnswer, CacheCall

__all__ = ["CacheServer"]


class CacheServer:
    """Answers cache calls, each in a task of its own (a ``get`` may wait on a mark)."""

    def __init__(self) -> None:
        self._cache = Cache()
        self._calls: set[asyncio.Task[None]] = set()
        # The scripts that asked for a mark: only they can hold one when they end.
        self._marking: set[Hashable] = set()

    def serve(
        self, call: CacheCall, answer: Callable[[CacheAnswer], None], malformed: Callable[[], None]
    ) -> None:
        """Perform ``call`` and ``answer`` it; a call whose arguments the cache
        refuses as malformed (not as a script's mistake) calls ``malformed``."""
        if call.operation == "mark_pending":
            self._marking.add(call.owner)
        task = asyncio.create_task(self._serve(call, answer, malformed))
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    async def _serve(
        self, call: CacheCall, answer: Callable[[CacheAnswer], None], malformed: Callable[[], None]
    ) -> None:
        try:
            value = await self._cache.call(call.operation, call.key, call.owner, *call.args)
        except Error as exc:
            answer(CacheAnswer(call.number, False, str(exc)))
        except (ValueError, TypeError):
            malformed()
        else:
            answer(CacheAnswer(call.number, True, value))

    def release(self, owner: Hashable) -> None:
        """Script ``owner`` ended: its marks end with it."""
        if owner in self._marking:
            self._marking.discard(owner)
            self._cache.release(owner)

    def close(self) -> None:
        """Abandon the calls in progress: the run is stopping."""
        for task in self._calls:
            task.cancel()
