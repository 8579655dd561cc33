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

A worker that dies before its event loop first beats (its interpreter or its
environment is broken: a ``MALLOC_CONF`` its allocator rejects, a missing module) is
replaced after a delay that doubles with each such death in a row, from
:data:`RESTART_DELAY` up to :data:`RESTART_DELAY_MAX`, with one log line each time:
a broken environment costs a start every few seconds, not a core.

A worker with a step past its deadline (its script has its record; the step may be
stuck in C) is given nothing more until the step ends or the worker is killed. The
other scripts that were on a lost worker run again, once; their record says so
(``rerun``), and since a worker sends a script's lines only with its outcome, nothing
of their first run was shown. A script whose second worker is lost too fails, so a
rerun shares its worker only with scripts that cannot take it down before its own
deadline: those whose deadline comes at most :data:`GRACE` before its own (a fresh
worker, often; scripts with shorter limits go elsewhere or wait, for at most
:data:`RERUN_SHIELD` seconds). A script whose caller stopped waiting before it was
handed over (a monitor a reload removed) is dropped.

Used by ``wsprobe run`` (:mod:`.runner`), the agent and any
asyncio program: ``async with Supervisor(settings) as supervisor: await
supervisor.run(job)``. What goes to and from a worker is :mod:`.wire`'s; the run's
cache is served by :mod:`.cacheserver`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import heapq
import itertools
import logging
import math
import mmap
import os
import signal
import sys
import time
from collections.abc import Mapping

from .allocator import jemalloc, worker_environment
from .cacheserver import CacheServer
from .job import Job, RunSettings, named, read_script
from .output import Line, ScriptOutcome
from .runtime import Failed
from .wire import Board, CacheAnswer, CacheCall, Outbox, Start, decode, frame, read_lines

__all__ = [
    "GRACE",
    "RERUN_SHIELD",
    "RESTART_DELAY",
    "RESTART_DELAY_MAX",
    "STALL",
    "STEP_THREADS",
    "Finished",
    "Supervisor",
    "files_needed",
]

#: How long a Lua step may run past its script's deadline before its worker is killed.
GRACE = 0.5
#: How long a rerun keeps scripts with shorter time limits off its worker (they wait
#: for it, and every script behind them too): at most this, whatever its own limit.
RERUN_SHIELD = 5.0
#: How long a worker's event loop may go without a heartbeat before it is killed.
STALL = 5.0
#: Lua steps one worker runs at once (each on its own thread).
STEP_THREADS = 64
_WATCH_EVERY = 0.05
#: The delay before replacing the second worker in a row that died before it started;
#: it doubles with each further one, up to :data:`RESTART_DELAY_MAX`.
RESTART_DELAY = 0.1
RESTART_DELAY_MAX = 5.0
#: Descriptors a process with a supervisor needs for itself (the standard streams,
#: the event loop's, the run's cache, a script read from standard input, the
#: agent's listener and store), and those each of its workers adds (its pipes).
FILES_BASE = 32
FILES_PER_WORKER = 4

_log = logging.getLogger(__name__)

Finished = tuple[ScriptOutcome, list[Line]]
"""A script's outcome and the lines it printed and logged, in order."""


@dataclasses.dataclass(eq=False, slots=True)
class _Pending:
    # number: the supervisor's own for the script (its board marks, record, cache marks).
    number: int
    job: Job
    future: asyncio.Future[Finished]
    rerun: str | None = None


