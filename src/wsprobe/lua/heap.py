"""Giving a worker's freed memory back to the system once a burst of scripts is over.

Thousands of waiting scripts take hundreds of MiB of C heap (their Lua states,
allocated from the arenas of many step threads). When they end, glibc keeps most of
it: only the top of each arena is ever returned, and the rest is held as resident
memory the worker no longer uses, for as long as it lives (the agent's workers live
as long as the agent). ``malloc_trim`` returns the free pages anywhere in every
arena. Under jemalloc (:mod:`.allocator`), glibc's ``malloc_trim`` would touch none
of the memory the states had; jemalloc gives back its unused pages on its own after
a while, and its ``arena.<all>.purge`` control at once. Elsewhere there is nothing
to do.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections.abc import Callable

__all__ = ["Heap"]

#: Scripts that must have ended since the last trim before another: each frees
#: tens of KiB, and a trim walks every free chunk of every arena.
TRIM_AFTER = 1000


#: jemalloc's name for all its arenas at once (``MALLCTL_ARENAS_ALL``).
_ALL_ARENAS = 4096


def _malloc_trim() -> Callable[[int], int] | None:
    """The function that gives free pages back: jemalloc's purge when jemalloc is
    this process's allocator (its ``mallctl`` is found first), else glibc's
    ``malloc_trim``."""
    with contextlib.suppress(OSError):
        process = ctypes.CDLL(None)
        with contextlib.suppress(AttributeError):
            mallctl = process.mallctl
            mallctl.argtypes = [ctypes.c_char_p, *[ctypes.c_void_p] * 3, ctypes.c_size_t]
            purge = f"arena.{_ALL_ARENAS}.purge".encode()
            return lambda pad: int(mallctl(purge, None, None, None, 0))
        with contextlib.suppress(AttributeError):
            trim: Callable[[int], int] = process.malloc_trim
            return trim
    return None


class Heap:
    """Counts the scripts in flight and trims the heap when a burst has receded:
    :data:`TRIM_AFTER` scripts ended since the last trim and at most half as many in
    flight as at the most since then, or none in flight and a tenth of that ended. A
    steady flow of scripts, whose freed memory the next ones reuse at once, never
    trims; a worker that ran 5,000 and runs few now does. The trim runs on a thread
    of its own: ctypes releases the GIL, so the event loop goes on meanwhile (~50 ms
    for 5,000 ended scripts)."""

    __slots__ = ("_ended", "_in_flight", "_most", "_trim", "_trimming")

    def __init__(self, trim: Callable[[int], int] | None = None) -> None:
        # ``trim``: malloc_trim's stand-in, for tests.
        self._trim = trim or _malloc_trim()
        self._in_flight = self._most = self._ended = 0
        self._trimming = False

    def started(self) -> None:
        """A script started."""
        self._in_flight += 1
        self._most = max(self._most, self._in_flight)

    def ended(self) -> None:
        """A script ended (its memory freed)."""
        self._in_flight -= 1
        self._ended += 1
        receded = self._ended >= TRIM_AFTER and self._in_flight <= self._most // 2
        # Idle: what the last scripts of a burst freed, too few for the rule above.
        idle = self._in_flight == 0 and self._ended >= TRIM_AFTER // 10
        if self._trim is not None and not self._trimming and (receded or idle):
            self._trimming = True
            self._ended, self._most = 0, self._in_flight
            threading.Thread(target=self._run, args=(self._trim,), daemon=True).start()

    @property
    def trimming(self) -> bool:
        """Whether a trim runs now."""
        return self._trimming

    def _run(self, trim: Callable[[int], int]) -> None:
        try:
            trim(0)
        finally:
            self._trimming = False
