"""Scripts in supervised worker processes: nothing one script does stops the others.

A :class:`Supervisor` starts worker processes (:mod:`.worker`, one per core unless
told), hands each script to the least busy one, and collects its outcome and the
lines it printed. It watches every worker through the *board*, memory shared with
it where each step thread marks the script it runs and that script's deadline:

- a step still running :data:`GRACE` seconds after its script's deadline (stuck in
  a C function, the parser, or Python code the CPU guard cannot see) gets its worker
  killed: the script named on the board fails with its time-limit message;
- a worker whose event loop has not written its heartbeat for :data:`STALL` seconds
  is killed too;
- a worker that dies on its own (a crash, an abort, the kernel's OOM killer) fails
  the scripts whose steps were running at that moment, read from the board it left.

The other scripts that were on a lost worker run again on a fresh one, once; their
record says so (``rerun``), and since a worker sends a script's lines only with its
outcome, nothing of their first run was shown. A script whose second worker is
lost too fails. Used by ``wsprobe run`` (:func:`run_all`) and by any asyncio
program: ``async with Supervisor(settings) as supervisor: await supervisor.run(job)``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import itertools
import json
import math
import mmap
import os
import pickle
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from ..errors import Error
from ..models import Timings
from ..services.cache import OPERATIONS, Cache
from .output import Line, Output, ScriptOutcome
from .runner import Job, RunSettings, named, read_script
from .worker import HEADER, board_size, read_slot

__all__ = ["GRACE", "STALL", "STEP_THREADS", "Finished", "Supervisor", "run_all"]

#: How long a Lua step may run past its script's deadline before its worker is killed.
GRACE = 0.5
#: How long a worker's event loop may go without a heartbeat before it is killed.
STALL = 5.0
#: Lua steps one worker runs at once (each on its own thread).
STEP_THREADS = 64
_WATCH_EVERY = 0.05

Finished = tuple[ScriptOutcome, list[Line]]
"""A script's outcome and the lines it printed and logged, in order."""


@dataclasses.dataclass(eq=False)
class _Pending:
    # job.id is the supervisor's own number for it (callers' ids need not be unique).
    job: Job
    future: asyncio.Future[Finished]
    rerun: str | None = None


@dataclasses.dataclass(eq=False)
class _Worker:
    process: asyncio.subprocess.Process
    board: mmap.mmap
    running: dict[int, _Pending] = dataclasses.field(default_factory=dict)
    culprits: set[int] = dataclasses.field(default_factory=set)
    killed: str | None = None
    reader: asyncio.Task[None] | None = None