@dataclasses.dataclass(eq=False)
class _Worker:
    process: asyncio.subprocess.Process
    memory: mmap.mmap
    board: Board
    # Starts and cache answers, sent as one frame per turn of the loop.
    outbox: Outbox
    running: dict[int, _Pending] = dataclasses.field(default_factory=dict)
    # The deadlines of its scripts, earliest first, and of the reruns among them,
    # latest first (negated): heaps whose entries of scripts that ended leave at the
    # top, or when they outnumber the scripts running. A deadline is reckoned at the
    # hand-over (the worker's own comes a moment later) and kept minus ``origin``:
    # on a worker not started yet, a time limit runs from that start, which may take
    # long on a loaded machine, and the watchdog sets ``origin`` when it sees it beat.
    deadlines: list[tuple[float, int]] = dataclasses.field(default_factory=list)
    reruns: list[tuple[float, int]] = dataclasses.field(default_factory=list)
    started: bool = False
    origin: float = 0.0
    culprits: set[int] = dataclasses.field(default_factory=set)
    killed: str | None = None
    # A step of its is past its script's deadline (the watchdog's last look).
    stuck: bool = False
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
        # Workers lost in a row before their first heartbeat, and the signal that
        # ends a delayed start's wait when the supervisor closes.
        self._failed_starts = 0
        self._closed = asyncio.Event()
        # The run's cache: the scripts of every worker share it through their pipes.
        self._cache = CacheServer()
        # Standard input being read (off the loop, in threads), and what ends those
        # reads when the supervisor stops: a terminal or a pipe left open would
        # otherwise hold an interrupted run until the script's deadline.
        self._reading: set[asyncio.Future[bytes | Failed]] = set()
        self._stop_reading: int | None = None

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
        """Run ``job`` on a worker; return its outcome and its lines."""
        if job.path == "-" and job.source is None:
            source = await self._read_stdin(job)
            if self._closing:
                return _interrupted(job)
            if not isinstance(source, bytes):
                error = named(job.name, source).message
                return ScriptOutcome(job.name, ok=False, error=error, status="unknown"), []
            job = dataclasses.replace(job, path=None, source=source)
        return await self.submit(job)

    async def _read_stdin(self, job: Job) -> bytes | Failed:
        # Standard input is the supervisor's, read off the event loop, bounded by the
        # script's time limit as a FIFO script is, and ended by interrupt().
        if self._closing:
            return Failed("interrupted")
        limits = self._settings.limits(script_timeout=job.script_timeout)
        deadline = time.monotonic() + limits.seconds
        if self._stop_reading is None:
            self._stop_reading = os.eventfd(0, os.EFD_CLOEXEC)
        reading = asyncio.ensure_future(
            asyncio.to_thread(read_script, "/dev/stdin", limits, deadline, self._stop_reading)
        )
        self._reading.add(reading)
        reading.add_done_callback(self._reading.discard)
        # Shielded: a caller that stops waiting leaves the read to interrupt(), which
        # close() awaits before it closes the descriptor the read watches.
        return await asyncio.shield(reading)

    def submit(self, job: Job) -> asyncio.Future[Finished]:
        """Hand ``job`` to a worker; the future is its outcome and its lines, as
        :meth:`run` returns them (no task per script: a caller with thousands waits
        on the futures). ``job`` is not standard input's (``-``): :meth:`run` reads it."""
        pending = _Pending(next(self._numbers), job, asyncio.get_running_loop().create_future())
        if self._closing:
            self._finish(pending, _interrupted(job))
        else:
            self._queue.append(pending)
            # Scripts already waiting mean no worker has room: a record or a new
            # worker dispatches them, and this one after them.
            if len(self._queue) == 1:
                self._dispatch()
        return pending.future

    def set_concurrency(self, concurrency: int) -> None:
        """Bound the scripts in flight across the workers by ``concurrency`` from now
        on; scripts already running go on. (Workers keep deciding whether to compact
        waiting scripts by the settings they started with.)"""
        self._per_worker = max(1, math.ceil(concurrency / self._count))
        self._dispatch()

    def interrupt(self) -> None:
        """Stop at once: every script not finished yet ends ``interrupted``."""
        self._closing = True
        if self._stop_reading is not None:
            os.eventfd_write(self._stop_reading, 1)
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
        self._closed.set()
        if self._watchdog is not None:
            self._watchdog.cancel()
        # A worker being started is killed once it is (see _start_worker): waited
        # for, not cancelled, as a start cancelled halfway leaves its process behind.
        await asyncio.gather(*self._starting, return_exceptions=True)
        self._cache.close()
        readers = [worker.reader for worker in self._workers if worker.reader is not None]
        if not self._queue and not any(worker.running for worker in self._workers):
            # Idle workers leave on their own when their input ends.
            for worker in self._workers:
                assert worker.process.stdin is not None
                worker.outbox.flush()
                worker.process.stdin.close()
            if readers:
                await asyncio.wait(readers, timeout=1)
        self.interrupt()
        await asyncio.gather(*readers, *self._starting, *self._reading, return_exceptions=True)
        if self._stop_reading is not None:
            os.close(self._stop_reading)
            self._stop_reading = None

    # --- workers ---

    async def _start_worker(self, delay: float = 0.0) -> None:
        if delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), delay)
            if self._closing:
                return
        fd = os.memfd_create("wsprobe-board")
        try:
            os.ftruncate(fd, Board.size(STEP_THREADS))
            memory = mmap.mmap(fd, Board.size(STEP_THREADS))
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "wsprobe.lua.worker",
                str(fd),
                str(STEP_THREADS),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                env=worker_environment(os.environ, jemalloc()),
                pass_fds=(fd,),
                limit=1 << 30,
            )
        finally:
            os.close(fd)
        assert process.stdin is not None
        _write(process.stdin, frame(self._settings))
        outbox = Outbox(functools.partial(_write, process.stdin), frame)
        worker = _Worker(process, memory, Board(memory, STEP_THREADS), outbox)
        self._workers.append(worker)
        worker.reader = asyncio.create_task(self._read(worker))
        if self._closing:
            self._kill(worker, "interrupted")
        self._dispatch()

    def _replace(self, delay: float) -> None:
        task = asyncio.create_task(self._start_worker(delay))
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _read(self, worker: _Worker) -> None:
        assert worker.process.stdout is not None
        try:
            while lines := await read_lines(worker.process.stdout):
                for line in lines:
                    for message in decode(line):
                        if isinstance(message, CacheCall):
                            self._cache.serve(
                                message,
                                lambda answer: self._send(worker, answer),
                                lambda: self._kill(worker, "it sent a malformed cache request"),
                            )
                            continue
                        pending = worker.running.pop(message.number, None)
                        if pending is not None:
                            outcome = message.outcome
                            if not outcome.ok and not worker.stuck:
                                # A record at the deadline of a step that runs on (stuck
                                # in C): the dispatch below must not wait for the
                                # watchdog's next look to see it.
                                worker.stuck = _on_board(worker, message.number)
                            outcome.name, outcome.rerun = pending.job.name, pending.rerun
                            self._finish(pending, (outcome, message.lines))
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
            crashed = {number for number, _deadline in worker.board.running()}
        started = worker.killed is not None or worker.board.heartbeat() != 0
        worker.memory.close()
        requeue = []
        for number, pending in worker.running.items():
            if number in worker.culprits:
                limits = self._settings.limits(script_timeout=pending.job.script_timeout)
                self._finish(pending, self._failed(pending, limits.time_message))
            elif number in crashed:
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
            self._replace(self._restart_delay(started, reason))

    def _restart_delay(self, started: bool, reason: str) -> float:
        if started:
            self._failed_starts = 0
            return 0.0
        self._failed_starts += 1
        delay = 0.0
        if self._failed_starts > 1:
            delay = min(RESTART_DELAY * 2 ** (self._failed_starts - 2), RESTART_DELAY_MAX)
        _log.warning(
            "a Lua worker ended before it started (%s); the next starts in %.1f s", reason, delay
        )
        return delay

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
                running = worker.board.running()
                overdue = {number for number, deadline in running if now > deadline + GRACE}
                if overdue:
                    worker.culprits = overdue
                    self._kill(worker, "a script on it overran its time limit")
                    continue
                # A step past its deadline has had its record; if it is stuck in C, the
                # worker is killed within the grace: nothing more goes to it meanwhile.
                worker.stuck = any(now > deadline for _number, deadline in running)
                heartbeat = worker.board.heartbeat()
                if heartbeat and not worker.started:
                    worker.started, worker.origin = True, now
                if heartbeat and now - heartbeat > STALL:
                    self._kill(worker, "its event loop stopped responding")
            # A worker no longer stuck takes what waited for it.
            if self._queue:
                self._dispatch()

    # --- scripts ---

    def _seconds(self, pending: _Pending) -> float:
        seconds = pending.job.script_timeout
        return self._settings.script_timeout if seconds is None else seconds

    def _dispatch(self) -> None:
        while self._queue:
            pending = self._queue[0]
            if pending.future.done():
                # Its caller stopped waiting (an agent's monitor a reload removed).
                self._queue.popleft()
                self._finish(pending, _interrupted(pending.job))
                continue
            now, seconds = time.monotonic(), self._seconds(pending)
            # The least busy worker that takes more (the first of equals).
            worker, busy = None, self._per_worker
            for candidate in self._workers:
                if (
                    candidate.killed is None
                    and not candidate.stuck
                    and len(candidate.running) < busy
                    and _safe_beside(candidate, pending, _deadline(candidate, now, seconds))
                ):
                    worker, busy = candidate, len(candidate.running)
            if worker is None:
                # The head waits, and the scripts behind it: a record, a worker's start
                # or the watchdog's next look dispatches again.
                return
            self._queue.popleft()
            worker.running[pending.number] = pending
            deadline = _deadline(worker, now, seconds)
            _push(worker.deadlines, deadline, pending.number, worker.running)
            if pending.rerun is not None:
                shield = _deadline(worker, now, min(seconds, RERUN_SHIELD))
                _push(worker.reruns, -shield, pending.number, worker.running)
            worker.outbox.put(Start(pending.number, pending.job))

    @staticmethod
    def _send(worker: _Worker, value: Start | CacheAnswer) -> None:
        worker.outbox.put(value)

    @staticmethod
    def _failed(pending: _Pending, message: str) -> Finished:
        outcome = ScriptOutcome(
            pending.job.name, ok=False, error=message, status="critical", rerun=pending.rerun
        )
        return outcome, []

    def _finish(self, pending: _Pending, finished: Finished) -> None:
        # However a script ended, its marks in the cache end with it.
        self._cache.release(pending.number)
        if not pending.future.done():
            pending.future.set_result(finished)


