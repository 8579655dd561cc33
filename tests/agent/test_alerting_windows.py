"""Maintenance windows: one-off, daily, weekly, across midnight and DST changes."""

from __future__ import annotations

import datetime

import pytest

from wsprobe.agent.alerting.windows import OneOff, Weekly, Window, in_maintenance


def at(text: str) -> float:
    """An ISO time with its offset, as Unix seconds."""
    return datetime.datetime.fromisoformat(text).timestamp()


ALL = frozenset(range(7))
MON, SAT, SUN = 0, 5, 6
ONE_OFF = OneOff(at("2026-12-24T22:00:00+00:00"), 7200.0)
# 23:30 to 00:30 every day, in UTC.
MIDNIGHT = Weekly(ALL, datetime.time(23, 30), 3600.0)
# Sundays 03:00 for 30 minutes, in Sao Paulo (UTC-3 all year).
SAO_PAULO = Weekly(frozenset({SUN}), datetime.time(3), 1800.0, "America/Sao_Paulo")
# 02:30 for an hour in New York: on 2026-03-08 02:30 does not exist, on 2026-11-01 01:30 twice.
NEW_YORK = Weekly(ALL, datetime.time(2, 30), 3600.0, "America/New_York")
NEW_YORK_1_30 = Weekly(ALL, datetime.time(1, 30), 1800.0, "America/New_York")
# Saturday 22:00 to Monday 06:00 in Berlin: a weekend across two midnights and a DST change.
WEEKEND = Weekly(frozenset({SAT}), datetime.time(22), 32 * 3600.0, "Europe/Berlin")

CASES: list[tuple[str, Window, str, bool]] = [
    ("one-off: before", ONE_OFF, "2026-12-24T21:59:59+00:00", False),
    ("one-off: its start", ONE_OFF, "2026-12-24T22:00:00+00:00", True),
    ("one-off: across midnight", ONE_OFF, "2026-12-25T00:30:00+01:00", True),
    ("one-off: its end is out", ONE_OFF, "2026-12-25T00:00:00+00:00", False),
    ("daily: before", MIDNIGHT, "2026-06-01T23:29:59+00:00", False),
    ("daily: opened", MIDNIGHT, "2026-06-01T23:30:00+00:00", True),
    ("daily: past midnight", MIDNIGHT, "2026-06-02T00:29:59+00:00", True),
    ("daily: closed", MIDNIGHT, "2026-06-02T00:30:00+00:00", False),
    ("weekly: sunday in its zone", SAO_PAULO, "2026-06-07T03:10:00-03:00", True),
    ("weekly: same hour in UTC is not it", SAO_PAULO, "2026-06-07T03:10:00+00:00", False),
    ("weekly: monday is not sunday", SAO_PAULO, "2026-06-08T03:10:00-03:00", False),
    ("weekly: closed after 30 minutes", SAO_PAULO, "2026-06-07T03:30:00-03:00", False),
    ("DST: a normal day at 02:45 EST", NEW_YORK, "2026-03-07T02:45:00-05:00", True),
    ("DST: 02:30 skipped, opens at 03:30 EDT", NEW_YORK, "2026-03-08T03:29:59-04:00", False),
    ("DST: 02:30 skipped, open at 03:30 EDT", NEW_YORK, "2026-03-08T03:30:00-04:00", True),
    ("DST: one elapsed hour later it closes", NEW_YORK, "2026-03-08T04:30:00-04:00", False),
    ("DST: the day after, 02:30 EDT again", NEW_YORK, "2026-03-09T02:30:00-04:00", True),
    ("DST: 01:30 twice, the first opens it", NEW_YORK_1_30, "2026-11-01T01:30:00-04:00", True),
    ("DST: the first closes after 30 min", NEW_YORK_1_30, "2026-11-01T01:59:59-04:00", True),
    ("DST: the second 01:30 is not another", NEW_YORK_1_30, "2026-11-01T01:30:00-05:00", False),
    ("weekend: saturday evening", WEEKEND, "2026-03-28T22:00:00+01:00", True),
    ("weekend: sunday, after the clocks moved", WEEKEND, "2026-03-29T12:00:00+02:00", True),
    ("weekend: 32 elapsed hours end at 07:00 CEST", WEEKEND, "2026-03-30T06:59:59+02:00", True),
    ("weekend: monday 07:00 CEST is out", WEEKEND, "2026-03-30T07:00:00+02:00", False),
    ("weekend: friday is out", WEEKEND, "2026-03-27T23:00:00+01:00", False),
]


@pytest.mark.parametrize(
    ("window", "moment", "covered"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_windows(window: Window, moment: str, covered: bool) -> None:
    assert window.covers(at(moment)) is covered


def test_a_window_covers_only_its_monitors() -> None:
    windows: list[Window] = [
        OneOff(100.0, 10.0, frozenset({"api"})),
        Weekly(ALL, datetime.time(0), 60.0),
    ]
    assert in_maintenance(windows, "api", 105.0)
    assert not in_maintenance(windows, "db", 105.0)
    # The daily window at 00:00 UTC covers every monitor.
    assert in_maintenance(windows, "db", 86400.0 * 3 + 30)
    assert not in_maintenance(windows, "db", 86400.0 * 3 + 60)
    assert not in_maintenance([], "api", 105.0)
