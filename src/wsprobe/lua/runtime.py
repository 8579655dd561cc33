"""One sandboxed Lua 5.4 state per script, through ``lupa``: the only module that imports it.

A :class:`LuaScript` loads the trusted prelude (``prelude/*.lua``, :data:`PRELUDE`)
into a fresh state, hands it the host functions the registry defines, and runs the script as a
coroutine, one :data:`Step` at a time. What only some scripts use, the modules among it
(``prelude/modules/*.lua``, :data:`CHUNKS`), is loaded into a state on first use. It knows
nothing of asyncio or WebSockets: the runner drives it. lupa's exceptions stay here.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, cast

import lupa.lua54 as lupa

from ..errors import Error, ScriptCallError
from .convert import ConversionError, Converter

__all__ = [
    "CHUNKS",
    "PRELUDE",
    "Done",
    "Failed",
    "LuaScript",
    "Request",
    "ScriptLimits",
    "Step",
    "prelude_source",
]

#: The prelude's parts, by concern, in the order they make its one chunk: each part
#: sees the locals of the parts before it.
PRELUDE = ("core.lua", "globals.lua", "sandbox.lua", "driver.lua")

#: The chunks of ``prelude/modules/``, each loaded into a state the first time its
#: script uses it: a module each, ws sessions, the libraries' extensions, the globals
#: few scripts call. Most scripts use one or two.
CHUNKS = (
    "ws",
    "session",
    "json",
    "log",
    "store",
    "cache",
    "http",
    "time",
    "uuid",
    "extensions",
    "rare",
)


@dataclass(frozen=True, slots=True)
class ScriptLimits:
    """The bounds of one script: memory in bytes, Lua instructions, wall clock."""

    memory: int
    instructions: int
    seconds: float
    memory_message: str
    cpu_message: str
    time_message: str


@dataclass(frozen=True, slots=True)
class Request:
    """The script waits for the registry's operation ``op``, with ``args`` as Lua gave them.

    ``deadline`` (``time.monotonic()`` seconds) is set when the call runs under
    ``with_timeout``: past it the call is to be abandoned.
    """

    op: str
    args: tuple[Any, ...]
    deadline: float | None = None


@dataclass(frozen=True, slots=True)
class Done:
    """The script returned ``values`` (as Python values), or ended with ``signal(name)``."""

    values: tuple[Any, ...]
    signal: str | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """The script failed; ``message`` is ready to print (``check.lua:3: ...``).

    ``compiled`` is false when the script did not even compile (a syntax error).
    """

    message: str
    compiled: bool = True


Step = Request | Done | Failed
"""What a script did when last resumed."""


class _Unshowable(Exception):
    """The script's result is neither data nor printable; the text says why."""


HostFunction = Callable[..., Any]
"""A function a script calls in place: the script's ``subject``, then the Lua
arguments in, a Python value out (or an :class:`~wsprobe.errors.Error`, which the
script gets as a plain string error)."""


def _no_attributes(_obj: object, name: object, _is_setting: bool) -> object:
    # Nothing of Python is reachable from a script: no __globals__, no __class__.
    raise AttributeError(f"access to Python attribute {name!r} is not allowed")


