"""The ``wsprobe`` command: ``run``, ``send``, ``check`` and ``serve``.

The only module that prints or exits. Heavy modules are imported inside the
command that needs them: a scheduler starts ``wsprobe check`` once per check, and
``send``/``check`` never load Lua.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from .errors import (
    BinaryMessage,
    ConnectError,
    Error,
    InvalidOption,
    InvalidURL,
    NoResponse,
    ProtocolViolation,
)

if TYPE_CHECKING:
    from .exchange import Result
    from .options import Options

__all__ = ["EXIT_CODES", "main", "main_entry"]

#: Exit codes of ``wsprobe send`` by failure kind; stable, documented in the README.
EXIT_CODES = {
    "ok": 0,
    "internal": 1,
    "usage": 2,
    "no-response": 3,
    "binary": 4,
    "connect": 5,
    "tls": 6,
    "http": 7,
    "timeout": 8,
    "protocol": 9,
    "too-large": 10,
}


class _UsageError(Exception):
    """argparse found a mistake; the command decides the exit code."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: {message}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (without the program name); return the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = _build_parser(args_list[0] if args_list else None)
    # A usage error of `check` must read as UNKNOWN (3), not argparse's 2 (CRITICAL).
    usage_exit = 3 if args_list[:1] == ["check"] else EXIT_CODES["usage"]
    try:
        args = parser.parse_args(args_list)
    except _UsageError as exc:
        if usage_exit == 3:
            print(f"WEBSOCKET UNKNOWN - {exc}", file=sys.stdout)
        else:
            print(exc, file=sys.stderr)
        return usage_exit
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_CODES["usage"]
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug of ours: one line, and the internal exit code
        print(f"wsprobe: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_CODES["internal"]
    return code


def main_entry() -> NoReturn:
    """The console script."""
    sys.exit(main())


def _build_parser(wanted: str | None) -> argparse.ArgumentParser:
    # Only the command being run gets its arguments: each add_argument() costs
    # argparse a formatter (and a terminal-size syscall), and `wsprobe check`
    # starts once per check.
    parser = _Parser(prog="wsprobe", description="Check WebSocket services from scripts.")
    parser.add_argument("--version", action="version", version="wsprobe 0.1.0")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    for name, (summary, configure) in _COMMANDS.items():
        command = commands.add_parser(name, help=summary)
        if name == wanted:
            configure(command)
    return parser


def _configure_run(run: argparse.ArgumentParser) -> None:
    run.add_argument("scripts", nargs="+", metavar="SCRIPT", help="Lua files (- for stdin)")
    _add_call_options(run, headers=False)
    run.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME",
        help="let os.getenv see this variable (repeatable)",
    )
    run.add_argument(
        "--script-timeout",
        default="60",
        metavar="SECONDS",
        help="wall-clock limit per script (default 60)",
    )
    run.add_argument(
        "--memory-limit",
        default="64",
        metavar="MIB",
        help="memory limit per script in MiB (default 64)",
    )
    run.add_argument(
        "--instruction-limit",
        default="100",
        metavar="MILLIONS",
        help="Lua instructions per script, in millions (default 100)",
    )
    run.add_argument(
        "--concurrency", default="200", metavar="N", help="scripts in flight at once (default 200)"
    )
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warn", "error"])
    run.add_argument("--json", action="store_true", help="one JSON object per script on stdout")
    run.set_defaults(handler=_run)


def _configure_send(send: argparse.ArgumentParser) -> None:
    send.add_argument("url", metavar="URL")
    send.add_argument(
        "message",
        nargs="?",
        default="-",
        metavar="MESSAGE",
        help="text to send (default: standard input)",
    )
    _add_call_options(send)
    send.add_argument("-v", "--verbose", action="store_true", help="timings and facts on stderr")
    send.add_argument("--json", action="store_true", help="reply and facts as one JSON object")
    send.set_defaults(handler=_send)


def _configure_check(check: argparse.ArgumentParser) -> None:
    check.add_argument("url", metavar="URL")
    check.add_argument("--send", default="ping", metavar="TEXT", help='message (default "ping")')
    check.add_argument("--expect", metavar="TEXT", help="the reply must contain TEXT")
    check.add_argument("--expect-regex", metavar="RE", help="the reply must match RE")
    check.add_argument(
        "--expect-json",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="a JSON field of the reply must equal VALUE (repeatable)",
    )
    check.add_argument("-w", "--warning", metavar="RANGE", help="total seconds, Nagios range")
    check.add_argument("-c", "--critical", metavar="RANGE", help="total seconds, Nagios range")
    check.add_argument("--cert-warn-days", type=int, metavar="N")
    check.add_argument("--cert-crit-days", type=int, metavar="N")
    _add_call_options(check)
    check.set_defaults(handler=_check)


