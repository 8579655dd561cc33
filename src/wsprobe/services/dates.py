"""``time.parse``: RFC 3339 date-times to Unix seconds.

Accepted: ``YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`` as RFC 3339 section 5.6
defines it; ``t``/``z`` in lower case and a space instead of ``T`` too (section 5.6
allows both). A leap second (``:60``) counts as the second before it, as Monsta's
Rust date library does. Everything else is an :class:`~wsprobe.errors.InvalidDate`:
a date without an offset is ambiguous and refused, as are impossible dates.
"""

from __future__ import annotations

import datetime
import re

from ..errors import InvalidDate

__all__ = ["parse_rfc3339"]

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)
# Longer texts are shown cut, so that a hostile string cannot make a huge message.
_SHOWN = 64


def parse_rfc3339(text: str) -> int | float:
    """Unix seconds of ``text``: an integer, or a float when it has a fraction.

    Raises :class:`~wsprobe.errors.InvalidDate` (``time.parse: invalid RFC 3339
    date "…"``) for anything that is not an RFC 3339 date-time.
    """
    found = _RFC3339.fullmatch(text)
    if found is None:
        raise InvalidDate(_cut(text))
    year, month, day, hour, minute, second = (int(found.group(i)) for i in range(1, 7))
    fraction, zulu, sign, offset_hours, offset_minutes = found.group(7, 8, 9, 10, 11)
    leap = second == 60
    try:
        if zulu:
            zone = datetime.UTC
        else:
            if int(offset_hours) > 23 or int(offset_minutes) > 59:
                raise ValueError("offset out of range")
            offset = datetime.timedelta(hours=int(offset_hours), minutes=int(offset_minutes))
            zone = datetime.timezone(-offset if sign == "-" else offset)
        moment = datetime.datetime(
            year, month, day, hour, minute, 59 if leap else second, tzinfo=zone
        )
    except ValueError:
        raise InvalidDate(_cut(text)) from None
    whole = int(moment.timestamp())
    if fraction is None or leap or int(fraction[1:]) == 0:
        return whole
    return whole + float("0" + fraction)


def _cut(text: str) -> str:
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"
