"""``wsprobe run``: many scripts, each bounded, in supervised worker processes.

The top of the Lua pipeline. :func:`run_scripts` makes a :class:`~.job.Job` of
each script, hands them to a :class:`~.supervisor.Supervisor`, whose worker
processes (:mod:`.worker`) run each with :func:`~.execute.run_one`, and writes each
script's lines and record (:mod:`.output`) as it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Sequence
from typing import TextIO

from .eventloop import run_event_loop
from .job import Job, RunSettings
from .output import Output, ScriptOutcome
from .supervisor import Finished, Supervisor

__all__ = ["RunSettings", "run_all", "run_outcomes", "run_scripts", "workers_for"]


def workers_for(settings: RunSettings, scripts: int) -> int:
    """The worker processes a run of ``scripts`` scripts starts (no more than scripts)."""
    return min(settings.worker_count(), scripts)


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
    output = Output(
        paths,
        json_output=settings.json_output,
        log_level=settings.log_level,
        stdout=stdout,
        stderr=stderr,
    )
    jobs = [Job(output.name_of(path), path=path) for path in paths]
    return run_event_loop(run_all(jobs, settings, output))


async def run_all(
    jobs: Sequence[Job], settings: RunSettings, output: Output
) -> tuple[list[ScriptOutcome], int]:
    """Run ``jobs``, writing each script's lines and record as it ends; return the
    outcomes and the number of the signal (SIGINT, SIGTERM) that interrupted the
    run, or 0. Output errors propagate (the workers are stopped first)."""
    loop = asyncio.get_running_loop()
    received: list[int] = []
    outcomes: list[ScriptOutcome] = []
    async with Supervisor(settings, workers=workers_for(settings, len(jobs))) as supervisor:

        def stop(number: int) -> None:
            received.append(number)
            supervisor.interrupt()

        handled = []
        for number in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(number, stop, int(number))
                handled.append(number)
        try:
            # The scripts that ended since the last turn are written together, with
            # one flush: a callback per script, no task per script.
            ended: list[asyncio.Future[Finished]] = []
            wake: list[asyncio.Future[None]] = []

            def end(future: asyncio.Future[Finished]) -> None:
                ended.append(future)
                if wake and not wake[0].done():
                    wake[0].set_result(None)

            for job in jobs:
                if job.path == "-" and job.source is None:
                    # Standard input is read by Supervisor.run, off the loop.
                    future: asyncio.Future[Finished] = asyncio.ensure_future(supervisor.run(job))
                else:
                    future = supervisor.submit(job)
                future.add_done_callback(end)
            while len(outcomes) < len(jobs):
                if not ended:
                    wake[:] = [loop.create_future()]
                    await wake[0]
                batch, ended[:] = ended[:], []
                for finished in batch:
                    outcome, lines = finished.result()
                    output.lines(outcome.name, lines)
                    output.finished(outcome)
                    outcomes.append(outcome)
                output.flush()
        finally:
            for number in handled:
                loop.remove_signal_handler(number)
    return outcomes, received[0] if received else 0
