"""The ``wsprobe`` command: ``run``, ``send``, ``check``, ``serve`` and ``agent``.

This package is the only code that prints or exits. Each command is a module with
``configure(parser)`` (its flags) and a handler it sets as the parser's default;
:data:`_COMMANDS` lists them. Heavy modules are imported inside the command that
needs them: a scheduler starts ``wsprobe check`` once per check, and
``send``/``check`` never load Lua.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TextIO

# First: every command's module imports argparse.
from ._english import argparse  # isort: skip

from .. import __version__
from . import agent, check, fdlimit, oneshot, run, send, serve, streams
from .exitcodes import EXIT_CODES

__all__ = ["EXIT_CODES", "main", "main_entry"]


class _UsageError(Exception):
    """argparse found a mistake; the command decides the exit code."""


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter, sized without :mod:`shutil`.

    argparse builds a formatter for every ``add_argument()`` and sizes it with
    ``shutil.get_terminal_size()``; importing ``shutil`` (with ``fnmatch``, ``bz2``,
    ``lzma``) costs a `wsprobe check` process more than the sizing itself. The
    same rule: ``$COLUMNS``, else the terminal of standard output, else 80.
    """

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = _columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


def _columns() -> int:
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: {message}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (without the program name); return the exit code."""
    try:
        return _run(argv)[0]
    finally:
        fdlimit.restore_open_files()


def _run(argv: Sequence[str] | None) -> tuple[int, bool]:
    """The exit code, and whether the process may end without the interpreter's
    teardown (see :func:`main_entry`)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    closed = streams.hold_closed()
    parser = _build_parser(args_list[0] if args_list else None)
    # A usage error of `check` must read as UNKNOWN (3), not argparse's 2 (CRITICAL),
    # and so must anything else that goes wrong in it (WARNING's 1 would mislead).
    check = args_list[:1] == ["check"]
    usage_exit = 3 if check else EXIT_CODES["usage"]
    failed_exit = 3 if check else EXIT_CODES["internal"]
    try:
        args = parser.parse_args(args_list)
    except _UsageError as exc:
        if check:
            _unknown(str(exc))
        else:
            _complain(str(exc))
        return usage_exit, False
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0), False
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_CODES["usage"], False
    args.closed = closed
    try:
        code: int = args.handler(args)
        # A closed standard output (``>&-``) is None: the command said so already.
        if sys.stdout is not None:
            sys.stdout.flush()
    except KeyboardInterrupt:
        # SIGINT before the command handles it itself (``run`` writes each script's
        # record), or in a command that never does.
        if check:
            _unknown("interrupted")
            return 3, False
        _complain("wsprobe: interrupted")
        return 130, False
    except Exception as exc:
        if isinstance(exc, OSError) and not fdlimit.too_many_open_files(exc):
            # Every OSError of the library is mapped to a wsprobe error: one that
            # escapes is our own standard streams (a full disk, a closed pipe).
            if sys.stdout is not None:
                _discard(sys.stdout)
            _failed_output(exc)
        else:  # out of descriptors wherever (uvloop reports it as another error), or a bug
            _complain(f"wsprobe: {fdlimit.unexpected(exc)}")
        return failed_exit, False
    return code, bool(getattr(args, "lean_exit", False))


def _unknown(text: str) -> None:
    from ..plugin import State, Verdict

    # Through Verdict.line(): the text may hold a | or a line break.
    try:
        _write(sys.stdout, Verdict(State.UNKNOWN, text).line())
    except (OSError, ValueError) as exc:
        _failed_output(exc)


def _complain(line: str) -> None:
    """Write ``line`` to standard error; one that cannot be written leaves the exit
    code to say what happened."""
    with contextlib.suppress(OSError, ValueError):
        _write(sys.stderr, line)


def _failed_output(exc: OSError | ValueError) -> None:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    _complain(f"wsprobe: standard input or output failed: {reason.lower()}")


def _write(stream: TextIO | None, line: str) -> None:
    # None: a closed descriptor (held on /dev/null), which has nothing to say.
    if stream is None:
        return
    try:
        print(line, file=stream, flush=True)
    except (OSError, ValueError):
        _discard(stream)
        raise


def _discard(stream: TextIO) -> None:
    # What could not be written stays buffered, and the interpreter would try again
    # at exit and fail with a traceback: send the rest nowhere.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real descriptor (a test's StringIO)
        pass


def main_entry() -> NoReturn:
    """The console script.

    A command that made its calls in this process and wrote its output (``send``,
    ``check URL``) leaves nothing to clean up: no thread, no child, no file but the
    standard streams. The interpreter's teardown (freeing every module and object,
    ~10 ms of CPU, as much as the call) is skipped for it; a scheduler starts
    ``wsprobe check`` once per check.
    """
    _import_dataclasses()
    streams.escape_unencodable()
    oneshot.own_process = True
    code, lean = _run(None)
    if lean and _flushed():
        os._exit(code)
    sys.exit(code)


def _import_dataclasses() -> None:
    """Import ``dataclasses`` with stand-ins for ``inspect`` and ``copy``.

    ``dataclasses`` imports ``inspect`` (with ``ast``, ``dis`` and ``tokenize``, ~5 ms
    of a `wsprobe check` process) to write a docstring for a class that has none, and
    ``copy`` for ``asdict()``; every dataclass on the commands' paths has a docstring.
    This process is the command's own, so the stand-ins stay ``dataclasses``' for
    its life (each loads the real module if it is ever used).
    """
    from ..protocol._standins import StandIn, lent

    with lent(StandIn("inspect"), StandIn("copy")):
        import dataclasses  # noqa: F401


def _flushed() -> bool:
    """Whether the standard streams took all that was written to them."""
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return False  # the interpreter's own exit reports it, as before
    return True


def _build_parser(wanted: str | None) -> argparse.ArgumentParser:
    # Only the command being run gets a parser and its arguments: each parser costs
    # argparse a few translation lookups (a dozen stat() calls for catalogues that
    # are not there), each add_argument() a formatter, and `wsprobe check` starts
    # once per check. A command named first is the only one argparse can choose;
    # anything else (no command, --help, a typo) gets every command, to list them.
    parser = _Parser(prog="wsprobe", description="Check WebSocket services from scripts.")
    parser.add_argument("--version", action="version", version=f"wsprobe {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    for name, (summary, configure) in _COMMANDS.items():
        if wanted in _COMMANDS and name != wanted:
            continue
        command = commands.add_parser(name, help=summary)
        if name == wanted:
            configure(command)
    return parser


_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "run": ("run Lua monitor scripts", run.configure),
    "send": ("send one message and print the first reply", send.configure),
    "check": ("a monitoring plugin (Nagios, Icinga, ...)", check.configure),
    "serve": ("a local WebSocket server for trying scripts", serve.configure),
    "agent": ("monitors on a schedule: /metrics, /probe, a status page", agent.configure),
}
