"""Scheduled scripts handed to the workers together rather than one by one.

A script handed over alone costs a write down a worker's pipe, a wake-up of the
worker's event loop and of a step thread, and its record comes back alone; with
monitors spread over their interval, every script pays all of it. Held a few
milliseconds, the scripts due meanwhile go down in one frame and their records
tend to come back in one line (docs/performance.md, "A scripted monitor's cost in
the agent").
"""

from __future__ import annotations

import asyncio

__all__ = ["HANDOVER_DELAY", "Handover"]

#: Seconds the first script waiting is held for the others: a start this much later
#: in a monitor's interval of seconds or more.
HANDOVER_DELAY = 0.05


class Handover:
    """Releases the callers of :meth:`wait` together, ``delay`` seconds after the
    first of them came."""

    def __init__(self, delay: float = HANDOVER_DELAY) -> None:
        self._delay = delay
        self._opening: asyncio.Future[None] | None = None

    async def wait(self) -> None:
        """Return with the others waiting now, at the end of the current delay."""
        loop = asyncio.get_running_loop()
        # A delay that a loop ended in the middle of ends with it.
        if self._opening is None or self._opening.get_loop() is not loop:
            self._opening = loop.create_future()
            loop.call_later(self._delay, self._open, self._opening)
        # Shielded: a caller cancelled while waiting must not cancel the others.
        await asyncio.shield(self._opening)

    def _open(self, opening: asyncio.Future[None]) -> None:
        if self._opening is opening:
            self._opening = None
        opening.set_result(None)
