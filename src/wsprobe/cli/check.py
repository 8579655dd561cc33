"""``wsprobe check URL`` and ``wsprobe check --script FILE``: Monitoring Plugins checks.

A URL is judged by :mod:`.plugin`; a script is judged by what it returns (the
result convention of :mod:`wsprobe.lua.result`): its state is the exit code, the
first line names it with the value, the perfdata carries numeric values and the
timings of every ``ws`` call the script made, and what the script printed follows
as the plugin's long text.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ..errors import Error, InvalidOption, InvalidURL
from .fdlimit import enough_open_files, unexpected
from .oneshot import load_client
from .options import add_call_options, add_state_dir, call_options
from .streams import hold

if TYPE_CHECKING:
    from ..lua.output import ScriptOutcome
    from ..plugin import Verdict

__all__ = ["configure", "script_verdict"]


def configure(check: argparse.ArgumentParser) -> None:
    check.add_argument("url", metavar="URL", nargs="?", help="the WebSocket URL to check")
    check.add_argument(
        "--script", metavar="FILE", help="run this Lua monitor instead; its result decides"
    )
    check.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME",
        help="with --script: let os.getenv see this variable (repeatable)",
    )
    add_state_dir(check)
    check.add_argument("--send", metavar="TEXT", help='message (default "ping")')
    check.add_argument("--expect", metavar="TEXT", help="the reply must contain TEXT")
    check.add_argument("--expect-regex", metavar="RE", help="the reply must match RE")
    check.add_argument(
        "--expect-json",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="a JSON field of the reply must equal VALUE (repeatable; PATH . is the whole reply)",
    )
    check.add_argument("-w", "--warning", metavar="RANGE", help="total seconds, Nagios range")
    check.add_argument("-c", "--critical", metavar="RANGE", help="total seconds, Nagios range")
    check.add_argument("--cert-warn-days", type=int, metavar="N")
    check.add_argument("--cert-crit-days", type=int, metavar="N")
    add_call_options(check)
    check.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    from ..plugin import State, Verdict

    if 1 in args.closed:
        # The status line is the plugin's answer: without it nothing was measured.
        print("wsprobe: standard output is closed", file=sys.stderr)
        return int(State.UNKNOWN)
    problem = None
    if args.url is None and args.script is None:
        # argparse's own words, as when URL was required.
        problem = "wsprobe check: the following arguments are required: URL"
    elif args.url is not None and args.script is not None:
        problem = "wsprobe check: give a URL or --script FILE, not both"
    elif args.script is not None and (flag := _url_only_flag(args)) is not None:
        # Ignored, a threshold or an expectation would let the check pass unjudged.
        problem = f"wsprobe check: {flag} applies to a URL, not to --script"
    elif args.url is not None and args.env:
        problem = "wsprobe check: --env applies to --script, not to a URL"
    if problem is not None:
        print(Verdict(State.UNKNOWN, problem).line())
        return int(State.UNKNOWN)
    if args.script is not None:
        return _check_script(args)
    return _check_url(args)


# The flags that judge a URL's reply, as argparse names them, by destination.
_URL_ONLY = {
    "send": "--send",
    "expect": "--expect",
    "expect_regex": "--expect-regex",
    "expect_json": "--expect-json",
    "warning": "-w/--warning",
    "critical": "-c/--critical",
    "cert_warn_days": "--cert-warn-days",
    "cert_crit_days": "--cert-crit-days",
}


def _url_only_flag(args: argparse.Namespace) -> str | None:
    """The first flag given that only a URL's check uses (unset ones are None or [])."""
    for dest, flag in _URL_ONLY.items():
        if getattr(args, dest) not in (None, []):
            return flag
    return None


def _check_url(args: argparse.Namespace) -> int:
    load_client()
    from ..client import probe_with

    args.lean_exit = True  # one call in this process: see wsprobe.cli.main_entry
    from ..plugin import Expectations, Range, State, Verdict, compile_regex, judge, judge_error

    try:
        expect = Expectations(
            contains=args.expect,
            regex=compile_regex(args.expect_regex) if args.expect_regex is not None else None,
            json_fields=tuple(Expectations.parse_json_field(f) for f in args.expect_json),
            warning=Range.parse(args.warning) if args.warning is not None else None,
            critical=Range.parse(args.critical) if args.critical is not None else None,
            cert_warn_days=args.cert_warn_days,
            cert_crit_days=args.cert_crit_days,
        )
        options = call_options(args)
    except (ValueError, Error) as exc:
        print(Verdict(State.UNKNOWN, str(exc)).line())
        return int(State.UNKNOWN)
    try:
        result = probe_with(args.url, "ping" if args.send is None else args.send, options)
    except (InvalidURL, InvalidOption) as exc:
        verdict = Verdict(State.UNKNOWN, str(exc))
    except Error as exc:
        verdict = judge_error(exc)
    except Exception as exc:  # a plugin must never crash into CRITICAL's exit code
        verdict = Verdict(State.UNKNOWN, unexpected(exc))
    else:
        verdict = judge(result, expect)
    print(verdict.line())
    return int(verdict.state)


def _check_script(args: argparse.Namespace) -> int:
    import io
    from pathlib import Path

    from ..lua.output import OutputError
    from ..lua.runner import RunSettings, run_outcomes
    from ..lua.supervisor import files_needed
    from ..plugin import State, Verdict

    try:
        # The run's own limits; one script, one worker, and only warnings logged.
        settings = RunSettings(
            options=call_options(args),
            env_names=tuple(args.env),
            concurrency=1,
            workers=1,
            log_level="warn",
            state_dir=Path(args.state_dir) if args.state_dir else None,
        )
    except Error as exc:
        print(Verdict(State.UNKNOWN, str(exc)).line())
        return int(State.UNKNOWN)
    too_low = enough_open_files(files_needed(settings.worker_count()))
    if too_low is not None:
        print(Verdict(State.UNKNOWN, too_low).line())
        return int(State.UNKNOWN)
    printed = io.StringIO()
    try:
        [outcome], _ = run_outcomes([args.script], settings, stdout=printed, stderr=sys.stderr)
    except OutputError as exc:
        # Standard error (the script's log) failed: the answer still goes out.
        hold(exc.stream)
        verdict = Verdict(State.UNKNOWN, str(exc))
    except Exception as exc:  # a plugin must never crash into CRITICAL's exit code
        verdict = Verdict(State.UNKNOWN, unexpected(exc))
    else:
        verdict = script_verdict(outcome)
    print(verdict.line())
    print(printed.getvalue(), end="")
    return int(verdict.state)


def script_verdict(outcome: ScriptOutcome) -> Verdict:
    """A script's outcome as a plugin verdict: its state and words
    (:meth:`~wsprobe.lua.result.ScriptResult.text`), its value and its calls' timings
    as perfdata."""
    from ..plugin import Verdict, timing_perfdata, value_perfdata

    judged = outcome.judged
    perfdata = value_perfdata(judged.value)
    for index, timings in enumerate(outcome.calls, 1):
        perfdata += timing_perfdata(timings, prefix=f"ws{index}_")
    return Verdict(judged.state, judged.text(outcome.name), perfdata)
