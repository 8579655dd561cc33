"""What ``wsprobe run`` writes: printed lines, log lines and one record per script.

Whole lines only, written by one thread, so concurrent scripts never interleave;
what is ready at once goes out with one flush (:meth:`Output.flush`).
"""

from __future__ import annotations

import datetime
import operator
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import Error, one_line
from ..plugin import State
from .jsoncodec import compact
from .result import ScriptResult

if TYPE_CHECKING:
    from ..models import Timings

__all__ = ["LEVELS", "RECORD_FIELDS", "Line", "Output", "OutputError", "ScriptOutcome"]

LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40}

#: The fields of a :class:`ScriptOutcome` its record carries after its name, in the
#: order ``--json`` writes them: what a worker sends of it too (:mod:`.wire`).
RECORD_FIELDS = ("ok", "result", "error", "duration", "status", "value", "signal")
#: A :class:`ScriptOutcome`'s values of :data:`RECORD_FIELDS`, in order.
record_values = operator.attrgetter(*RECORD_FIELDS)


class OutputError(Error):
    """Standard output or error cannot be written (closed, full, a broken pipe);
    ``stream`` is its descriptor, 1 or 2."""

    def __init__(self, message: str, *, stream: int) -> None:
        super().__init__(message)
        self.stream = stream


@dataclass
class ScriptOutcome:
    """How one script ended.

    ``status`` and ``value`` follow the result convention (:mod:`.result`):
    ``ok``/``warning``/``critical``/``unknown``; ``signal`` is the name a script
    ended with through ``signal(...)``. ``calls`` are the timings of its ws calls.
    ``rerun`` says why it ran a second time, on a fresh worker, when its first
    worker was lost (its record then says so).
    """

    name: str
    ok: bool
    result: Any = None
    error: str | None = None
    duration: float = 0.0
    status: str = "ok"
    value: Any = None
    signal: str | None = None
    calls: list[Timings] = field(default_factory=list)
    rerun: str | None = None

    @property
    def judged(self) -> ScriptResult:
        """How the script ended, as every output says it (:class:`.result.ScriptResult`)."""
        return ScriptResult(State.of(self.status), self.value, self.error, self.signal)


@dataclass(frozen=True, slots=True)
class Line:
    """A line a script printed (``kind`` ``"print"``) or logged (``kind`` its level),
    at Unix time ``at``."""

    kind: str
    text: str
    at: float


class Output:
    """The run's standard output and error, shared by its scripts."""

    def __init__(
        self,
        paths: Sequence[str],
        *,
        json_output: bool,
        log_level: str,
        stdout: TextIO,
        stderr: TextIO,
    ) -> None:
        self._json_output = json_output
        self._stdout = stdout
        self._stderr = stderr
        self._tagged = len(paths) > 1
        self._min_level = LEVELS[log_level]
        # The stream written to since the last flush.
        self._unflushed: TextIO | None = None

    @staticmethod
    def name_of(path: str) -> str:
        """The name a script's lines and records carry (always printable text: bytes
        of a file name that are not UTF-8 show as U+FFFD, a control character as its
        escape, ``\\n``)."""
        if path == "-":
            return "stdin"
        # A path without a file name ("/", "dir/") is named by itself; a line break
        # or a control character in it would split or garble the lines it tags.
        name = os.fsencode(os.path.basename(path) or path).decode(errors="replace")
        return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in name)

    def write(self, name: str, text: str) -> None:
        """A line the script printed."""
        # With --json, stdout carries only the JSON lines; printed text goes to stderr.
        stream = self._stderr if self._json_output else self._stdout
        self._emit(stream, self._tag(name, text) + "\n")

    def log(self, name: str, level: str, text: str, at: float | None = None) -> None:
        """A line the script logged at Unix time ``at`` (now), unless its level is
        filtered out."""
        if LEVELS[level] < self._min_level:
            return
        when = datetime.datetime.fromtimestamp(at, datetime.UTC) if at else None
        stamp = (when or datetime.datetime.now(datetime.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")
        # One line whatever the script logged: a line break would forge another line.
        self._emit(self._stderr, f"{stamp[:-3]}Z {level.upper()} {name}: {one_line(text)}\n")

    def lines(self, name: str, lines: Sequence[Line]) -> None:
        """What the script printed and logged, in order (written when it ended)."""
        for line in lines:
            if line.kind == "print":
                self.write(name, line.text)
            else:
                self.log(name, line.kind, line.text, line.at)

    def finished(self, outcome: ScriptOutcome) -> None:
        """The script's record: JSON, its error, or its result."""
        if self._json_output:
            # Keys in any order: the record's JSON sorts them.
            record: dict[str, Any] = dict(zip(RECORD_FIELDS, record_values(outcome), strict=True))
            record["name"] = outcome.name
            record["duration"] = round(outcome.duration, 6)
            if outcome.rerun is not None:
                record["rerun"] = outcome.rerun
            self._emit(self._stdout, compact(record) + "\n")
            return
        if outcome.rerun is not None:
            self._emit(self._stderr, f"{outcome.name}: ran again: {outcome.rerun}\n")
        if not outcome.ok:
            assert outcome.error is not None
            self._emit(self._stderr, self._error_line(outcome) + "\n")
        elif outcome.signal is not None:
            self.write(outcome.name, f"signal {outcome.signal}")
        elif outcome.result is not None:
            value = outcome.result
            shown = value if isinstance(value, str) else compact(value)
            self.write(outcome.name, shown)

    def flush(self) -> None:
        """Send what was written since the last flush."""
        if self._unflushed is not None:
            stream, self._unflushed = self._unflushed, None
            try:
                stream.flush()
            except (OSError, ValueError) as exc:
                raise self._failed(stream, exc) from exc

    def _emit(self, stream: TextIO, text: str) -> None:
        # Flushed by the caller once it has written what is ready (flush()), and
        # before a line goes to the other stream: the two stay in order when they
        # go to the same place.
        if self._unflushed is not stream:
            self.flush()
            self._unflushed = stream
        try:
            stream.write(text)
        except (OSError, ValueError) as exc:
            raise self._failed(stream, exc) from exc

    def _failed(self, stream: TextIO, exc: OSError | ValueError) -> OutputError:
        which, number = ("output", 1) if stream is self._stdout else ("error", 2)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "closed"
        return OutputError(f"cannot write to standard {which}: {reason.lower()}", stream=number)

    @staticmethod
    def _error_line(outcome: ScriptOutcome) -> str:
        error = one_line(outcome.error or "")
        return error if error.startswith(f"{outcome.name}:") else f"{outcome.name}: {error}"

    def _tag(self, name: str, text: str) -> str:
        if not self._tagged:
            return text
        return "\n".join(f"[{name}] {line}" for line in text.split("\n"))
