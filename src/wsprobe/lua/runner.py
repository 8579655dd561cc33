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
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from ..errors import InvalidOption
from ..options import MAX_SECONDS, Options
from .output import Output, ScriptOutcome
from .registry import IN_PLACE, ScriptContext, serve
from .runtime import Done, Failed, LuaScript, Request, ScriptLimits, Step

__all__ = ["RunSettings", "ScriptOutcome", "run_scripts"]

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
    ) -> RunSettings:
        """Validate the command line's text values; errors name the flag."""
        return cls(
            options=options,
            env_names=tuple(env_names),
            script_timeout=_positive("--script-timeout", script_timeout, float, MAX_SECONDS),
            memory_limit_mib=_positive("--memory-limit", memory_limit, int, 1 << 20),
            instruction_limit=_positive("--instruction-limit", instruction_limit, int, 10**6)
            * 1_000_000,
            concurrency=_positive("--concurrency", concurrency, int, 10**6),
            log_level=log_level,
            json_output=json_output,
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
    output = Output(
        paths,
        json_output=settings.json_output,
        log_level=settings.log_level,
        stdout=stdout,
        stderr=stderr,
    )
    outcomes = _event_loop_run(_run_all(paths, settings, output))
    return 0 if all(outcome.ok for outcome in outcomes) else 1


def _event_loop_run(
    coroutine: Coroutine[Any, Any, list[ScriptOutcome]],
) -> list[ScriptOutcome]:
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
    queue = iter(enumerate(paths))

    # A fixed set of workers rather than a task per script: thousands of scripts
    # queued behind a semaphore would cost a task and a wake-up each.
    async def worker() -> None:
        for index, path in queue:
            outcome = await _run_one(path, context)
            output.finished(outcome)
            outcomes[index] = outcome

    await asyncio.gather(*(worker() for _ in range(min(settings.concurrency, len(paths)))))
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


async def _run_one(path: str, run: _Context) -> ScriptOutcome:
    output, settings = run.output, run.settings
    name = output.name_of(path)
    started = time.monotonic()
    try:
        with open("/dev/stdin" if path == "-" else path, "rb") as file:
            source = file.read()
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        return ScriptOutcome(name, ok=False, error=f"{name}: cannot read script: {reason}")
    context = ScriptContext(
        name,
        settings.options,
        write=functools.partial(output.write, name),
        log=functools.partial(output.log, name),
    )
    script = context.script = LuaScript(
        name,
        source,
        limits=run.limits,
        environment=run.environment,
        host={op.name: functools.partial(op.handler, context) for op in IN_PLACE.values()},
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
        step = Failed(run.limits.time_message)
    finally:
        # Whatever the outcome, no session outlives its script.
        await context.close_sessions()
    duration = time.monotonic() - started
    if isinstance(step, Failed):
        return ScriptOutcome(name, ok=False, error=step.message, duration=duration)
    assert isinstance(step, Done)
    result = step.values[0] if step.values else None
    return ScriptOutcome(name, ok=True, result=result, duration=duration)


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
