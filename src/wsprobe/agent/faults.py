"""The agent's own failures: an unexpected exception fails one unit of work, never a task.

Every piece of background work (a monitor's run, a history batch, a retention pass,
a reload, a notification) runs as a *unit* under :class:`Faults`: an exception it did
not expect is counted by component (``wsprobe_agent_internal_errors_total``), told in
one log line (never a traceback) and ends that unit alone; the task carries on with
the next. Logging itself never raises: a closed stderr loses the line, not the agent.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

from ..errors import one_line

__all__ = ["COMPONENTS", "Faults", "describe"]

#: The components counted, each shown from the start (at 0).
COMPONENTS = ("monitor", "check", "history", "retention", "reload", "notification", "log")
#: The longest error text a log line or a result carries.
MAX_TEXT = 500
#: The same failure of the same component is told at most this often (it is always counted).
_RETELL_AFTER = 60.0


def describe(exc: BaseException) -> str:
    """``exc`` as one bounded line: its type and its text."""
    text = one_line(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


class Faults:
    """Counts and tells unexpected exceptions; ``sink`` receives the log lines.

    Safe to use from any thread (the history's runs on its own).
    """

    def __init__(self, sink: Callable[[str], None]) -> None:
        self.counts: Counter[str] = Counter(dict.fromkeys(COMPONENTS, 0))
        self._sink = sink
        self._told: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def log(self, line: str) -> None:
        """Tell ``line``; a sink that fails (a closed stderr) loses it and is counted."""
        try:
            self._sink(line)
        except Exception:  # nothing is left to tell it to
            with self._lock:
                self.counts["log"] += 1

    def failed(self, component: str, exc: BaseException, *, tell: bool = True) -> str:
        """Count ``exc`` against ``component``, tell it in one line (unless the same was
        told within a minute, or ``tell`` is false: the caller says it) and return its
        one-line text."""
        text = describe(exc)
        now = time.monotonic()
        with self._lock:
            self.counts[component] += 1
            last = self._told.get((component, text))
            tell = tell and (last is None or now - last >= _RETELL_AFTER)
            if tell:
                if len(self._told) > 1000:
                    self._told.clear()
                self._told[(component, text)] = now
        if tell:
            self.log(f"internal error in {component}: {text}")
        return text

    @contextlib.contextmanager
    def unit(self, component: str) -> Iterator[None]:
        """One unit of ``component``'s work: an unexpected exception ends it, reported."""
        try:
            yield
        except Exception as exc:  # the point: one failed unit, not a dead task
            self.failed(component, exc)
