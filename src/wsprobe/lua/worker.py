"""A worker process of ``wsprobe run`` (``python -m wsprobe.lua.worker``): one event
loop running many scripts with :func:`~.execute.run_one`, watched by the supervisor.

It reads the run's settings, then the scripts to run, from its standard input and
sends each script's record up its standard output, as :mod:`.wire` declares.

Each Lua step runs on one of the worker's step threads. While it runs, the thread's
slot on the *board* (shared memory the supervisor maps too) holds the script's
number and its deadline, and the loop writes a heartbeat there: the supervisor reads
the board to find a step that overran its script's deadline, and which script it was.
A script's printed and logged lines are kept here until it ends and sent with its
outcome, so a worker that is lost has shown nothing of the scripts it ran.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import itertools
import mmap
import os
import queue
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from ..errors import ScriptCallError
from ..services.shared import RunServices
from .collector import Collector
from .eventloop import run_event_loop
from .execute import RunContext, run_collected
from .heap import Heap
from .job import RunSettings
from .registry import StepRunner
from .wire import (
    Board,
    CacheAnswer,
    Outbox,
    Start,
    encode_cache_call,
    encode_finished,
    read_frame,
    up_line,
)

__all__ = ["main"]

HEARTBEAT_EVERY = 0.1
#: Scripts started in one turn of the event loop: a burst of thousands (a frame of
#: starts) takes many turns, with the heartbeat and the other scripts' timers and
#: I/O between them, rather than one turn of seconds.
STARTS_PER_TURN = 32
#: Seconds a step computes before its thread yields the cores to the others.
SLICE = 0.005
#: Seconds the loop waits for a step it just handed over before doing other work.
QUICK = 0.002


class _Work:
    """One step: what to run for which script, then its result."""

    __slots__ = (
        "args",
        "deadline",
        "error",
        "finished",
        "function",
        "future",
        "job",
        "lock",
        "ready",
        "result",
        "thread",
    )

    def __init__(self, job: int, deadline: float, function: Any, args: Any) -> None:
        self.job, self.deadline, self.function, self.args = job, deadline, function, args
        self.result: Any = None
        self.error: BaseException | None = None
        self.finished = False
        self.future: asyncio.Future[Any] | None = None
        self.thread: _StepThread | None = None
        self.lock = threading.Lock()
        self.ready = threading.Lock()
        self.ready.acquire()

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


class _Steps:
    """Runs Lua steps on the worker's step threads, each marked on the board.

    At most ``slots`` steps run at once (more wait their turn). The loop waits up
    to :data:`QUICK` seconds for a step it just handed over (most steps are that
    short: no wake-up of the loop needed), then goes on with other work.

    A step that has computed for :data:`SLICE` seconds has its thread's scheduling
    priority lowered (nice 19) by the loop, from outside, even when it is stuck
    inside a C function: the event loop and short steps then get the cores first,
    so a script that computes hardly delays the others. A thread that cannot have
    its priority restored (it takes privilege) ends after its step, and a fresh
    one takes its place."""

    def __init__(self, board: Board) -> None:
        self._board = board
        self._free = list(range(board.slots))
        self._waiting: collections.deque[_Work] = collections.deque()
        self._idle: list[_StepThread] = []
        self._busy: dict[int, _StepThread] = {}
        self._loop = asyncio.get_running_loop()
        # Armed while steps run: an idle worker (the agent's, between checks) sleeps.
        self._watching: asyncio.TimerHandle | None = None

    def runner(self, job: int, deadline: float) -> StepRunner:
        async def run_step(function: Callable[..., Any], *args: Any) -> Any:
            work = _Work(job, deadline, function, args)
            self._waiting.append(work)
            self._start_waiting()
            if work.thread is not None and work.ready.acquire(timeout=QUICK):
                self.done(work)
                return work.outcome()
            with work.lock:
                if not work.finished:
                    work.future = self._loop.create_future()
            if work.future is None:
                self.done(work)
                return work.outcome()
            await work.future
            return work.outcome()

        return run_step

    def _start_waiting(self) -> None:
        while self._waiting and (self._idle or self._free):
            thread = self._idle.pop() if self._idle else _StepThread(self, self._free.pop())
            self._busy[thread.slot] = thread
            work = self._waiting.popleft()
            work.thread = thread
            thread.give(work)
        if self._busy and self._watching is None:
            self._watching = self._loop.call_later(SLICE / 2, self._demote)

    def _run(self, thread: _StepThread, work: _Work) -> None:
        thread.started = time.monotonic()
        self._board.mark(thread.slot, work.job, work.deadline)
        try:
            work.result = work.function(*work.args)
        except BaseException as exc:  # handed to the awaiting task, as run_in_executor does
            work.error = exc
        finally:
            self._board.clear(thread.slot)
            thread.started = 0.0
        with work.lock:
            work.finished = True
            waited = work.future is not None
        if waited:
            self._loop.call_soon_threadsafe(self.done, work)
        else:
            work.ready.release()

    def done(self, work: _Work) -> None:
        """On the loop: ``work`` is finished. Priorities change only here and in
        _demote, both on the loop: no race with the step threads."""
        if work.future is not None and not work.future.done():
            work.future.set_result(None)
        thread = work.thread
        assert thread is not None
        del self._busy[thread.slot]
        if thread.demoted and not _set_nice(thread.native_id, 0):
            thread.give(None)
            self._free.append(thread.slot)
        else:
            thread.demoted = False
            self._idle.append(thread)
        self._start_waiting()

    def _demote(self) -> None:
        now = time.monotonic()
        for thread in self._busy.values():
            if thread.started and not thread.demoted and now - thread.started > SLICE:
                thread.demoted = _set_nice(thread.native_id, 19)
        self._watching = self._loop.call_later(SLICE / 2, self._demote) if self._busy else None


class _StepThread:
    """One step thread: runs the steps it is given, one at a time."""

    def __init__(self, steps: _Steps, slot: int) -> None:
        self.slot = slot
        self.started = 0.0
        self.demoted = False
        self.native_id = 0
        self._steps = steps
        self._work: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._ready = threading.Event()
        threading.Thread(target=self._serve, name=f"lua-step-{slot}", daemon=True).start()
        self._ready.wait()

    def give(self, work: _Work | None) -> None:
        """Run this step next (None: end the thread)."""
        self._work.put(work)

    def _serve(self) -> None:
        self.native_id = threading.get_native_id()
        self._ready.set()
        while (work := self._work.get()) is not None:
            self._steps._run(self, work)
            # Not kept until the next step: its result may hold the script's state.
            del work


def _set_nice(native_id: int, value: int) -> bool:
    """Set a thread's nice value; False when not allowed (raising it back takes
    privilege)."""
    try:
        os.setpriority(os.PRIO_PROCESS, native_id, value)
    except OSError:
        return False
    return True


async def _serve(board: Board) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 30)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", buffering=0)
    )
    writer, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(1, "wb", buffering=0))
    settings = await read_frame(reader)
    assert isinstance(settings, RunSettings)
    run = RunContext(settings)
    # The store and the HTTP pool of the scripts of this worker; the cache is the
    # run's, which the supervisor holds.
    # Records and cache calls ready in one turn of the loop go up in one write.
    up = Outbox(writer.write, up_line)
    link = _CacheLink(up)
    services = RunServices(settings.options, state_dir=settings.state_dir, cache=link)
    steps = _Steps(board)
    tasks: set[asyncio.Task[None]] = set()
    # Full collections at idle moments or past a bound, not whenever CPython would.
    collector = Collector()
    collector.install()

    def beat() -> None:
        board.beat(time.monotonic())
        collector.tick(idle=not tasks)
        loop.call_later(HEARTBEAT_EVERY, beat)

    beat()

    heap = Heap()

    async def one(start: Start) -> None:
        deadline = time.monotonic() + run.limits_of(start.job).seconds
        heap.started()
        try:
            outcome, lines = await run_collected(
                start.job,
                run,
                run_step=steps.runner(start.number, deadline),
                services=services,
                owner=start.number,
            )
        finally:
            heap.ended()
        up.put(encode_finished(start.number, outcome, lines))

    started = 0
    while (messages := await read_frame(reader)) is not None:
        for message in messages:
            if isinstance(message, CacheAnswer):
                link.answer(message)
                continue
            task = asyncio.create_task(one(message))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            started += 1
            if started % STARTS_PER_TURN == 0:
                # The scripts just created start in the next turn; this loop goes on
                # after them, in that same turn.
                await asyncio.sleep(0)
    # The supervisor closed our input: it has every result it wants.
    await services.close()


class _CacheLink:
    """The run's cache, held by the supervisor, as this worker's scripts reach it:
    each call a :class:`~.wire.CacheCall` up, its :class:`~.wire.CacheAnswer` down."""

    def __init__(self, up: Outbox) -> None:
        self._up = up
        self._calls: dict[int, asyncio.Future[tuple[bool, Any]]] = {}
        self._numbers = itertools.count()

    async def call(self, operation: str, key: str, owner: Hashable, *args: Any) -> Any:
        number = next(self._numbers)
        future: asyncio.Future[tuple[bool, Any]] = asyncio.get_running_loop().create_future()
        self._calls[number] = future
        self._up.put(encode_cache_call(number, operation, key, owner, *args))
        try:
            ok, value = await future
        finally:
            self._calls.pop(number, None)
        if not ok:
            raise ScriptCallError(value)
        return value

    def release(self, owner: Hashable) -> None:
        # The supervisor ends a script's marks when its record arrives, or when its
        # worker is lost: nothing to send.
        pass

    def answer(self, answer: CacheAnswer) -> None:
        future = self._calls.get(answer.number)
        if future is not None and not future.done():
            future.set_result((answer.ok, answer.value))


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
    run_event_loop(_serve(Board(mmap.mmap(board_fd, Board.size(slots)), slots)))
    # Step threads may still be running (a script past its deadline): do not wait.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
