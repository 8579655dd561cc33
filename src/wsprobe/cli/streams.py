"""The process's standard streams, made safe before a command runs.

- A closed descriptor 0-2 (``>&-``) would be taken by the next file the process
  opens: a socket, a worker's pipe, or one of uvloop's own (libuv aborts when it is
  given one of 0-2). Each is held open on ``/dev/null``; the command decides whether
  it can do without it (:func:`hold_closed` says which were closed).
- Text that standard output cannot encode (``PYTHONIOENCODING=ascii``, a Latin-1
  locale, the bytes of an argument that is not UTF-8) is written as ``\\uXXXX``
  escapes: output is never lost to an encoding, and the escapes are valid inside
  JSON strings, so ``--json`` output stays JSON. Standard error keeps Python's own
  ``\\xNN`` escapes.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import sys

__all__ = ["ESCAPE", "escape_unencodable", "hold", "hold_closed", "say"]

#: The error handler of standard output: :func:`_escape`.
ESCAPE = "wsprobe.escape"

_NAMES = {0: "input", 1: "output", 2: "error"}


def hold_closed() -> dict[int, str]:
    """Hold every closed descriptor 0-2 open on ``/dev/null``; return those that
    were closed, with their names (``input``, ``output``, ``error``)."""
    closed = {}
    for fd, name in _NAMES.items():
        try:
            os.fstat(fd)
        except OSError:
            hold(fd)
            closed[fd] = name
    return closed


def hold(fd: int) -> None:
    """Point ``fd`` at ``/dev/null`` (Python flushes the standard streams again at
    exit: a broken one then writes nowhere, the documented way to leave quietly)."""
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)


def say(line: str) -> None:
    """Write ``line`` to descriptor 2, past a standard error that failed."""
    with contextlib.suppress(OSError):
        os.write(2, (line + "\n").encode(errors="backslashreplace"))


def escape_unencodable() -> None:
    """Make standard output write what it cannot encode as ``\\uXXXX`` escapes, and
    standard error as ``\\xNN`` ones (Python's default for it)."""
    codecs.register_error(ESCAPE, _escape)
    for stream, errors in ((sys.stdout, ESCAPE), (sys.stderr, "backslashreplace")):
        # None when the descriptor was closed; a program's own stream may not be text.
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stream.reconfigure(errors=errors)  # type: ignore[union-attr]


def _escape(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    return "".join(map(_json_escape, error.object[error.start : error.end])), error.end


def _json_escape(char: str) -> str:
    code = ord(char)
    if code > 0xFFFF:  # JSON escapes the characters beyond the BMP as a surrogate pair
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"
