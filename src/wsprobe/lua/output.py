"""What ``wsprobe run`` writes: printed lines, log lines and one record per script.

Whole lines only, each written at once, so concurrent scripts never interleave.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from .jsoncodec import compact

if TYPE_CHECKING:
    from ..models import Timings

__all__ = ["LEVELS", "Output", "ScriptOutcome"]

LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40}


@dataclass
class ScriptOutcome:
    """How one script ended.

    ``status`` and ``value`` follow the result convention (:mod:`.result`):
    ``ok``/``warning``/``critical``/``unknown``; ``signal`` is the name a script
    ended with through ``signal(...)``. ``calls`` are the timings of its ws calls.
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

    @staticmethod
    def name_of(path: str) -> str:
        """The name a script's lines and records carry."""
        return "stdin" if path == "-" else os.path.basename(path)

    def write(self, name: str, text: str) -> None:
        """A line the script printed."""
        # With --json, stdout carries only the JSON lines; printed text goes to stderr.
        stream = self._stderr if self._json_output else self._stdout
        stream.write(self._tag(name, text) + "\n")
        stream.flush()

    def log(self, name: str, level: str, text: str) -> None:
        """A line the script logged, unless its level is filtered out."""
        if LEVELS[level] < self._min_level:
            return
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        self._stderr.write(f"{stamp}Z {level.upper()} {name}: {text}\n")
        self._stderr.flush()

    def finished(self, outcome: ScriptOutcome) -> None:
        """The script's record: JSON, its error, or its result."""
        if self._json_output:
            record = {
                "name": outcome.name,
                "ok": outcome.ok,
                "result": outcome.result,
                "error": outcome.error,
                "duration": round(outcome.duration, 6),
                "status": outcome.status,
                "value": outcome.value,
                "signal": outcome.signal,
            }
            self._stdout.write(compact(record) + "\n")
            self._stdout.flush()
        elif not outcome.ok:
            assert outcome.error is not None
            self._stderr.write(self._error_line(outcome) + "\n")
            self._stderr.flush()
        elif outcome.signal is not None:
            self.write(outcome.name, f"signal {outcome.signal}")
        elif outcome.result is not None:
            value = outcome.result
            shown = value if isinstance(value, str) else compact(value)
            self.write(outcome.name, shown)

    @staticmethod
    def _error_line(outcome: ScriptOutcome) -> str:
        error = outcome.error or ""
        return error if error.startswith(f"{outcome.name}:") else f"{outcome.name}: {error}"

    def _tag(self, name: str, text: str) -> str:
        if not self._tagged:
            return text
        return "\n".join(f"[{name}] {line}" for line in text.split("\n"))