class LuaScript:
    """A script in its own Lua state, run as a coroutine one :data:`Step` at a time.

    ``host`` maps the names the prelude calls in place (``host.write``,
    ``host.json_encode``, ...) to Python functions, each called with ``subject``
    first; the state sees them through one Python callable. ``ident`` is the
    script's ``EXEC_IDENT`` (default: ``name``). :meth:`start` runs the script
    to its first :class:`Request`; :meth:`resume` answers that request;
    :meth:`close` lets the state go once the script has ended.
    """

    # Thousands wait at once in a worker: no instance dictionary each.
    __slots__ = (
        "_allocating",
        "_held",
        "_host",
        "_limit_lock",
        "_limits",
        "_lua",
        "_show",
        "_source",
        "_start",
        "_step",
        "_stepping",
        "_subject",
        "_tables_made",
        "convert",
        "name",
    )

    def __init__(
        self,
        name: str,
        source: bytes,
        *,
        limits: ScriptLimits,
        environment: Mapping[str, str],
        host: Mapping[bytes, HostFunction],
        subject: object = None,
        ident: str | None = None,
    ) -> None:
        self.name = name
        self._host = host
        self._subject = subject
        self._source = source
        self._limits = limits
        # Typed as Any: types-lupa describes a str-only runtime, and this one speaks bytes.
        runtime = lupa.LuaRuntime(  # type: ignore[call-arg]  # types-lupa lacks these
            encoding=None,
            unpack_returned_tuples=True,
            register_eval=False,
            register_builtins=False,
            attribute_filter=_no_attributes,
            max_memory=limits.memory,
        )
        self._lua = cast(Any, runtime)
        prelude = self._lua.globals().load(_prelude_bytecode(), b"=wsprobe", b"b")
        # The prelude's settings, as its arguments (see core.lua); it returns the driver.
        self._start, self._step, self._show, null, identity, lua_type = prelude(
            self._in_place,
            self._chunk,
            time.monotonic,
            limits.instructions,
            time.monotonic() + limits.seconds,
            limits.cpu_message.encode(),
            limits.time_message.encode(),
            f"@{name}".encode(),
            name.encode(),
            (name if ident is None else ident).encode(),
            self._lua.table_from({k.encode(): v.encode() for k, v in environment.items()}),
        )
        self._tables_made = 0
        self._held = 0
        self._allocating = False
        self._stepping = False
        self._limit_lock = threading.Lock()
        self.convert = Converter(
            lua_type=lua_type, identity=identity, new_table=self._new_table, null=null
        )

    def start(self) -> Step:
        """Compile and run the script until it first asks for something or ends."""
        source, self._source = self._source, b""
        return self._call(self._start, source)

    def resume(self, ok: bool, value: Any) -> Step:
        """Answer the pending request: ``ok`` and a Python value (a tuple for several
        return values), or an error whose ``str`` is the message."""
        if not ok:
            return self._answer(False, str(value).encode())
        values = value if isinstance(value, tuple) else (value,)
        try:
            with self._python_allocates():
                converted = [self.convert.to_lua(item) for item in values]
        except ConversionError as exc:
            # A value no Lua state can hold (a stored lone surrogate, nesting too
            # deep): the call's error, which the script may catch.
            return self._answer(False, f"value not representable in Lua: {exc}".encode())
        except ScriptCallError:
            return Failed(self._limits.memory_message)
        return self._answer(True, *converted)

    def _answer(self, ok: bool, *values: Any) -> Step:
        # The strings of an answer are handed to Lua under the limit (see _fits): a
        # stored value or a message that would not fit is the call's memory error.
        size = sum(len(value) for value in values if isinstance(value, bytes))
        if size and not self._fits(size):
            return self._call(self._step, False, b"not enough memory")
        return self._call(self._step, ok, *values)

    def reserve(self, held: int) -> None:
        """Count ``held`` bytes that Python holds for the script (its sessions) against
        its memory limit; raise the limit's error when they do not fit."""
        if self._lua is None:  # after close(): a session's last bytes counted late
            return
        if held > self._held and self.memory_used() + held > self._limits.memory:
            raise ScriptCallError(self._limits.memory_message)
        # A session's unread data is counted from the event loop, maybe while a step
        # runs or Python builds Lua values: the limit is then set when they end,
        # never lowered under a string the step's thread found to fit and is
        # handing to Lua (see _fits).
        with self._limit_lock:
            self._held = held
            if not (self._stepping or self._allocating):
                self._lua.set_max_memory(self._limits.memory - held)

    def compact(self) -> None:
        """Collect the state's garbage: the source, the prelude's bytecode and what
        compiling left behind, about a quarter of a fresh state's data, for ~25 µs."""
        self._lua.gccollect()

    def memory_used(self) -> int:
        """Bytes the Lua state holds now."""
        return int(self._lua.get_memory_used())

    def close(self) -> None:
        """The script has ended: drop every reference to its state, so that the state
        and what it holds of Python's are freed now, by reference counting, rather
        than left to the cycle collector (the state holds :meth:`_in_place`, which
        holds this object). A step still running (past the script's time limit)
        keeps the state until it returns."""
        self._lua = self._start = self._step = self._show = None
        self._host, self._subject = {}, None
        del self.convert

    def _chunk(self, name: bytes) -> bytes | None:
        # The bytecode of a chunk the script uses for the first time, or None when
        # it would not fit (see _fits).
        bytecode = _chunk_bytecode(name)
        return bytecode if self._fits(len(bytecode)) else None

    def _in_place(self, name: bytes, *args: Any) -> tuple[bool, Any]:
        # The prelude unwraps (ok, value): an Error becomes a plain string error
        # without a position, as the contract wants.
        try:
            with self._python_allocates():
                value = self._host[name](self._subject, *args)
                # A value already in this state (json.decode's tables) passes as is.
                if lupa.lua_type(value):
                    return True, value
                value = self.convert.to_lua(value)
        except Error as exc:
            return False, str(exc).encode()
        if isinstance(value, bytes) and not self._fits(len(value)):
            return False, b"not enough memory"
        return True, value

    def _fits(self, size: int) -> bool:
        # Whether Lua can take strings of ``size`` bytes from Python: lupa cannot
        # recover from the memory limit hit while it hands a value of Python's to
        # Lua (the process aborts or hangs), so that must not happen.
        return self.memory_used() + self._held + size + 1024 <= self._limits.memory

    @contextlib.contextmanager
    def _python_allocates(self) -> Iterator[None]:
        # lupa deadlocks when the state's memory limit is hit while Python builds
        # Lua values (inside a call from Lua, json.decode's tables): while Python
        # builds, the limit is lifted and _new_table enforces it instead, as an Error.
        with self._limit_lock:
            self._allocating = True
            self._lua.set_max_memory(0)
        try:
            yield
        finally:
            with self._limit_lock:
                self._allocating = False
                self._lua.set_max_memory(self._limits.memory - self._held)

    def _new_table(self) -> Any:
        self._tables_made += 1
        # Checking every 256 tables bounds the overshoot to 256 tables and their strings.
        if self._tables_made % 256 == 0 and self.memory_used() + self._held > self._limits.memory:
            raise ScriptCallError(self._limits.memory_message)
        return self._lua.table()

    def _call(self, function: Any, *args: Any) -> Step:
        with self._limit_lock:
            self._stepping = True
        try:
            result = function(*args)
            if not isinstance(result, tuple):
                result = (result,)
            kind = result[0].decode()
            if kind == "done":
                return Done(tuple(self._result(value) for value in result[1:]))
        except lupa.LuaMemoryError:
            return Failed(self._limits.memory_message)
        except _Unshowable as exc:
            return Failed(str(exc))
        finally:
            with self._limit_lock:
                self._stepping = False
                if self._lua is not None:
                    self._lua.set_max_memory(self._limits.memory - self._held)
        if kind == "yield":
            return Request(_text(result[1]), result[3:], deadline=result[2])
        if kind == "signal":
            return Done((), signal=_text(result[1]))
        message = _text(result[1]) if isinstance(result[1], bytes) else str(result[1])
        if message.endswith("not enough memory"):
            message = self._limits.memory_message
        return Failed(message, compiled=kind != "invalid")

    def _result(self, value: Any) -> Any:
        try:
            return self.convert.to_python(value)
        except ConversionError:
            # tostring runs the value's __tostring: in the prelude, under the CPU guard.
            text, failure = self._show(value)
            if text is None:
                raise _Unshowable(_text(failure)) from None
            return _text(text)


@functools.cache
def _prelude_bytecode() -> bytes:
    # Compiling the prelude costs more than creating a Lua state: compile it once
    # per process and load its bytecode (ours, trusted) into every script's state.
    return _compiled(prelude_source())


@functools.cache
def _chunk_bytecode(name: bytes) -> bytes:
    return _compiled(chunk_source(name.decode()))


def _compiled(source: bytes) -> bytes:
    compiler = cast(Any, lupa.LuaRuntime(encoding=None))  # type: ignore[call-arg]
    # Stripped of debug information: smaller in each of thousands of states, and
    # error locations only ever name the script's own lines.
    return bytes(compiler.globals().string.dump(compiler.compile(source), True))


def prelude_source() -> bytes:
    """The prelude's one chunk: its parts, in order."""
    folder = files("wsprobe.lua").joinpath("prelude")
    return b"\n".join(folder.joinpath(name).read_bytes() for name in PRELUDE)


def chunk_source(name: str) -> bytes:
    """The source of chunk ``name`` (one of :data:`CHUNKS`)."""
    if name not in CHUNKS:
        raise ValueError(f"no chunk {name!r}")
    return files("wsprobe.lua").joinpath("prelude", "modules", f"{name}.lua").read_bytes()


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
