"""time.parse's RFC 3339 dates and uuid.uuid4's identifiers."""

from __future__ import annotations

import datetime
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsprobe.errors import InvalidDate
from wsprobe.services.dates import parse_rfc3339
from wsprobe.services.ids import uuid4

DATES = [
    # The page's two examples: the same moment.
    ("2024-01-15T10:30:00Z", 1705314600),
    ("2024-01-15T07:30:00-03:00", 1705314600),
    ("2024-01-15T11:45:00Z", 1705319100),
    ("2024-01-15t10:30:00z", 1705314600),
    ("2024-01-15 10:30:00+00:00", 1705314600),
    ("2024-01-15T10:30:00.250Z", 1705314600.25),
    ("2024-01-15T10:30:00.000Z", 1705314600),
    ("1970-01-01T00:00:00Z", 0),
    ("1969-12-31T23:59:59Z", -1),
    ("2016-12-31T23:59:60Z", 1483228799),
    ("2024-02-29T00:00:00+14:00", 1709114400),
]


@pytest.mark.parametrize(("text", "seconds"), DATES)
def test_valid_dates(text: str, seconds: float) -> None:
    parsed = parse_rfc3339(text)
    assert parsed == seconds
    assert type(parsed) is type(seconds)


INVALID = [
    "",
    "2024-01-15",
    "2024-01-15T10:30:00",
    "2024-01-15T10:30Z",
    "2024-1-15T10:30:00Z",
    "15/01/2024 10:30:00",
    "2023-02-29T00:00:00Z",
    "2024-13-01T00:00:00Z",
    "2024-01-15T24:00:00Z",
    "2024-01-15T10:30:61Z",
    "2024-01-15T10:30:00+24:00",
    "2024-01-15T10:30:00+05:60",
    "2024-01-15T10:30:00Z ",
    "0000-01-01T00:00:00Z",
    "２０２４-01-15T10:30:00Z",
]


@pytest.mark.parametrize("text", INVALID)
def test_invalid_dates(text: str) -> None:
    with pytest.raises(InvalidDate) as caught:
        parse_rfc3339(text)
    assert str(caught.value) == f'time.parse: invalid RFC 3339 date "{text}"'


def test_a_long_invalid_text_is_cut_in_the_message() -> None:
    with pytest.raises(InvalidDate) as caught:
        parse_rfc3339("x" * 10_000)
    assert str(caught.value) == 'time.parse: invalid RFC 3339 date "' + "x" * 64 + '…"'


@given(
    st.datetimes(
        min_value=datetime.datetime(1, 1, 2),
        max_value=datetime.datetime(9999, 12, 30),
        timezones=st.builds(
            datetime.timezone,
            st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: datetime.timedelta(minutes=m)),
        ),
    )
)
def test_any_datetime_written_in_rfc3339_parses_to_its_timestamp(
    moment: datetime.datetime,
) -> None:
    text = moment.isoformat()
    assert parse_rfc3339(text) == pytest.approx(moment.timestamp(), abs=1e-6)


def test_uuid4_has_the_version_4_form_and_does_not_repeat() -> None:
    pattern = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    seen = {uuid4() for _ in range(1000)}
    assert len(seen) == 1000
    assert all(pattern.match(value) for value in seen)