class Supervisor:
    """Runs scripts in worker processes it watches, restarts and replaces.

    ``settings`` are the run's (limits, options, ``workers``, ``concurrency``, the
    scripts in flight across all workers); ``workers`` overrides their count.
    Every :meth:`run` returns exactly once with the script's outcome, whatever
    happens to the workers.
    """

    def __init__(self, settings: RunSettings, *, workers: int | None = None) -> None:
        self._settings = settings
        self._count = workers or settings.worker_count()
        self._per_worker = max(1, math.ceil(settings.concurrency / self._count))
        self._workers: list[_Worker] = []
        self._queue: collections.deque[_Pending] = collections.deque()
        self._closing = False
        self._watchdog: asyncio.Task[None] | None = None
        self._starting: set[asyncio.Task[None]] = set()
        self._numbers = itertools.count(1)
        # The run's cache: the scripts of every worker share it through their pipes.
        self._cache = Cache()
        self._cache_calls: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Supervisor:
        await self.start()
        return self

    async def start(self) -> None:
        """Start the workers and the watchdog (``async with`` does it); scripts
        handed to :meth:`run` before wait for the workers."""
        await asyncio.gather(*(self._start_worker() for _ in range(self._count)))
        self._watchdog = asyncio.create_task(self._watch())

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def run(self, job: Job) -> Finished:
        """Run ``job`` on a worker; return its outcome and its lines. ``job.id`` is
        not used: the supervisor numbers the scripts it runs itself."""
        if job.path == "-" and job.source is None:
            # Standard input is the supervisor's, read off the event loop, bounded.
            limits = self._settings.limits(script_timeout=job.script_timeout)
            deadline = time.monotonic() + limits.seconds
            source = await asyncio.to_thread(read_script, "/dev/stdin", limits, deadline)
            if not isinstance(source, bytes):
                error = named(job.name, source).message
                return ScriptOutcome(job.name, ok=False, error=error, status="unknown"), []
            job = dataclasses.replace(job, path=None, source=source)
        job = dataclasses.replace(job, id=next(self._numbers))
        pending = _Pending(job, asyncio.get_running_loop().create_future())
        if self._closing:
            self._finish(pending, _interrupted(job))
        else:
            self._queue.append(pending)
            self._dispatch()
        return await pending.future

    def set_concurrency(self, concurrency: int) -> None:
        """Bound the scripts in flight across the workers by ``concurrency`` from now
        on; scripts already running go on. (Workers keep deciding whether to compact
        waiting scripts by the settings they started with.)"""
        self._per_worker = max(1, math.ceil(concurrency / self._count))
        self._dispatch()

    def interrupt(self) -> None:
        """Stop at once: every script not finished yet ends ``interrupted``."""
        self._closing = True
        for worker in self._workers:
            self._kill(worker, "interrupted")
            for pending in worker.running.values():
                self._finish(pending, _interrupted(pending.job))
            worker.running.clear()
        while self._queue:
            pending = self._queue.popleft()
            self._finish(pending, _interrupted(pending.job))

    async def close(self) -> None:
        """Stop the workers (scripts still running end ``interrupted``)."""
        self._closing = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        for task in [*self._starting, *self._cache_calls]:
            task.cancel()
        readers = [worker.reader for worker in self._workers if worker.reader is not None]
        if not self._queue and not any(worker.running for worker in self._workers):
            # Idle workers leave on their own when their input ends.
            for worker in self._workers:
                assert worker.process.stdin is not None
                worker.process.stdin.close()
            if readers:
                await asyncio.wait(readers, timeout=1)
        self.interrupt()
        await asyncio.gather(*readers, *self._starting, return_exceptions=True)

    # --- workers ---

    async def _start_worker(self) -> None:
        fd = os.memfd_create("wsprobe-board")
        try:
            os.ftruncate(fd, board_size(STEP_THREADS))
            board = mmap.mmap(fd, board_size(STEP_THREADS))
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "wsprobe.lua.worker",
                str(fd),
                str(STEP_THREADS),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                pass_fds=(fd,),
                limit=1 << 30,
            )
        finally:
            os.close(fd)
        worker = _Worker(process, board)
        self._send(worker, self._settings)
        self._workers.append(worker)
        worker.reader = asyncio.create_task(self._read(worker))
        if self._closing:
            self._kill(worker, "interrupted")
        self._dispatch()

    def _replace(self) -> None:
        task = asyncio.create_task(self._start_worker())
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _read(self, worker: _Worker) -> None:
        assert worker.process.stdout is not None
        try:
            async for line in worker.process.stdout:
                record = json.loads(line)
                if "cache" in record:
                    self._cache_call(worker, record["cache"])
                    continue
                job_id, finished = _parse(record)
                pending = worker.running.pop(job_id, None)
                if pending is not None:
                    outcome, lines = finished
                    outcome.name, outcome.rerun = pending.job.name, pending.rerun
                    self._finish(pending, (outcome, lines))
                self._dispatch()
        except (ValueError, TypeError, KeyError):
            self._kill(worker, "it sent a malformed record")
        await self._lost(worker)

    async def _lost(self, worker: _Worker) -> None:
        code = await worker.process.wait()
        self._workers.remove(worker)
        reason = worker.killed or _describe(code)
        # A worker that died on its own: the steps running then are the suspects.
        crashed = set()
        if worker.killed is None:
            slots = (read_slot(worker.board, slot) for slot in range(STEP_THREADS))
            crashed = {slot[0] for slot in slots if slot is not None}
        worker.board.close()
        requeue = []
        for job_id, pending in worker.running.items():
            if job_id in worker.culprits:
                limits = self._settings.limits(script_timeout=pending.job.script_timeout)
                self._finish(pending, self._failed(pending, limits.time_message))
            elif job_id in crashed:
                self._finish(
                    pending, self._failed(pending, f"script crashed its worker ({reason})")
                )
            elif pending.rerun is None:
                pending.rerun = f"its first worker was lost: {reason}"
                requeue.append(pending)
            else:
                message = f"script lost its worker twice: {reason}"
                self._finish(pending, self._failed(pending, message))
        worker.running.clear()
        self._queue.extendleft(reversed(requeue))
        if not self._closing:
            self._replace()

    def _kill(self, worker: _Worker, reason: str) -> None:
        if worker.killed is None:
            worker.killed = reason
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(_WATCH_EVERY)
            now = time.monotonic()
            for worker in self._workers:
                if worker.killed is not None:
                    continue
                overdue = set()
                for slot in range(STEP_THREADS):
                    marked = read_slot(worker.board, slot)
                    if marked is not None and now > marked[1] + GRACE:
                        overdue.add(marked[0])
                if overdue:
                    worker.culprits = overdue
                    self._kill(worker, "a script on it overran its time limit")
                    continue
                heartbeat = HEADER.unpack_from(worker.board, 0)[0]
                if heartbeat and now - heartbeat > STALL:
                    self._kill(worker, "its event loop stopped responding")

    # --- scripts ---

    def _dispatch(self) -> None:
        while self._queue:
            ready = [
                worker
                for worker in self._workers
                if worker.killed is None and len(worker.running) < self._per_worker
            ]
            if not ready:
                return
            worker = min(ready, key=lambda candidate: len(candidate.running))
            pending = self._queue.popleft()
            worker.running[pending.job.id] = pending
            self._send(worker, pending.job)

    @staticmethod
    def _send(worker: _Worker, value: object) -> None:
        assert worker.process.stdin is not None
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        with contextlib.suppress(ConnectionError):
            worker.process.stdin.write(len(data).to_bytes(4, "big") + data)

    @staticmethod
    def _failed(pending: _Pending, message: str) -> Finished:
        outcome = ScriptOutcome(
            pending.job.name, ok=False, error=message, status="critical", rerun=pending.rerun
        )
        return outcome, []

    def _finish(self, pending: _Pending, finished: Finished) -> None:
        # However a script ended, its marks in the cache end with it.
        self._cache.release(pending.job.id)
        if not pending.future.done():
            pending.future.set_result(finished)

    def _cache_call(self, worker: _Worker, request: list[Any]) -> None:
        number, operation, key, owner, *args = request
        if not (
            isinstance(number, int)
            and operation in OPERATIONS
            and isinstance(key, str)
            and isinstance(owner, int)
        ):
            raise ValueError("a malformed cache request")
        task = asyncio.create_task(self._answer(worker, number, operation, key, owner, args))
        self._cache_calls.add(task)
        task.add_done_callback(self._cache_calls.discard)

    async def _answer(
        self, worker: _Worker, number: int, operation: str, key: str, owner: int, args: list[Any]
    ) -> None:
        try:
            value = await self._cache.call(operation, key, owner, *args)
        except Error as exc:
            self._send(worker, ("cache", number, False, str(exc)))
        except (ValueError, TypeError):
            self._kill(worker, "it sent a malformed cache request")
        else:
            self._send(worker, ("cache", number, True, value))


