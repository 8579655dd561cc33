"""The latest outcome of every monitor and its counts: what metrics, API and page read."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .config import Monitor
from .outcome import Outcome, State

__all__ = ["RECENT", "Board", "Entry"]

#: Outcomes each monitor keeps in memory for the status page's chart.
RECENT = 60


@dataclass
class Entry:
    """One monitor's standing: its definition, its latest outcomes (oldest first, the
    last one in ``last``) and its counts since the agent started."""

    monitor: Monitor
    recent: deque[Outcome] = field(default_factory=lambda: deque(maxlen=RECENT))
    runs: Counter[State] = field(default_factory=Counter)
    skipped: int = 0

    @property
    def last(self) -> Outcome | None:
        """The latest outcome, if any."""
        return self.recent[-1] if self.recent else None


class Board:
    """Entries for the monitors currently configured, in configuration order."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}

    def configure(
        self, monitors: Iterable[Monitor], known: Mapping[str, Sequence[Outcome]]
    ) -> None:
        """Keep exactly ``monitors``; a new one starts from ``known[name]`` when given
        (its latest results from history), an existing one keeps its outcomes and counts."""
        entries = {}
        for monitor in monitors:
            entry = self._entries.get(monitor.name)
            if entry is None:
                entry = Entry(monitor, deque(known.get(monitor.name, ()), maxlen=RECENT))
            entry.monitor = monitor
            entries[monitor.name] = entry
        self._entries = entries

    def record(self, name: str, outcome: Outcome) -> tuple[State | None, State] | None:
        """Store an outcome; return ``(before, after)`` when the state changed (a first
        result counts as a change unless it is OK), else ``None``."""
        entry = self._entries.get(name)
        if entry is None:
            return None
        before = entry.last.status if entry.last is not None else None
        entry.recent.append(outcome)
        entry.runs[outcome.status] += 1
        if before is outcome.status or (before is None and outcome.status is State.OK):
            return None
        return before, outcome.status

    def skip(self, name: str, count: int) -> None:
        """Count slots a monitor missed."""
        entry = self._entries.get(name)
        if entry is not None:
            entry.skipped += count

    def get(self, name: str) -> Entry | None:
        """The entry of ``name``, if configured."""
        return self._entries.get(name)

    def entries(self) -> list[Entry]:
        """Every entry, in configuration order."""
        return list(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)