def _deadline(worker: _Worker, now: float, seconds: float) -> float:
    # A script's deadline on ``worker``, as its heaps keep them: the worker's start
    # (about ``origin``) is the same for the scripts handed over before it.
    return now + seconds - worker.origin if worker.started else seconds


def _push(
    heap: list[tuple[float, int]], key: float, number: int, running: Mapping[int, _Pending]
) -> None:
    if len(heap) > 2 * len(running) + 16:
        heap[:] = [entry for entry in heap if entry[1] in running]
        heapq.heapify(heap)
    heapq.heappush(heap, (key, number))


def _top(heap: list[tuple[float, int]], running: Mapping[int, _Pending]) -> float | None:
    # The first key of a script still running.
    while heap and heap[0][1] not in running:
        heapq.heappop(heap)
    return heap[0][0] if heap else None


def _safe_beside(worker: _Worker, pending: _Pending, deadline: float) -> bool:
    # Whether a rerun on ``worker`` ends before any script beside it could take the
    # worker down: a step stuck in C does so GRACE after its own deadline, so a rerun
    # shares a worker only with scripts whose deadline comes at most GRACE before its
    # own, whichever came first (an older neighbour, a newer one, or one lost with it).
    latest = _top(worker.reruns, worker.running)
    if latest is not None and deadline + GRACE < -latest:
        return False
    if pending.rerun is None:
        return True
    earliest = _top(worker.deadlines, worker.running)
    return earliest is None or deadline <= earliest + GRACE


def files_needed(workers: int) -> int:
    """The open-file limit a process needs to run a supervisor of ``workers``."""
    return FILES_BASE + FILES_PER_WORKER * workers


def _on_board(worker: _Worker, number: int) -> bool:
    # Whether a step of script ``number`` still runs on ``worker``.
    return any(marked == number for marked, _deadline in worker.board.running())


def _write(stdin: asyncio.StreamWriter, data: bytes) -> None:
    # A worker that died (even before its settings: an allocator that aborts at
    # start) is its reader's to find: writing to the pipe uvloop closed already
    # raises RuntimeError, asyncio's a ConnectionError.
    if stdin.is_closing():
        return
    with contextlib.suppress(ConnectionError):
        stdin.write(data)


def _interrupted(job: Job) -> Finished:
    return ScriptOutcome(job.name, ok=False, error="interrupted", status="unknown"), []


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"
