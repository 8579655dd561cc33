"""``wsprobe check URL``: a Monitoring Plugins check (judged by :mod:`.plugin`)."""

from __future__ import annotations

import argparse

from ..errors import Error, InvalidOption, InvalidURL
from .options import add_call_options, call_options

__all__ = ["configure"]


def configure(check: argparse.ArgumentParser) -> None:
    check.add_argument("url", metavar="URL")
    check.add_argument("--send", default="ping", metavar="TEXT", help='message (default "ping")')
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
    import datetime

    from ..client import probe_with
    from .plugin import Expectations, Range, State, Verdict, compile_regex, judge, judge_error

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
