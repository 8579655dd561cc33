"""Lua scripts, each bounded, in supervised worker processes: ``wsprobe run``'s, the agent's.

:func:`run_scripts` (``wsprobe run``) hands the scripts to a
:class:`~.supervisor.Supervisor`, whose worker processes (:mod:`.worker`) each run
many scripts on one event loop with :func:`run_one`, the one place that runs a
script from its file to its outcome.
A ``ws`` call yields to the worker's loop, which has the registry perform it and
resumes the script with the reply or the error; a script waiting on a slow server
costs a socket, not a thread. Each Lua step runs on a thread of the worker (lupa
releases the GIL while Lua runs), so a script that computes does not hold up the
others on the same loop.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import select
import stat
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from ..errors import InvalidOption
from ..options import MAX_SECONDS, Options
from . import result as verdicts
from .output import Output, ScriptOutcome
from .registry import IN_PLACE, ScriptContext, StepRunner, serve
from .runtime import Done, Failed, LuaScript, Request, ScriptLimits, Step

if TYPE_CHECKING:
    from ..services.shared import RunServices

__all__ = [
    "Job",
    "RunContext",
    "RunSettings",
    "ScriptOutcome",
    "named",
    "read_script",
    "run_event_loop",
    "run_one",
    "run_outcomes",
    "run_scripts",
]

T = TypeVar("T")

# From this many scripts in flight (--concurrency), each waiting script's Lua
# state is compacted.
_COMPACT_FROM = 1000

#: What Python holds for one open session (protocol state, buffers, transport), an
#: estimate charged against the memory limit: a script waiting on one connection
#: holds about 85 KB in all, its Lua state included (`make bench`, part 6).
SESSION_BYTES = 64 * 1024


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

    ``id`` is unique within a run; ``name`` is what its lines and record carry. The
    path ``-`` is standard input, which the supervisor reads (workers have none).

    The other fields, when given, replace the run's settings for this script alone
    (the agent's monitors each have their own): ``environment`` what ``os.getenv``
    sees, ``script_timeout`` its time limit in seconds, ``options`` its call
    defaults (``timeout``, ``cafile``, ``insecure``, ...) for ``ws`` and ``http``;
    ``output_limit`` ``(lines, characters)``: the last lines it prints or logs that
    are kept, each cut at ``characters``, after one line saying how many earlier
    ones were not (default: all, within its memory limit)."""

    id: int
    name: str
    path: str | None = None
    source: bytes | None = None
    environment: Mapping[str, str] | None = None
    script_timeout: float | None = None
    options: Options | None = None
    output_limit: tuple[int, int] | None = None


class RunContext:
    """What every script of a run shares, computed once per process.

    ``environment`` is what ``os.getenv`` sees unless a job brings its own: the
    variables the settings name (``--env``)."""

    def __init__(self, settings: RunSettings) -> None:
        self.settings = settings
        self.limits = settings.limits()
        self.environment = {
            name: os.environ[name] for name in settings.env_names if name in os.environ
        }
        self.host = {op.name: op.handler for op in IN_PLACE.values()}

    def limits_of(self, job: Job) -> ScriptLimits:
        """``job``'s bounds: the run's, with its own time limit when it has one."""
        if job.script_timeout is None:
            return self.limits
        return self.settings.limits(script_timeout=job.script_timeout)


def run_scripts(
    paths: Sequence[str], settings: RunSettings, *, stdout: TextIO, stderr: TextIO
) -> int:
    """Run every script; return 0 when all succeeded, 1 otherwise, 130 or 143 when
    interrupted by SIGINT or SIGTERM (every script still gets its record).

    Raises :class:`~.output.OutputError` when standard output or error cannot be written.
    """
    outcomes, signal_number = run_outcomes(paths, settings, stdout=stdout, stderr=stderr)
    if signal_number:
        return 128 + signal_number
    return 0 if all(outcome.ok for outcome in outcomes) else 1