def _configure_serve(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--tls", action="store_true", help="also serve wss:// with a throw-away CA")
    serve.add_argument("--tls-port", type=int, default=8766)
    serve.add_argument(
        "--tls-dir",
        metavar="DIR",
        help="write ca.pem and server.pem here (default: a temporary directory)",
    )
    serve.set_defaults(handler=_serve)


def _add_call_options(parser: argparse.ArgumentParser, *, headers: bool = True) -> None:
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        help="deadline of each call (default $WSPROBE_TIMEOUT or 10)",
    )
    parser.add_argument("--cafile", metavar="PEM", help="CA bundle to trust for wss://")
    parser.add_argument("--insecure", action="store_true", help="skip certificate verification")
    if not headers:
        return
    parser.add_argument("-H", "--header", action="append", default=[], metavar="NAME:VALUE")
    parser.add_argument("--subprotocol", action="append", default=[], metavar="NAME")
    parser.add_argument("--origin", metavar="ORIGIN")
    parser.add_argument("--max-size", metavar="BYTES", help="largest reply accepted (16 MiB)")
    parser.add_argument("--no-compression", action="store_true", help="do not offer deflate")


def _options(args: argparse.Namespace) -> Options:
    from .options import DEFAULT_MAX_SIZE, make_options

    values: dict[str, Any] = {
        "timeout": args.timeout,
        "cafile": args.cafile,
        "insecure": args.insecure,
    }
    if hasattr(args, "header"):
        headers = []
        for header in args.header:
            name, sep, value = header.partition(":")
            if not sep:
                raise InvalidOption("header", f'expected NAME:VALUE, got "{header}"')
            headers.append((name.strip(), value.strip()))
        max_size = DEFAULT_MAX_SIZE
        if args.max_size is not None:
            if not args.max_size.isdigit():
                raise InvalidOption("max_size", f'"{args.max_size}" is not a number of bytes')
            max_size = int(args.max_size)
        values.update(
            headers=headers,
            subprotocols=args.subprotocol or None,
            origin=args.origin,
            max_size=max_size,
            compression=not args.no_compression,
        )
    return make_options(**values)


def _exit_code(error: Error) -> int:
    if isinstance(error, NoResponse):
        return EXIT_CODES["no-response"]
    if isinstance(error, BinaryMessage):
        return EXIT_CODES["binary"]
    if isinstance(error, InvalidURL | InvalidOption):
        return EXIT_CODES["usage"]
    if isinstance(error, ConnectError):
        kind = {"refused": "connect", "dns": "connect", "network": "connect"}.get(
            error.kind, error.kind
        )
        return EXIT_CODES[kind]
    if isinstance(error, ProtocolViolation):
        return EXIT_CODES["protocol"]
    return EXIT_CODES["too-large"]


def _describe(error: Error) -> str:
    return error.describe() if isinstance(error, NoResponse) else str(error)


# --- send ---


def _send(args: argparse.Namespace) -> int:
    from .client import probe_with

    try:
        options = _options(args)
        message = sys.stdin.read().removesuffix("\n") if args.message == "-" else args.message
        result = probe_with(args.url, message, options)
    except Error as exc:
        if args.json:
            import json

            print(json.dumps(_error_facts(args.url, exc), ensure_ascii=False))
        else:
            print(f"wsprobe: {_describe(exc)}", file=sys.stderr)
        return _exit_code(exc)
    if args.json:
        import json

        print(json.dumps(_facts(result), ensure_ascii=False))
        return 0
    if args.verbose:
        _print_facts(result, sys.stderr)
    print(result.reply)
    return 0


def _facts(result: Result) -> dict[str, Any]:
    facts = result.facts()
    expires = facts["cert_expires"]
    facts["cert_expires"] = expires.isoformat() if expires is not None else None
    return facts


def _error_facts(url: str, error: Error) -> dict[str, Any]:
    from .url import redact

    facts: dict[str, Any] = {"url": redact(url), "error": str(error), "exit": _exit_code(error)}
    if isinstance(error, ConnectError):
        facts.update(kind=error.kind, status=error.status)
    if isinstance(error, NoResponse):
        facts.update(
            close_code=error.close_code, close_reason=error.close_reason, timed_out=error.timed_out
        )
    return facts


