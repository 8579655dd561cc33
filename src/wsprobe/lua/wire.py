"""Everything that crosses the boundary between the supervisor and its workers.

- *Down* (supervisor to worker, on the worker's standard input): frames, each a
  4-byte length and a pickle: first the :class:`~.job.RunSettings`, then lists of
  :class:`Start`\\ s and :class:`CacheAnswer`\\ s. Pickles only go down, from the
  supervisor to its own child.
- *Up* (worker to supervisor, on its standard output): lines, each a JSON array of
  messages, themselves arrays: a script's :class:`Finished` record (its number, the
  fields of :data:`~.output.RECORD_FIELDS` in order, its calls' timings, its lines)
  or a :class:`CacheCall` (``"cache"`` first), parsed as untrusted data: whatever
  does not decode raises ``ValueError``, ``TypeError`` or ``KeyError``.
- Both ways, what is ready in one turn of the event loop goes in one write
  (:class:`Outbox`): one system call, and down one pickle, up one line, for many
  messages.
- The *board*: memory both map, where the worker's event loop writes its heartbeat
  and each step thread the script it runs and that script's deadline
  (:class:`Board`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import operator
import pickle
import struct
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

from ..models import Timings
from ..services.cache import OPERATIONS
from .job import Job
from .output import RECORD_FIELDS, Line, ScriptOutcome, record_values

__all__ = [
    "Board",
    "CacheAnswer",
    "CacheCall",
    "Finished",
    "Outbox",
    "Start",
    "decode",
    "encode_cache_call",
    "encode_finished",
    "frame",
    "read_frame",
    "read_lines",
    "up_line",
]

# --- down: frames of pickles ---


# Named tuples: a slotted dataclass pickles through its fields, several times slower.
class Start(NamedTuple):
    """Run ``job``; ``number`` is the supervisor's for it, unique among its scripts
    (its board marks, its record and its cache marks carry it)."""

    number: int
    job: Job


class CacheAnswer(NamedTuple):
    """The answer to the worker's :class:`CacheCall` ``number``: its value when
    ``ok``, else the error's message."""

    number: int
    ok: bool
    value: Any


def frame(value: object) -> bytes:
    """``value`` as one frame down."""
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return len(data).to_bytes(4, "big") + data


async def read_frame(reader: asyncio.StreamReader) -> Any:
    """The next frame's value; ``None`` once the input ended."""
    try:
        header = await reader.readexactly(4)
        return pickle.loads(await reader.readexactly(int.from_bytes(header, "big")))
    except asyncio.IncompleteReadError:
        return None


class Outbox:
    """Messages one way down a pipe, sent together: ``write(encode(items))`` once per
    turn of the event loop for all the items put during it, in order."""

    __slots__ = ("_encode", "_items", "_loop", "_write")

    def __init__(self, write: Callable[[bytes], None], encode: Callable[[list[Any]], bytes]):
        self._write, self._encode = write, encode
        self._items: list[Any] = []
        self._loop = asyncio.get_running_loop()

    def put(self, item: Any) -> None:
        """Send ``item`` with the others of this turn."""
        if not self._items:
            self._loop.call_soon(self.flush)
        self._items.append(item)

    def flush(self) -> None:
        """Send what was put and not sent yet, now."""
        if self._items:
            items, self._items = self._items, []
            self._write(self._encode(items))


# --- up: JSON lines ---


class Finished(NamedTuple):
    """Script ``number`` ended: its outcome (its name is the supervisor's to set) and
    the lines it printed and logged, in order."""

    number: int
    outcome: ScriptOutcome
    lines: list[Line]


class CacheCall(NamedTuple):
    """A script asks the run's cache (held by the supervisor) for ``operation``; its
    answer is the :class:`CacheAnswer` with the same ``number``."""

    number: int
    operation: str
    key: str
    owner: int
    args: list[Any]


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


def _text_or_none(value: Any) -> str | None:
    # What json.loads makes of text is a str, never a subclass.
    if value is None or type(value) is str:
        return value
    raise TypeError("expected text or null")


_STATUSES = frozenset(("ok", "warning", "critical", "unknown"))


def _status(value: Any) -> str:
    if type(value) is str and value in _STATUSES:
        return value
    raise ValueError("status")


#: How each field of a record that goes up is checked as it comes in: the record's
#: fields (:data:`~.output.RECORD_FIELDS`) and the timings of the script's calls;
#: None for a field that may be any JSON value.
_DECODE: dict[str, Callable[[Any], Any] | None] = {
    "ok": bool,
    "result": None,
    "error": _text_or_none,
    "duration": float,
    "status": _status,
    "value": None,
    "signal": _text_or_none,
    "calls": lambda calls: [_timings(*phases) for phases in calls],
}
# The checks of a record's fields, in the order they are sent: the order of
# ScriptOutcome's fields after its name, which a record's values fill by position.
_SENT = tuple((name, _DECODE[name]) for name in (*RECORD_FIELDS, "calls"))
_CHECKS = tuple(check for _name, check in _SENT)
if [field.name for field in dataclasses.fields(ScriptOutcome)][1 : len(_SENT) + 1] != [
    name for name, _check in _SENT
]:
    raise ImportError("a record's fields are not in ScriptOutcome's order")
_PHASES = operator.attrgetter(*(field.name for field in dataclasses.fields(Timings)))
_CACHE = "cache"