def run_outcomes(
    paths: Sequence[str], settings: RunSettings, *, stdout: TextIO, stderr: TextIO
) -> tuple[list[ScriptOutcome], int]:
    """Run every script, writing as :func:`run_scripts` does; return how each ended
    and the number of the signal that interrupted the run (0 when none did)."""
    from .supervisor import run_all

    output = Output(
        paths,
        json_output=settings.json_output,
        log_level=settings.log_level,
        stdout=stdout,
        stderr=stderr,
    )
    jobs = [Job(index, output.name_of(path), path=path) for index, path in enumerate(paths)]
    return run_event_loop(run_all(jobs, settings, output))


def run_event_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to its end on a new event loop: uvloop's when installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


async def run_one(
    job: Job,
    run: RunContext,
    *,
    run_step: StepRunner,
    write: Callable[[str], None],
    log: Callable[[str, str], None],
    services: RunServices,
) -> ScriptOutcome:
    """Run one script from its source to its outcome, within its limits.

    Every Lua step (the first also reads the script's file) goes through ``run_step``; the
    wall-clock limit bounds the waits in between. ``services`` (store, cache, HTTP
    client) are shared with the other scripts of the process. Whatever the outcome,
    the script's sessions are closed and its cache marks released before this
    returns; its record carries its state and value (:mod:`.result`). What ``job``
    carries of its own (environment, time limit, options) wins over ``run``'s."""
    name, settings = job.name, run.settings
    limits = run.limits_of(job)
    started = time.monotonic()
    deadline = started + limits.seconds
    context = ScriptContext(
        name,
        settings.options if job.options is None else job.options,
        write=write,
        log=log,
        run_step=run_step,
        services=services,
        owner=job.id,
        max_sessions=settings.max_sessions,
        session_bytes=SESSION_BYTES,
    )
    step: Step
    try:
        async with asyncio.timeout_at(asyncio.get_running_loop().time() + limits.seconds):
            step = await run_step(_start, job, context, run, limits, deadline)
            if isinstance(step, Request) and settings.concurrency >= _COMPACT_FROM:
                # Thousands of scripts waiting at once: memory, not CPU, is the limit.
                context.lua.compact()
            while isinstance(step, Request):
                step = await serve(context, step)
    except TimeoutError:
        step = Failed(limits.time_message)
    finally:
        # Whatever the outcome, no session outlives its script, nor its cache marks.
        await context.close_sessions()
        services.cache.release(context.owner)
    duration = time.monotonic() - started
    result = None
    if isinstance(step, Failed):
        verdict = verdicts.of_failure(step.message, ran=step.compiled)
    else:
        assert isinstance(step, Done)
        if step.signal is not None:
            verdict = verdicts.of_signal(step.signal)
        else:
            result = step.values[0] if step.values else None
            verdict = verdicts.of_return(result)
    return ScriptOutcome(
        name,
        ok=verdict.error is None,
        result=result,
        error=verdict.error,
        duration=duration,
        status=verdict.status,
        value=verdict.value,
        signal=verdict.signal,
        calls=context.calls,
    )


def _start(
    job: Job, context: ScriptContext, run: RunContext, limits: ScriptLimits, deadline: float
) -> Step:
    # Reading the file, creating the state (it runs the prelude) and compiling and
    # running the script to its first request: one step, one trip to a step thread.
    source = job.source
    if source is None:
        assert job.path is not None
        read = read_script(job.path, limits, deadline)
        if isinstance(read, Failed):
            return named(job.name, read)
        source = read
    script = context.script = LuaScript(
        context.name,
        source,
        limits=limits,
        environment=run.environment if job.environment is None else job.environment,
        host={name: functools.partial(handler, context) for name, handler in run.host.items()},
        ident=context.ident,
    )
    return script.start()


def read_script(path: str, limits: ScriptLimits, deadline: float) -> bytes | Failed:
    """The script's source, or why it cannot be read (``cannot read script: ...``).

    Never blocks past ``deadline``: a FIFO with no writer, a terminal or a pipe
    that never ends is read without blocking, and gives up at the deadline. A
    script larger than half its memory limit is refused (compiling it would not fit)."""
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
                if not select.select([fd], [], [], remaining)[0]:
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
