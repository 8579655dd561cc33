"""The agent's one bound on checks in flight (its ``concurrency``), shared by the
scheduled checks and ``/probe``.

A scheduled check waits for a slot; a probe takes one only when one is free and no
scheduled check is waiting, and never waits: a caller flooding ``/probe`` is refused
before it can hold the monitors back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from .prober import Busy

__all__ = ["Budget"]


class Budget:
    """``size`` slots for checks in flight."""

    def __init__(self, size: int) -> None:
        self._slots = asyncio.Semaphore(size)
        self.size = size

    def resize(self, size: int) -> None:
        """Use a new bound from now on (checks in flight finish under the old one)."""
        if size != self.size:
            self._slots = asyncio.Semaphore(size)
            self.size = size

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """A slot for a scheduled check, waited for."""
        slots = self._slots
        async with slots:
            yield

    @contextlib.asynccontextmanager
    async def slot_now(self) -> AsyncIterator[None]:
        """A slot for a probe, or :class:`~.prober.Busy` when none is free now (or a
        scheduled check waits for one)."""
        slots = self._slots
        # locked() counts the waiters too: a free slot goes to a waiting scheduled check.
        if slots.locked():
            raise Busy(f"busy: {self.size} checks in flight (concurrency), try later")
        async with slots:  # free: taken without waiting
            yield