def _interrupted(job: Job) -> Finished:
    return ScriptOutcome(job.name, ok=False, error="interrupted", status="unknown"), []


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def _parse(record: dict[str, Any]) -> tuple[int, Finished]:
    # What a worker sends is checked like any input: a malformed record kills it.
    error, status, signal = record["error"], record["status"], record["signal"]
    if not isinstance(error, str | None) or not isinstance(signal, str | None):
        raise TypeError("error")
    if status not in ("ok", "warning", "critical", "unknown"):
        raise ValueError("status")
    outcome = ScriptOutcome(
        "",
        ok=bool(record["ok"]),
        result=record["result"],
        error=error,
        duration=float(record["duration"]),
        status=status,
        value=record["value"],
        signal=signal,
        calls=[_timings(*phases) for phases in record["calls"]],
    )
    lines = [Line(str(kind), str(text), float(at)) for kind, text, at in record["lines"]]
    return int(record["id"]), (outcome, lines)


def _timings(
    dns: float, connect: float, tls: float | None, upgrade: float, reply: float, total: float
) -> Timings:
    return Timings(
        float(dns),
        float(connect),
        None if tls is None else float(tls),
        float(upgrade),
        float(reply),
        float(total),
    )


async def run_all(
    jobs: Sequence[Job], settings: RunSettings, output: Output
) -> tuple[list[ScriptOutcome], int]:
    """Run ``jobs``, writing each script's lines and record as it ends; return the
    outcomes and the number of the signal (SIGINT, SIGTERM) that interrupted the
    run, or 0. Output errors propagate (the workers are stopped first)."""
    loop = asyncio.get_running_loop()
    received: list[int] = []
    outcomes: list[ScriptOutcome] = []
    async with Supervisor(settings, workers=min(settings.worker_count(), len(jobs))) as supervisor:

        def stop(number: int) -> None:
            received.append(number)
            supervisor.interrupt()

        handled = []
        for number in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(number, stop, int(number))
                handled.append(number)
        try:
            tasks = [asyncio.create_task(supervisor.run(job)) for job in jobs]
            for finished in asyncio.as_completed(tasks):
                outcome, lines = await finished
                output.lines(outcome.name, lines)
                output.finished(outcome)
                outcomes.append(outcome)
        finally:
            for number in handled:
                loop.remove_signal_handler(number)
    return outcomes, received[0] if received else 0
