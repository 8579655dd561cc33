"""``wsprobe agent``: the arguments, the log lines and the exit code of :mod:`wsprobe.agent`."""

from __future__ import annotations

import argparse
import sys

from ..errors import Error, one_line
from .fdlimit import enough_open_files
from .options import add_state_dir

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments to ``parser``."""
    parser.add_argument("config", metavar="CONFIG.yaml", help="monitors, modules, defaults")
    parser.add_argument("--listen", metavar="HOST:PORT", help="default: the config's listen")
    add_state_dir(parser)
    parser.add_argument("--shard", metavar="I/N", default="0/1", help="run shard I of N")
    parser.add_argument(
        "--test-notify",
        metavar="NOTIFIER",
        help="send a test notification through NOTIFIER and exit (0: every URL took it)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run until SIGTERM: 0 after a clean stop, 2 for bad arguments or configuration,
    1 when the agent cannot start. With ``--test-notify``: 0 once the notifier took
    the test notification, 1 when it did not."""
    try:
        import aiohttp  # noqa: F401
        import prometheus_client  # noqa: F401
        import yaml  # noqa: F401
    except ImportError as exc:
        print(
            f"wsprobe agent: needs the agent extra ({exc.name} is missing): "
            "pip install 'wsprobe[agent]'",
            file=sys.stderr,
        )
        return 1
    # Imported here: `wsprobe check` starts once per check and never needs them.
    from pathlib import Path

    from ..agent.config import ConfigError, parse_listen
    from ..agent.main import serve, test_notify
    from ..agent.sharding import Shard

    try:
        shard = Shard.parse(args.shard)
        if args.listen is not None:
            parse_listen(args.listen)
    except Error as exc:
        print(f"wsprobe agent: {exc}", file=sys.stderr)
        return 2
    from ..lua.eventloop import run_event_loop
    from ..lua.supervisor import files_needed
    from ..services.store import default_state_dir

    if args.test_notify is not None:
        try:
            failure = run_event_loop(test_notify(Path(args.config), args.test_notify))
        except ConfigError as exc:
            print(f"wsprobe agent: {args.config}: {exc}", file=sys.stderr)
            return 2
        if failure is not None:
            print(f"wsprobe agent: test notification failed: {one_line(failure)}", file=sys.stderr)
            return 1
        print(f"wsprobe agent: test notification sent through {args.test_notify}")
        return 0
    # Enough for the event loop and one worker; the agent checks again for the
    # workers its configuration asks for, once it has read it.
    too_low = enough_open_files(files_needed(1))
    if too_low is not None:
        print(f"wsprobe agent: {too_low}", file=sys.stderr)
        return 1
    try:
        run_event_loop(
            serve(
                Path(args.config),
                listen=args.listen,
                state_dir=Path(args.state_dir) if args.state_dir else default_state_dir(),
                shard=shard,
                log=_log,
            )
        )
    except ConfigError as exc:
        print(f"wsprobe agent: {args.config}: {exc}", file=sys.stderr)
        return 2
    except Error as exc:
        print(f"wsprobe agent: {exc}", file=sys.stderr)
        return 1
    return 0


def _log(line: str) -> None:
    import datetime

    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    # One line whatever a monitor's error held: a line break would forge another line.
    print(f"{stamp}Z wsprobe agent: {one_line(line)}", file=sys.stderr, flush=True)
