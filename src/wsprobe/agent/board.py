"""The latest outcome of every monitor and its counts: what metrics, API and page read."""

from __future__ import annotations

import dataclasses
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..lua.result import REPEAT_PREVIOUS
from .config import Monitor
from .metrics import MonitorSeries
from .outcome import Outcome, State

__all__ = ["OUTPUT_LINES", "OUTPUT_LINE_LENGTH", "RECENT", "Board", "Entry"]

#: Outcomes each monitor keeps in memory for the status page's chart.
RECENT = 60
#: Lines a scripted monitor printed or logged that are kept in memory, the last ones,
#: each cut at :data:`OUTPUT_LINE_LENGTH` characters: about 10 KiB per monitor at most.
#: A run's output is cut where its script runs: ``… N earlier lines``, then its last
#: lines, as many as the board keeps.
OUTPUT_LINES = 20
OUTPUT_LINE_LENGTH = 500


@dataclass
class Entry:
    """One monitor's standing: its definition, its latest outcomes (oldest first, the
    last one in ``last``), its counts since the agent started by result
    (:data:`~.outcome.RESULTS`), the last lines its script wrote, as
    ``(Unix time, line)``, and its metrics' lines, made anew at each change
    (:meth:`Board.configure`, :meth:`Board.record`, :meth:`Board.skip`)."""

    monitor: Monitor
    recent: deque[Outcome] = field(default_factory=lambda: deque(maxlen=RECENT))
    runs: Counter[str] = field(default_factory=Counter)
    skipped: int = 0
    output: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=OUTPUT_LINES))
    series: MonitorSeries = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.labelled()

    def labelled(self) -> None:
        """New metrics' lines for the monitor's labels."""
        self.series = MonitorSeries({"monitor": self.monitor.name, **dict(self.monitor.labels)})
        self.changed()

    def changed(self) -> None:
        """New metrics' lines for the outcome and the counts."""
        self.series.update(self.last, self.runs, self.skipped)

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
            else:
                relabelled = entry.monitor.labels != monitor.labels
                entry.monitor = monitor
                if relabelled:
                    entry.labelled()
            entries[monitor.name] = entry
        self._entries = entries

    def settle(self, name: str, outcome: Outcome) -> Outcome:
        """The outcome to keep for ``name``: ``outcome``, unless its script ended with
        ``signal("RepeatPrevValue")``; then the previous result's state, value and
        error at this run's time and duration (UNKNOWN, saying so, when there is none)."""
        if outcome.signal != REPEAT_PREVIOUS:
            return outcome
        entry = self._entries.get(name)
        previous = entry.last if entry is not None else None
        if previous is None:
            return dataclasses.replace(
                outcome, error=f"signal {REPEAT_PREVIOUS}: no previous result to keep"
            )
        return dataclasses.replace(
            previous, time=outcome.time, duration=outcome.duration, signal=outcome.signal
        )

    def record(self, name: str, outcome: Outcome) -> tuple[State | None, State] | None:
        """Store a settled outcome (:meth:`settle`) and count it under its result; return
        ``(before, after)`` when the state changed (a first result counts as a change
        unless it is OK), else ``None``."""
        entry = self._entries.get(name)
        if entry is None:
            return None
        before = entry.last.status if entry.last is not None else None
        entry.recent.append(outcome)
        entry.runs[outcome.result] += 1
        entry.changed()
        if before is outcome.status or (before is None and outcome.status is State.OK):
            return None
        return before, outcome.status

    def write(self, name: str, text: str, at: float) -> None:
        """Keep what a monitor's script printed or logged at Unix time ``at``, line by
        line (bounded)."""
        entry = self._entries.get(name)
        if entry is None:
            return
        # Only the lines that can be kept are split off: a long text costs no list.
        for line in text.rsplit("\n", OUTPUT_LINES)[-OUTPUT_LINES:]:
            clipped = line if len(line) <= OUTPUT_LINE_LENGTH else line[:OUTPUT_LINE_LENGTH] + "…"
            entry.output.append((at, clipped))

    def skip(self, name: str, count: int) -> None:
        """Count slots a monitor missed."""
        entry = self._entries.get(name)
        if entry is not None:
            entry.skipped += count
            entry.changed()

    def get(self, name: str) -> Entry | None:
        """The entry of ``name``, if configured."""
        return self._entries.get(name)

    def entries(self) -> list[Entry]:
        """Every entry, in configuration order."""
        return list(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)
