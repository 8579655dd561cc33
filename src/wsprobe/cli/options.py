"""The call options every command shares: flags in, validated :class:`Options` out."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..errors import InvalidOption

if TYPE_CHECKING:
    from ..options import Options

__all__ = ["add_call_options", "add_state_dir", "call_options"]


def add_call_options(parser: argparse.ArgumentParser, *, headers: bool = True) -> None:
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


def add_state_dir(parser: argparse.ArgumentParser) -> None:
    """``--state-dir``: where ``wsprobe.db`` is (scripts' ``store``, the agent's history)."""
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        help="where store and the agent keep wsprobe.db (default $WSPROBE_STATE_DIR, "
        "$XDG_STATE_HOME/wsprobe or ~/.local/state/wsprobe)",
    )


def call_options(args: argparse.Namespace) -> Options:
    from ..options import DEFAULT_MAX_SIZE, make_options
    from ..url import redact_header

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
                raise InvalidOption(
                    "header", f'expected NAME:VALUE, got "{redact_header(header)}"'
                )
            headers.append((name.strip(), value.strip()))
        max_size = DEFAULT_MAX_SIZE
        if args.max_size is not None:
            if not (args.max_size.isascii() and args.max_size.isdigit()):
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
