"""What runs: a script (:class:`Job`), the run's settings and each script's limits.

The bottom of the Lua pipeline: the worker's script execution (:mod:`.execute`), the
supervisor (:mod:`.supervisor`) and the run's entry point (:mod:`.runner`) all
build on these; nothing here knows of processes or event loops.
"""

from __future__ import annotations

import errno
import operator
import os
import select
import stat
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import InvalidOption
from ..options import MAX_SECONDS, Options
from .runtime import Failed, ScriptLimits

__all__ = ["Job", "RunSettings", "named", "read_script"]


@dataclass(frozen=True, slots=True)
class RunSettings:
    """Everything ``wsprobe run`` was told, validated."""

    options: Options
    env_names: tuple[str, ...] = ()
    script_timeout: float = 60.0
    memory_limit_mib: int = 64
    instruction_limit: int = 100_000_000
    max_sessions: int = 100
    concurrency: int = 200
    workers: int = 0
    log_level: str = "info"
    json_output: bool = False
    #: Where ``store`` keeps its database; ``None``: the per-user default.
    state_dir: Path | None = None

    @classmethod
    def from_text(
        cls,
        *,
        options: Options,
        env_names: Sequence[str],
        script_timeout: str,
        memory_limit: str,
        instruction_limit: str,
        max_sessions: str,
        concurrency: str,
        workers: str | None,
        log_level: str,
        json_output: bool,
        state_dir: str | None = None,
    ) -> RunSettings:
        """Validate the command line's text values; errors name the flag."""
        return cls(
            options=options,
            env_names=tuple(env_names),
            script_timeout=_positive("--script-timeout", script_timeout, float, MAX_SECONDS),
            memory_limit_mib=_positive("--memory-limit", memory_limit, int, 1 << 20),
            instruction_limit=_positive("--instruction-limit", instruction_limit, int, 10**6)
            * 1_000_000,
            max_sessions=_positive("--max-sessions", max_sessions, int, 10**6),
            concurrency=_positive("--concurrency", concurrency, int, 10**6),
            workers=0 if workers is None else _positive("--workers", workers, int, 1024),
            log_level=log_level,
            json_output=json_output,
            state_dir=Path(state_dir) if state_dir else None,
        )

    def worker_count(self) -> int:
        """The worker processes to start: ``workers``, or one per core."""
        return self.workers or os.cpu_count() or 1

    def limits(self, *, script_timeout: float | None = None) -> ScriptLimits:
        """The per-script bounds, with the messages a script that hits them gets;
        ``script_timeout`` replaces the run's time limit (a :class:`Job`'s own)."""
        seconds = self.script_timeout if script_timeout is None else script_timeout
        return ScriptLimits(
            memory=self.memory_limit_mib * 1024 * 1024,
            instructions=self.instruction_limit,
            seconds=seconds,
            memory_message=f"script exceeded its memory limit of {self.memory_limit_mib} MiB",
            cpu_message="script exceeded its CPU limit of "
            f"{self.instruction_limit // 1_000_000} million instructions",
            time_message=f"script exceeded its time limit of {seconds:g}s",
        )


@dataclass(frozen=True, slots=True)
class Job:
    """One script to run: ``source`` when given, else the file at ``path``.

    ``name`` is what its lines and record carry. The path ``-`` is standard input,
    which the supervisor reads (workers have none).

    The other fields, when given, replace the run's settings for this script alone
    (the agent's monitors each have their own): ``environment`` what ``os.getenv``
    sees, ``script_timeout`` its time limit in seconds, ``options`` its call
    defaults (``timeout``, ``cafile``, ``insecure``, ...) for ``ws`` and ``http``;
    ``output_limit`` ``(lines, characters)``: the last lines it prints or logs that
    are kept, each cut at ``characters``, after one line saying how many earlier
    ones were not (default: all, within its memory limit); ``value_limit``: the most
    characters of its value and error its record carries (what is cut is said), and
    then no raw ``result`` — so a script returning 8 MiB sends no 8 MiB to anyone."""

    name: str
    path: str | None = None
    source: bytes | None = None
    environment: Mapping[str, str] | None = None
    script_timeout: float | None = None
    options: Options | None = None
    output_limit: tuple[int, int] | None = None
    value_limit: int | None = None

    def __reduce__(self) -> tuple[type[Job], tuple[Any, ...]]:
        # Down a worker's pipe by position: a slotted dataclass otherwise pickles
        # through its fields, several times slower.
        return Job, _job_fields(self)


_job_fields = operator.attrgetter(*(field.name for field in fields(Job)))


def read_script(
    path: str, limits: ScriptLimits, deadline: float, stop: int | None = None
) -> bytes | Failed:
    """The script's source, or why it cannot be read (``cannot read script: ...``).

    Never blocks past ``deadline``: a FIFO with no writer, a terminal or a pipe
    that never ends is read without blocking, and gives up at the deadline, or as
    soon as the descriptor ``stop`` becomes readable (``interrupted``). A script
    larger than half its memory limit is refused (compiling it would not fit)."""
    largest = limits.memory // 2
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        return Failed(f"cannot read script: {_reason(exc)}")
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            return Failed("cannot read script: is a directory")
        if stat.S_ISREG(info.st_mode) and info.st_size > largest:
            return Failed(f"cannot read script: larger than {largest >> 20} MiB")
        chunks: list[bytes] = []
        size = 0
        # A FIFO reads as empty until its writer comes: wait for it to be readable.
        wait = stat.S_ISFIFO(info.st_mode)
        while True:
            if wait:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return Failed(limits.time_message)
                ready = select.select([fd] if stop is None else [fd, stop], [], [], remaining)[0]
                if stop is not None and stop in ready:
                    return Failed("interrupted")
                if not ready:
                    continue
            try:
                chunk = os.read(fd, 1 << 20)
            except BlockingIOError:
                wait = True
                continue
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > largest:
                return Failed(f"cannot read script: larger than {largest >> 20} MiB")
            chunks.append(chunk)
    except OSError as exc:
        return Failed(f"cannot read script: {_reason(exc)}")
    finally:
        os.close(fd)


def named(name: str, failed: Failed) -> Failed:
    """``read_script``'s failure as a record's error: a file that cannot be read
    names the script (``check.lua: cannot read script: ...``), a limit does not."""
    if failed.message.startswith("cannot read script:"):
        return Failed(f"{name}: {failed.message}", compiled=False)
    return failed


def _reason(exc: OSError) -> str:
    if exc.errno == errno.EISDIR:
        return "is a directory"
    return (exc.strerror or str(exc)).lower()


def _positive(flag: str, text: str, kind: type[int] | type[float], maximum: int | float) -> Any:
    # Bounded above: lupa and Lua keep these in 64-bit integers and C clocks.
    try:
        value = kind(text)
    except ValueError:
        raise InvalidOption(flag, f'"{text}" is not a number') from None
    if not value > 0:
        raise InvalidOption(flag, f"must be positive, got {text}")
    if value > maximum:
        raise InvalidOption(flag, f"must be at most {maximum:.15g}, got {text}")
    return value