def _print_facts(result: Result, stream: TextIO) -> None:
    timings = result.timings
    tls = "-" if timings.tls is None else f"{timings.tls:.6f}s"
    print(f"* connected to {result.peer} for {result.url}", file=stream)
    print(
        f"* HTTP {result.status}, subprotocol {result.subprotocol or '-'}, "
        f"close {result.close_code or '-'} {result.close_reason}".rstrip(),
        file=stream,
    )
    if result.cert_expires is not None:
        print(f"* certificate expires {result.cert_expires:%Y-%m-%d %H:%M:%S} UTC", file=stream)
    print(
        f"* dns {timings.dns:.6f}s connect {timings.connect:.6f}s tls {tls} "
        f"upgrade {timings.upgrade:.6f}s reply {timings.reply:.6f}s total {timings.total:.6f}s",
        file=stream,
    )


# --- check ---


def _check(args: argparse.Namespace) -> int:
    import datetime
    import re

    from .client import probe_with
    from .plugin import Expectations, Range, State, Verdict, judge, judge_error

    try:
        expect = Expectations(
            contains=args.expect,
            regex=re.compile(args.expect_regex) if args.expect_regex is not None else None,
            json_fields=tuple(Expectations.parse_json_field(f) for f in args.expect_json),
            warning=Range.parse(args.warning) if args.warning is not None else None,
            critical=Range.parse(args.critical) if args.critical is not None else None,
            cert_warn_days=args.cert_warn_days,
            cert_crit_days=args.cert_crit_days,
        )
        options = _options(args)
    except (ValueError, re.error, Error) as exc:
        print(Verdict(State.UNKNOWN, str(exc)).line())
        return int(State.UNKNOWN)
    try:
        result = probe_with(args.url, args.send, options)
    except (InvalidURL, InvalidOption) as exc:
        verdict = Verdict(State.UNKNOWN, str(exc))
    except Error as exc:
        verdict = judge_error(exc)
    except Exception as exc:  # a plugin must never crash into CRITICAL's exit code
        verdict = Verdict(State.UNKNOWN, f"internal error: {type(exc).__name__}: {exc}")
    else:
        verdict = judge(result, expect, datetime.datetime.now(datetime.UTC))
    print(verdict.line())
    return int(verdict.state)


# --- serve ---


def _serve(args: argparse.Namespace) -> int:
    import asyncio
    import os
    import signal
    from pathlib import Path

    from .serve import start_local

    async def serve_forever() -> None:
        servers = await start_local(
            args.host,
            args.port,
            tls=args.tls,
            tls_port=args.tls_port,
            tls_dir=Path(args.tls_dir) if args.tls_dir else None,
        )
        print(
            f"wsprobe serve: {servers.url}/ (echo; /binary /silent /close /delay?ms=N /greeting)",
            flush=True,
        )
        if servers.tls_url is not None:
            print(
                f"wsprobe serve: {servers.tls_url}/ (trust it with --cafile {servers.ca})",
                flush=True,
            )
        # Ctrl-C and a scheduler's SIGTERM both stop it cleanly; handling SIGINT
        # here also covers shells that start background jobs with SIGINT ignored.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await stop.wait()
        finally:
            await servers.close()
        print("wsprobe serve: stopped", file=sys.stderr)

    try:
        asyncio.run(serve_forever())
    except OSError as exc:
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        print(f"wsprobe serve: cannot listen on {args.host}: {reason}", file=sys.stderr)
        return 1
    except Error as exc:
        print(f"wsprobe serve: {exc}", file=sys.stderr)
        return 1
    return 0


# --- run ---


def _run(args: argparse.Namespace) -> int:
    from .runner import RunSettings, run_scripts

    try:
        settings = RunSettings.from_text(
            options=_options(args),
            env_names=args.env,
            script_timeout=args.script_timeout,
            memory_limit=args.memory_limit,
            instruction_limit=args.instruction_limit,
            concurrency=args.concurrency,
            log_level=args.log_level,
            json_output=args.json,
        )
    except Error as exc:
        print(f"wsprobe: {exc}", file=sys.stderr)
        return EXIT_CODES["usage"]
    return run_scripts(args.scripts, settings, stdout=sys.stdout, stderr=sys.stderr)


_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "run": ("run Lua monitor scripts", _configure_run),
    "send": ("send one message and print the first reply", _configure_send),
    "check": ("a monitoring plugin (Nagios, Icinga, ...)", _configure_check),
    "serve": ("a local WebSocket server for trying scripts", _configure_serve),
}
