"""A worker process of ``wsprobe run`` (``python -m wsprobe.lua.worker``): one event
loop running many scripts with :func:`~.runner.run_one`, watched by the supervisor.

The supervisor writes frames to the worker's standard input (a 4-byte length, then
a pickle: first the :class:`~.runner.RunSettings`, then :class:`~.runner.Job`\\ s)
and reads one JSON object per finished script from its standard output. Pickles
only go down, from the supervisor to its own child; what comes up is JSON, parsed
as untrusted data.

Each Lua step runs on one of the worker's step threads. While it runs, the thread's
slot on the *board* (shared memory the supervisor maps too) holds the script's id
and its deadline, and the loop writes a heartbeat there: the supervisor reads the
board to find a step that overran its script's deadline, and which script it was.
A script's printed and logged lines are kept here until it ends and sent with its
outcome, so a worker that is lost has shown nothing of the scripts it ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import json
import mmap
import os
import pickle
import resource
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import ScriptCallError
from .output import Line, ScriptOutcome
from .registry import StepRunner
from .runner import Job, RunContext, RunSettings, event_loop_run, run_one

__all__ = ["HEADER", "SLOT", "board_size", "main", "read_slot"]

#: The board: the loop's heartbeat (a double, monotonic time), then one slot per
#: step thread: the script's id (int64) and its deadline (double; 0 when idle).
HEADER = struct.Struct("<d")
SLOT = struct.Struct("<qd")
_DEADLINE = struct.Struct("<d")
HEARTBEAT_EVERY = 0.1


def board_size(slots: int) -> int:
    """Bytes of a board with ``slots`` step threads."""
    return HEADER.size + slots * SLOT.size


def read_slot(board: Any, slot: int) -> tuple[int, float] | None:
    """The script id and deadline of a step running in ``slot``, or None when idle.

    The worker writes the id, then the deadline, and clears the deadline when the
    step ends; reading the deadline again after the id tells a consistent pair."""
    offset = HEADER.size + slot * SLOT.size
    job, deadline = SLOT.unpack_from(board, offset)
    if not deadline or _DEADLINE.unpack_from(board, offset + 8)[0] != deadline:
        return None
    return job, deadline


class _Steps:
    """Runs Lua steps on the worker's step threads, each marked on the board."""

    def __init__(self, board: Any, slots: int) -> None:
        self._board = board
        self._local = threading.local()
        numbers = itertools.count()
        self._pool = ThreadPoolExecutor(
            slots, "lua-step", initializer=lambda: setattr(self._local, "slot", next(numbers))
        )

    def runner(self, job: int, deadline: float) -> StepRunner:
        loop = asyncio.get_running_loop()

        async def run_step(function: Callable[..., Any], *args: Any) -> Any:
            return await loop.run_in_executor(self._pool, self._run, job, deadline, function, args)

        return run_step

    def _run(self, job: int, deadline: float, function: Callable[..., Any], args: Any) -> Any:
        offset = HEADER.size + self._local.slot * SLOT.size
        SLOT.pack_into(self._board, offset, job, deadline)
        try:
            return function(*args)
        finally:
            _DEADLINE.pack_into(self._board, offset + 8, 0.0)


async def _serve(board: Any, slots: int) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 30)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", buffering=0)
    )
    writer, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(1, "wb", buffering=0))
    settings = await _frame(reader)
    assert isinstance(settings, RunSettings)
    run = RunContext(settings)
    steps = _Steps(board, slots)
    tasks: set[asyncio.Task[None]] = set()

    def beat() -> None:
        HEADER.pack_into(board, 0, time.monotonic())
        loop.call_later(HEARTBEAT_EVERY, beat)

    beat()

    async def one(job: Job) -> None:
        lines: list[Line] = []
        budget = [run.limits.memory]

        def keep(kind: str, text: str) -> None:
            # Buffered output counts against the memory limit like the rest.
            budget[0] -= len(text)
            if budget[0] < 0:
                raise ScriptCallError(run.limits.memory_message)
            lines.append(Line(kind, text, time.time()))

        outcome = await run_one(
            job,
            run,
            run_step=steps.runner(job.id, time.monotonic() + settings.script_timeout),
            write=lambda text: keep("print", text),
            log=keep,
            in_flight=len(tasks),
        )
        writer.write(_report(job, outcome, lines))

    while (job := await _frame(reader)) is not None:
        task = asyncio.create_task(one(job))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    # The supervisor closed our input: it has every result it wants.


def _report(job: Job, outcome: ScriptOutcome, lines: list[Line]) -> bytes:
    record = {
        "id": job.id,
        "ok": outcome.ok,
        "result": outcome.result,
        "error": outcome.error,
        "duration": outcome.duration,
        "lines": [[line.kind, line.text, line.at] for line in lines],
    }
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


async def _frame(reader: asyncio.StreamReader) -> Any:
    try:
        header = await reader.readexactly(4)
        return pickle.loads(await reader.readexactly(int.from_bytes(header, "big")))
    except asyncio.IncompleteReadError:
        return None


def _die_with_parent() -> None:
    # A worker must not outlive its supervisor, even stuck in a C call.
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def main(argv: list[str]) -> None:
    """``python -m wsprobe.lua.worker BOARD_FD SLOTS``: serve until input ends."""
    _die_with_parent()
    # Ctrl-C reaches the whole process group: the supervisor decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    board_fd, slots = int(argv[0]), int(argv[1])
    board = mmap.mmap(board_fd, board_size(slots))
    event_loop_run(_serve(board, slots))
    # Step threads may still be running (a script past its deadline): do not wait.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
