"""``wsprobe send URL [MESSAGE]``: one message, the first reply, exit codes by failure."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import ConnectError, Error, InvalidOption, NoResponse
from .exitcodes import EXIT_CODES, describe, exit_code
from .oneshot import load_client
from .options import add_call_options, call_options

if TYPE_CHECKING:
    from ..models import Result

__all__ = ["configure"]


def configure(send: argparse.ArgumentParser) -> None:
    send.add_argument("url", metavar="URL")
    send.add_argument(
        "message",
        nargs="?",
        default="-",
        metavar="MESSAGE",
        help="text to send (default: standard input)",
    )
    add_call_options(send)
    send.add_argument("-v", "--verbose", action="store_true", help="timings and facts on stderr")
    send.add_argument("--json", action="store_true", help="reply and facts as one JSON object")
    send.set_defaults(handler=_send)


def _send(args: argparse.Namespace) -> int:
    if 1 in args.closed:
        # The reply would go nowhere: no call (the code of output that cannot be written).
        print("wsprobe: standard output is closed", file=sys.stderr)
        return EXIT_CODES["internal"]
    load_client()
    from ..client import probe_with

    args.lean_exit = True  # one call in this process: see wsprobe.cli.main_entry

    try:
        options = call_options(args)
        message = _stdin_text(options.max_size) if args.message == "-" else args.message
        result = probe_with(args.url, message, options)
    except Error as exc:
        if args.json:
            import json

            print(json.dumps(_error_facts(args.url, exc), ensure_ascii=False))
        else:
            if args.verbose:
                _print_learnt(exc, sys.stderr)
            print(f"wsprobe: {describe(exc)}", file=sys.stderr)
        return exit_code(exc)
    if args.json:
        import json

        print(json.dumps(_facts(result), ensure_ascii=False))
        return 0
    if args.verbose:
        _print_facts(result, sys.stderr)
    print(result.reply)
    return 0


def _stdin_text(largest: int) -> str:
    # Read as bytes: the text layer would turn undecodable bytes into surrogates. A
    # closed standard input (None; held on /dev/null) reads as empty, as /dev/null.
    # Bounded: an input that never ends (/dev/zero) would take every byte of memory;
    # a message is no larger than the reply it may get (plus its newline). In chunks:
    # read(n) allocates n bytes first, and --max-size may be huge.
    chunks, size = [], 0
    while sys.stdin is not None and size <= largest + 1:
        chunk = sys.stdin.buffer.read(1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    data = b"".join(chunks)
    if size > largest + 1 or (size == largest + 1 and not data.endswith(b"\n")):
        raise InvalidOption(
            "MESSAGE",
            f"standard input is larger than --max-size ({largest} bytes)",
            kind="argument",
        )
    try:
        return data.decode().removesuffix("\n")
    except UnicodeDecodeError:
        raise InvalidOption(
            "MESSAGE", "standard input is not valid UTF-8 text", kind="argument"
        ) from None


def _facts(result: Result) -> dict[str, Any]:
    facts = result.facts()
    expires = facts["cert_expires"]
    facts["cert_expires"] = expires.isoformat() if expires is not None else None
    return facts


def _error_facts(url: str, error: Error) -> dict[str, Any]:
    from ..url import redact

    facts: dict[str, Any] = {"url": redact(url), "error": str(error), "exit": exit_code(error)}
    facts.update(error.facts)
    if isinstance(error, ConnectError):
        facts.update(kind=error.kind, status=error.status)
    if isinstance(error, NoResponse):
        facts.update(
            close_code=error.close_code, close_reason=error.close_reason, timed_out=error.timed_out
        )
    return facts


def _print_learnt(error: Error, stream: TextIO) -> None:
    """What the call had learnt before it failed, in ``-v``'s lines."""
    facts = error.facts
    if not facts:
        return  # it failed before any I/O: a bad URL or option
    peer = facts.get("peer")
    print(
        f"* failed in phase {facts['phase']}" + (f", connected to {peer}" if peer else ""),
        file=stream,
    )
    status = facts.get("status")
    if status is not None:
        line = f"* HTTP {status}"
        if facts.get("location"):
            line += f", Location: {facts['location']}"
        if facts.get("phase") == "reply":
            line += f", subprotocol {facts.get('subprotocol') or '-'}"
        print(line, file=stream)
    if isinstance(error, NoResponse) and error.close_code is not None:
        print(f"* close {error.close_code} {error.close_reason}".rstrip(), file=stream)


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
