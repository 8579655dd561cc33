"""``wsprobe run SCRIPT...``: Lua monitors (the runtime is :mod:`wsprobe.lua`)."""

from __future__ import annotations

import argparse
import sys

from ..errors import Error
from .exitcodes import EXIT_CODES
from .fdlimit import enough_open_files
from .options import add_call_options, add_state_dir, call_options
from .streams import hold, say

__all__ = ["configure"]


def configure(run: argparse.ArgumentParser) -> None:
    run.add_argument("scripts", nargs="+", metavar="SCRIPT", help="Lua files (- for stdin)")
    add_call_options(run, headers=False)
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
        "--max-sessions",
        default="100",
        metavar="N",
        help="open ws.connect sessions per script (default 100)",
    )
    run.add_argument(
        "--concurrency", default="200", metavar="N", help="scripts in flight at once (default 200)"
    )
    add_state_dir(run)
    run.add_argument("--workers", metavar="N", help="worker processes (default: one per core)")
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warn", "error"])
    run.add_argument("--json", action="store_true", help="one JSON object per script on stdout")
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from ..lua.job import RunSettings
    from ..lua.output import OutputError
    from ..lua.runner import run_scripts, workers_for
    from ..lua.supervisor import files_needed

    # wsprobe run writes to both (streams.hold_closed() held them on /dev/null).
    closed = [name for fd, name in args.closed.items() if fd in (1, 2)]
    if closed:
        say(f"wsprobe: standard {closed[0]} is closed")
        return EXIT_CODES["internal"]
    try:
        settings = RunSettings.from_text(
            options=call_options(args),
            env_names=args.env,
            script_timeout=args.script_timeout,
            memory_limit=args.memory_limit,
            instruction_limit=args.instruction_limit,
            max_sessions=args.max_sessions,
            concurrency=args.concurrency,
            workers=args.workers,
            log_level=args.log_level,
            json_output=args.json,
            state_dir=args.state_dir,
        )
    except Error as exc:
        print(f"wsprobe: {exc}", file=sys.stderr)
        return EXIT_CODES["usage"]
    too_low = enough_open_files(files_needed(workers_for(settings, len(args.scripts))))
    if too_low is not None:
        print(f"wsprobe: {too_low}", file=sys.stderr)
        return EXIT_CODES["internal"]
    try:
        return run_scripts(args.scripts, settings, stdout=sys.stdout, stderr=sys.stderr)
    except OutputError as exc:
        hold(exc.stream)
        say(f"wsprobe: {exc}")
        return EXIT_CODES["internal"]
