"""``wsprobe agent``: the arguments, the log lines and the exit code of :mod:`wsprobe.agent`."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from ..errors import Error

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments to ``parser``."""
    parser.add_argument("config", metavar="CONFIG.yaml", help="monitors, modules, defaults")
    parser.add_argument("--listen", metavar="HOST:PORT", help="default: the config's listen")
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        help="history database (default $WSPROBE_STATE_DIR or ~/.local/state/wsprobe)",
    )
    parser.add_argument("--shard", metavar="I/N", default="0/1", help="run shard I of N")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run until SIGTERM: 0 after a clean stop, 2 for bad arguments or configuration,
    1 when the agent cannot start."""
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
    from ..agent.service import serve
    from ..agent.sharding import Shard

    try:
        shard = Shard.parse(args.shard)
        if args.listen is not None:
            parse_listen(args.listen)
    except Error as exc:
        print(f"wsprobe agent: {exc}", file=sys.stderr)
        return 2
    from ..lua.runner import run_event_loop

    try:
        run_event_loop(
            serve(
                Path(args.config),
                listen=args.listen,
                state_dir=_state_dir(args.state_dir),
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


def _state_dir(given: str | None) -> Path:
    from pathlib import Path

    if given:
        return Path(given)
    if os.environ.get("WSPROBE_STATE_DIR"):
        return Path(os.environ["WSPROBE_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "wsprobe"


def _log(line: str) -> None:
    import datetime

    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    print(f"{stamp}Z wsprobe agent: {line}", file=sys.stderr, flush=True)