def _message(value: list[Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def up_line(messages: list[bytes]) -> bytes:
    """Messages encoded here (:func:`encode_finished`, :func:`encode_cache_call`), as
    the one line that sends them up."""
    return b"[" + b",".join(messages) + b"]\n"


def encode_finished(number: int, outcome: ScriptOutcome, lines: list[Line]) -> bytes:
    """Script ``number``'s record, to send up in an :func:`up_line`."""
    return _message(
        [
            number,
            *record_values(outcome),
            [_PHASES(timings) for timings in outcome.calls],
            [[line.kind, line.text, line.at] for line in lines],
        ]
    )


def encode_cache_call(number: int, operation: str, key: str, owner: Hashable, *args: Any) -> bytes:
    """A :class:`CacheCall`, to send up in an :func:`up_line`."""
    return _message([_CACHE, number, operation, key, owner, *args])


async def read_lines(reader: asyncio.StreamReader) -> list[bytes]:
    """The lines that came up since the last call, at least one (the last without its
    end when the input ended in the middle of it); none once the input ended.
    ``ValueError`` when a line overruns the reader's limit."""
    chunk = await reader.read(1 << 16)
    if chunk and not chunk.endswith(b"\n"):
        try:
            chunk += await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            chunk += exc.partial
        except asyncio.LimitOverrunError as exc:
            raise ValueError("a line too long") from exc
    lines = chunk.split(b"\n")
    if not lines[-1]:
        lines.pop()
    return lines


def decode(line: bytes) -> list[Finished | CacheCall]:
    """The messages of a line a worker sent up, checked like any input."""
    # Text, not bytes: json.loads would first guess the encoding of bytes.
    messages = json.loads(line.decode())
    if type(messages) is not list:
        raise TypeError("expected a list of messages")
    return [_decode_message(message) for message in messages]


def _decode_message(message: Any) -> Finished | CacheCall:
    if type(message) is not list:
        raise TypeError("expected a message")
    if message and message[0] == _CACHE:
        _cache, number, operation, key, owner, *args = message
        if not (
            type(number) is int
            and operation in OPERATIONS
            and type(key) is str
            and type(owner) is int
        ):
            raise ValueError("a malformed cache request")
        return CacheCall(number, operation, key, owner, args)
    number, *values, lines = message
    if len(values) != len(_CHECKS) or type(number) is not int:
        raise ValueError("a malformed record")
    return Finished(
        number,
        ScriptOutcome(
            "",
            *[
                value if check is None else check(value)
                for check, value in zip(_CHECKS, values, strict=True)
            ],
        ),
        [Line(str(kind), str(text), float(at)) for kind, text, at in lines],
    )


# --- the board ---

_HEARTBEAT = struct.Struct("<d")
_NUMBER = struct.Struct("<q")
_DEADLINE = struct.Struct("<d")
#: One step thread's slot: the number of the script it runs, then that script's
#: deadline (``time.monotonic()`` seconds; 0 while the thread is idle).
SLOT = struct.Struct("<" + _NUMBER.format[1:] + _DEADLINE.format[1:])


class Board:
    """The worker's heartbeat (its event loop's last ``time.monotonic()``), then one
    :data:`SLOT` per step thread, over shared memory ``memory``."""

    __slots__ = ("_memory", "slots")

    def __init__(self, memory: Any, slots: int) -> None:
        self._memory = memory
        self.slots = slots

    @staticmethod
    def size(slots: int) -> int:
        """Bytes of a board with ``slots`` step threads."""
        return _HEARTBEAT.size + slots * SLOT.size

    def beat(self, now: float) -> None:
        """The worker's event loop is alive at ``now``."""
        _HEARTBEAT.pack_into(self._memory, 0, now)

    def heartbeat(self) -> float:
        """When the worker's event loop was last alive (0 before its first beat)."""
        value: float = _HEARTBEAT.unpack_from(self._memory, 0)[0]
        return value

    def mark(self, slot: int, number: int, deadline: float) -> None:
        """The step thread of ``slot`` runs a step of script ``number``."""
        SLOT.pack_into(self._memory, self._offset(slot), number, deadline)

    def clear(self, slot: int) -> None:
        """The step thread of ``slot`` is idle."""
        _DEADLINE.pack_into(self._memory, self._offset(slot) + _NUMBER.size, 0.0)

    def read(self, slot: int) -> tuple[int, float] | None:
        """The script number and deadline of a step running in ``slot``, or None when idle.

        The worker writes the number, then the deadline, and clears the deadline when
        the step ends; reading the deadline again after the number tells a
        consistent pair."""
        offset = self._offset(slot)
        number, deadline = SLOT.unpack_from(self._memory, offset)
        if (
            not deadline
            or _DEADLINE.unpack_from(self._memory, offset + _NUMBER.size)[0] != deadline
        ):
            return None
        return number, deadline

    def running(self) -> list[tuple[int, float]]:
        """The number and deadline of every step running now."""
        # One copy of all slots; only those busy in it are read again, one by one.
        slots = self._memory[_HEARTBEAT.size : _HEARTBEAT.size + self.slots * SLOT.size]
        return [
            marked
            for slot, (_number, deadline) in enumerate(SLOT.iter_unpack(slots))
            if deadline and (marked := self.read(slot)) is not None
        ]

    @staticmethod
    def _offset(slot: int) -> int:
        return _HEARTBEAT.size + slot * SLOT.size
