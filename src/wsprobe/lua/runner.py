"""``wsprobe run``: many Lua scripts at once on one event loop, each bounded.

Each script is a coroutine in its own Lua state; a ``ws`` call yields to this
module, which has the registry perform it on the event loop and resumes the script
with the reply or the error. A script waiting on a slow server costs a socket, not
a thread.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar

from ..errors import InvalidOption
from ..options import Options
from ..services.shared import RunServices
from . import result as verdicts
from .output import Output, ScriptOutcome
from .registry import IN_PLACE, ScriptContext, serve
from .runtime import Done, Failed, LuaScript, Request, ScriptLimits, Step

__all__ = [
    "RunSettings",
    "ScriptOutcome",
    "run_event_loop",
    "run_outcomes",
    "run_script",
    "run_scripts",
]

T = TypeVar("T")

# From this many scripts in flight, each waiting script's Lua state is compacted.
_COMPACT_FROM = 1000


@dataclass(frozen=True, slots=True)
class RunSettings:
    """Everything ``wsprobe run`` was told, validated."""

    options: Options
    env_names: tuple[str, ...] = ()
    script_timeout: float = 60.0
    memory_limit_mib: int = 64
    instruction_limit: int = 100_000_000
    concurrency: int = 200
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
        concurrency: str,
        log_level: str,
        json_output: bool,
        state_dir: str | None = None,
    ) -> RunSettings:
        """Validate the command line's text values; errors name the flag."""
        return cls(
            options=options,
            env_names=tuple(env_names),
            script_timeout=_positive("--script-timeout", script_timeout, float),
            memory_limit_mib=_positive("--memory-limit", memory_limit, int),
            instruction_limit=_positive("--instruction-limit", instruction_limit, int) * 1_000_000,
            concurrency=_positive("--concurrency", concurrency, int),
            log_level=log_level,
            json_output=json_output,
            state_dir=Path(state_dir) if state_dir else None,
        )

    def limits(self) -> ScriptLimits:
        """The per-script bounds, with the messages a script that hits them gets."""
        return ScriptLimits(
            memory=self.memory_limit_mib * 1024 * 1024,
            instructions=self.instruction_limit,
            seconds=self.script_timeout,
            memory_message=f"script exceeded its memory limit of {self.memory_limit_mib} MiB",
            cpu_message="script exceeded its CPU limit of "
            f"{self.instruction_limit // 1_000_000} million instructions",
            time_message=f"script exceeded its time limit of {self.script_timeout:g}s",
        )


def run_scripts(
    paths: Sequence[str], settings: RunSettings, *, stdout: TextIO, stderr: TextIO
) -> int:
    """Run every script; return 0 when all succeeded, 1 otherwise."""
    outcomes = run_outcomes(paths, settings, stdout=stdout, stderr=stderr)
    return 0 if all(outcome.ok for outcome in outcomes) else 1


def run_outcomes(
    paths: Sequence[str], settings: RunSettings, *, stdout: TextIO, stderr: TextIO
) -> list[ScriptOutcome]:
    """Run every script, writing as :func:`run_scripts` does; return how each ended."""
    output = Output(
        paths,
        json_output=settings.json_output,
        log_level=settings.log_level,
        stdout=stdout,
        stderr=stderr,
    )
    return run_event_loop(_run_all(paths, settings, output))


def run_event_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to its end on a new event loop: uvloop's when installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


async def _run_all(
    paths: Sequence[str], settings: RunSettings, output: Output
) -> list[ScriptOutcome]:
    context = _Context(settings, output)
    outcomes: list[ScriptOutcome | None] = [None] * len(paths)
    services = RunServices(settings.options, state_dir=settings.state_dir)
    queue = iter(enumerate(paths))

    # A fixed set of workers rather than a task per script: thousands of scripts
    # queued behind a semaphore would cost a task and a wake-up each.
    async def worker() -> None:
        for index, path in queue:
            outcome = await _run_one(path, context, services)
            output.finished(outcome)
            outcomes[index] = outcome

    try:
        await asyncio.gather(*(worker() for _ in range(min(settings.concurrency, len(paths)))))
    finally:
        await services.close()
    return [outcome for outcome in outcomes if outcome is not None]


class _Context:
    """What every script of a run shares, computed once."""

    def __init__(self, settings: RunSettings, output: Output) -> None:
        self.settings = settings
        self.output = output
        self.limits = settings.limits()
        self.environment = {
            name: os.environ[name] for name in settings.env_names if name in os.environ
        }


async def _run_one(path: str, run: _Context, services: RunServices) -> ScriptOutcome:
    output = run.output
    name = output.name_of(path)
    return await run_script(
        path,
        run.settings,
        name=name,
        environment=run.environment,
        write=functools.partial(output.write, name),
        log=functools.partial(output.log, name),
        limits=run.limits,
        services=services,
    )


async def run_script(
    path: str,
    settings: RunSettings,
    *,
    name: str,
    environment: Mapping[str, str],
    write: Callable[[str], None],
    log: Callable[[str, str], None],
    limits: ScriptLimits | None = None,
    services: RunServices | None = None,
) -> ScriptOutcome:
    """Run one script to its end within ``settings``' limits; never raises for the script.

    ``write`` gets each printed line, ``log`` a level and a line; ``environment`` is
    what ``os.getenv`` sees. ``limits`` defaults to ``settings.limits()``.
    ``services`` (store, cache, HTTP client) are shared with other scripts when
    given; else the script gets its own, closed when it ends.
    """
    if services is None:
        own = RunServices(settings.options, state_dir=settings.state_dir)
        try:
            return await run_script(
                path,
                settings,
                name=name,
                environment=environment,
                write=write,
                log=log,
                limits=limits,
                services=own,
            )
        finally:
            await own.close()
    limits = settings.limits() if limits is None else limits
    started = time.monotonic()
    try:
        with open("/dev/stdin" if path == "-" else path, "rb") as file:
            source = file.read()
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        error = f"{name}: cannot read script: {reason}"
        return ScriptOutcome(name, ok=False, error=error, status="unknown")
    context = ScriptContext(name, settings.options, write=write, log=log, services=services)
    script = context.script = LuaScript(
        name,
        source,
        limits=limits,
        environment=environment,
        host={op.name: functools.partial(op.handler, context) for op in IN_PLACE.values()},
        ident=context.ident,
    )
    step: Step
    try:
        async with asyncio.timeout(settings.script_timeout):
            step = script.start()
            if isinstance(step, Request) and settings.concurrency >= _COMPACT_FROM:
                # Thousands of scripts waiting at once: memory, not CPU, is the limit.
                script.compact()
            while isinstance(step, Request):
                step = await serve(context, step)
    except TimeoutError:
        step = Failed(limits.time_message)
    finally:
        # Whatever the outcome, no session outlives its script, nor its cache marks.
        await context.close_sessions()
        services.cache.release(context)
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


def _positive(flag: str, text: str, kind: type[int] | type[float]) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise InvalidOption(flag, f'"{text}" is not a number') from None
    if not value > 0:
        raise InvalidOption(flag, f"must be positive, got {text}")
    return value
