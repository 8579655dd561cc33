"""One script from its source to its outcome: :func:`run_one`, in a worker or in-process.

A ``ws`` call yields to the event loop, which has the registry perform it and
resumes the script with the reply or the error; a script waiting on a slow server
costs a socket, not a thread. Every Lua step goes through a *step runner*: a
worker (:mod:`.worker`) runs each on one of its watched step threads (lupa
releases the GIL while Lua runs, so a script that computes does not hold up the
others on the same loop); :func:`inline_step` runs it right on the loop, for a
script run in-process, without a worker.
"""

from __future__ import annotations

import asyncio
import collections
import os
import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from ..errors import ScriptCallError
from ..redaction import cut
from . import result as verdicts
from .job import Job, RunSettings, named, read_script
from .output import Line, ScriptOutcome
from .registry import IN_PLACE, ScriptContext, StepRunner, serve
from .runtime import Done, Failed, LuaScript, Request, ScriptLimits, Step

if TYPE_CHECKING:
    from ..services.shared import RunServices

__all__ = ["SESSION_BYTES", "RunContext", "inline_step", "run_collected", "run_one"]

# From this many scripts in flight (--concurrency), each waiting script's Lua
# state is compacted.
_COMPACT_FROM = 1000

#: What Python holds for one open session (protocol state, buffers, transport), an
#: estimate charged against the memory limit: a script waiting on one connection
#: holds about 85 KB in all, its Lua state included (`make bench`, part 6).
SESSION_BYTES = 64 * 1024


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
        self.host = {op.name.encode(): op.handler for op in IN_PLACE.values()}

    def limits_of(self, job: Job) -> ScriptLimits:
        """``job``'s bounds: the run's, with its own time limit when it has one."""
        if job.script_timeout is None:
            return self.limits
        return self.settings.limits(script_timeout=job.script_timeout)


async def inline_step(function: Callable[..., Any], *args: Any) -> Any:
    """A step runner that runs each Lua step on the event loop itself: for a script
    run in-process, whose steps no supervisor watches (the CPU and time guard
    inside the Lua state still bound them)."""
    return function(*args)


async def run_collected(
    job: Job,
    run: RunContext,
    *,
    run_step: StepRunner,
    services: RunServices,
    owner: Hashable | None = None,
) -> tuple[ScriptOutcome, list[Line]]:
    """:func:`run_one`, keeping what the script printed and logged until it ends: its
    outcome and its lines, in order. The lines count against its memory limit; an
    error of ours still gives the script its outcome (``internal error: ...``).

    With the job's ``output_limit``, only the last lines are kept (each cut), after
    one line counting the earlier ones: a script printing in a loop costs nothing more."""
    lines_kept, characters = job.output_limit or (None, None)
    lines: collections.deque[Line] = collections.deque(maxlen=lines_kept)
    dropped = 0
    limits = run.limits_of(job)
    budget = [limits.memory]

    def keep(kind: str, text: str) -> None:
        nonlocal dropped
        if characters is not None and len(text) > characters:
            text = text[:characters] + "…"
        # Buffered output counts against the memory limit like the rest.
        budget[0] -= len(text)
        if budget[0] < 0:
            raise ScriptCallError(limits.memory_message)
        if len(lines) == lines.maxlen:
            budget[0] += len(lines[0].text)
            dropped += 1
        lines.append(Line(kind, text, time.time()))

    try:
        outcome = await run_one(
            job,
            run,
            run_step=run_step,
            write=lambda text: keep("print", text),
            log=keep,
            services=services,
            owner=owner,
        )
    except Exception as exc:  # a bug of ours: the script still gets its record
        error = f"internal error: {type(exc).__name__}: {exc}"
        outcome = ScriptOutcome(job.name, ok=False, error=error, status="critical")
    said = [Line("print", f"… {dropped} earlier lines", lines[0].at)] if dropped else []
    return outcome, [*said, *lines]


async def run_one(
    job: Job,
    run: RunContext,
    *,
    run_step: StepRunner,
    write: Callable[[str], None],
    log: Callable[[str, str], None],
    services: RunServices,
    owner: Hashable | None = None,
) -> ScriptOutcome:
    """Run one script from its source to its outcome, within its limits.

    Every Lua step (the first also reads the script's file) goes through ``run_step``; the
    wall-clock limit bounds the waits in between. ``services`` (store, cache, HTTP
    client) are shared with the other scripts of the process; ``owner`` names the
    script to the cache (unique among the scripts sharing it; by default the script
    itself). Whatever the outcome, the script's sessions are closed and its cache
    marks released before this returns; its record carries its state and value
    (:mod:`.result`). What ``job`` carries of its own (environment, time limit,
    options) wins over ``run``'s."""
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
        owner=owner,
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
        # Whatever the outcome, no session outlives its script, nor its cache marks,
        # nor its Lua state.
        await context.close_sessions()
        services.cache.release(context.owner)
        if context.script is not None:
            context.script.close()
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
    value, error = verdict.value, verdict.error
    if job.value_limit is not None:
        # Cut here, in the worker: what is cut never crosses a pipe.
        result = None
        value = cut(value, job.value_limit) if isinstance(value, str) else value
        error = None if error is None else cut(error, job.value_limit)
    return ScriptOutcome(
        name,
        ok=verdict.error is None,
        result=result,
        error=error,
        duration=duration,
        status=verdict.status,
        value=value,
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
        host=run.host,
        subject=context,
        ident=context.ident,
    )
    return script.start()
