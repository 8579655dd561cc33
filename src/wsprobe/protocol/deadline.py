"""The one clock both transports and sessions measure time on."""

from __future__ import annotations

import time

__all__ = ["Deadline"]


class Deadline:
    """A point in time on :func:`time.perf_counter`'s clock, ``seconds`` from now.

    Every operation of a call or of a session takes one: no server, however it
    trickles, can stretch an operation past it.
    """

    __slots__ = ("at",)

    def __init__(self, seconds: float) -> None:
        self.at = time.perf_counter() + seconds

    def left(self) -> float:
        """Seconds until the deadline; zero or less once it passed."""
        return self.at - time.perf_counter()

    def remaining(self) -> float:
        """Seconds until the deadline; raise :class:`TimeoutError` once it passed."""
        left = self.left()
        if left <= 0:
            raise TimeoutError
        return left

    def capped(self, seconds: float) -> Deadline:
        """The earlier of this deadline and ``seconds`` from now."""
        capped = Deadline(seconds)
        capped.at = min(capped.at, self.at)
        return capped
