"""``wsprobe serve``: the local behaviour server (:mod:`.localserver`) until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import sys

from ..errors import Error
from .streams import hold

__all__ = ["configure"]


def configure(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8765)
    serve.add_argument("--tls", action="store_true", help="also serve wss:// with a throw-away CA")
    serve.add_argument("--tls-port", type=_port, default=8766)
    serve.add_argument(
        "--tls-dir",
        metavar="DIR",
        help="write ca.pem and server.pem here (default: a temporary directory)",
    )
    serve.set_defaults(handler=_serve)


def _port(text: str) -> int:
    # argparse turns the ValueError into "invalid _port value: '70000'"; say more.
    if not (text.isascii() and text.isdigit()) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0-65535, got {text!r}")
    return int(text)


def _serve(args: argparse.Namespace) -> int:
    import asyncio
    import os
    import signal
    import socket
    from pathlib import Path

    from .localserver import start_local

    async def serve_forever() -> None:
        try:
            servers = await start_local(
                args.host,
                args.port,
                tls=args.tls,
                tls_port=args.tls_port,
                tls_dir=Path(args.tls_dir) if args.tls_dir else None,
            )
        except OSError as exc:
            raise _CannotListen(exc) from None
        try:
            # Ctrl-C and a scheduler's SIGTERM both stop it cleanly, from the moment
            # it says where it listens (a caller may signal as soon as it reads that);
            # handling SIGINT here also covers shells that start background jobs
            # with SIGINT ignored.
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            behaviours = "echo; /binary /silent /close /delay?ms=N /greeting"
            print(f"wsprobe serve: {servers.url}/ ({behaviours})", flush=True)
            if servers.tls_url is not None:
                print(
                    f"wsprobe serve: {servers.tls_url}/ (trust it with --cafile {servers.ca})",
                    flush=True,
                )
            await stop.wait()
        finally:
            await servers.close()

    try:
        asyncio.run(serve_forever())
    except _CannotListen as failed:
        exc = failed.error
        # A resolver's error numbers (EAI_*) are not errno values: its own text says it.
        resolver = isinstance(exc, socket.gaierror)
        reason = os.strerror(exc.errno) if exc.errno and not resolver else exc.strerror or str(exc)
        print(f"wsprobe serve: cannot listen on {args.host}: {reason.lower()}", file=sys.stderr)
        return 1
    except OSError as exc:  # standard output: nobody learns where it listens
        hold(1)
        reason = (exc.strerror or str(exc)).lower()
        print(f"wsprobe serve: cannot write to standard output: {reason}", file=sys.stderr)
        return 1
    except Error as exc:
        print(f"wsprobe serve: {exc}", file=sys.stderr)
        return 1
    # Stopped as asked: a last line that cannot be written changes nothing.
    try:
        print("wsprobe serve: stopped", file=sys.stderr, flush=True)
    except OSError:
        hold(2)
    return 0


class _CannotListen(Exception):
    def __init__(self, error: OSError) -> None:
        super().__init__(error)
        self.error = error
