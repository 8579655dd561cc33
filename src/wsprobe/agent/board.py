"""The latest outcome of every monitor and its counts: what metrics, API and page read."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .config import Monitor
from .outcome import Outcome, State

__all__ = ["Board", "Entry"]


@dataclass
class Entry:
    """One monitor's standing: its definition, last outcome and counts since start."""

    monitor: Monitor
    last: Outcome | None = None
    runs: Counter[State] = field(default_factory=Counter)
    skipped: int = 0


class Board:
    """Entries for the monitors currently configured, in configuration order."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}

    def configure(self, monitors: Iterable[Monitor], known: Mapping[str, Outcome]) -> None:
        """Keep exactly ``monitors``; a new one starts from ``known[name]`` when given
        (its last result from history), an existing one keeps its counts."""
        entries = {}
        for monitor in monitors:
            entry = self._entries.get(monitor.name)
            if entry is None:
                entry = Entry(monitor, last=known.get(monitor.name))
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
        entry.last = outcome
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
