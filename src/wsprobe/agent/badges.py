"""SVG badges in the look of shields.io's "flat" style: self-contained, no external assets.

The two halves are as wide as their text in 11 px DejaVu Sans (the font shields.io's
badges fall back to, close to their Verdana), from its advance widths; ``textLength`` makes
a renderer with another font fit the text to the same box.
"""

from __future__ import annotations

import math
import re
import unicodedata
from html import escape

from .outcome import State

__all__ = [
    "COLORS",
    "badge",
    "format_latency",
    "format_uptime",
    "latency_badge",
    "status_badge",
    "text_width",
    "uptime_badge",
]

COLORS = {
    "brightgreen": "#4c1",
    "green": "#97ca00",
    "yellowgreen": "#a4a61d",
    "yellow": "#dfb317",
    "orange": "#fe7d37",
    "red": "#e05d44",
    "lightgrey": "#9f9f9f",
    "grey": "#555",
}
_FONT_SIZE = 11
_PADDING = 10
_MAX_TEXT = 64
_HEX = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")
# DejaVu Sans' advance widths for " " to "~", in units of 1/2048 em (as Chromium lays
# them out); Verdana's are within a few percent.
_ADVANCES = [
    651,
    821,
    942,
    1716,
    1303,
    1946,
    1597,
    563,
    799,
    799,
    1024,
    1716,
    651,
    739,
    651,
    690,
    1303,
    1303,
    1303,
    1303,
    1303,
    1303,
    1303,
    1303,
    1303,
    1303,
    690,
    690,
    1716,
    1716,
    1716,
    1087,
    2048,
    1401,
    1405,
    1430,
    1577,
    1294,
    1178,
    1587,
    1540,
    604,
    604,
    1343,
    1141,
    1767,
    1532,
    1612,
    1235,
    1612,
    1423,
    1300,
    1251,
    1499,
    1401,
    2025,
    1403,
    1251,
    1403,
    799,
    690,
    799,
    1716,
    1024,
    1024,
    1255,
    1300,
    1126,
    1300,
    1260,
    721,
    1300,
    1298,
    569,
    569,
    1186,
    569,
    1995,
    1298,
    1253,
    1300,
    1300,
    842,
    1067,
    803,
    1298,
    1212,
    1675,
    1212,
    1212,
    1075,
    1303,
    690,
    1303,
    1716,
]
_WIDTHS = {chr(32 + index): advance / 2048 for index, advance in enumerate(_ADVANCES)}
# A letter outside ASCII without an ASCII base: about the width of an "n".
_OTHER = 1298 / 2048
_STATES = {
    State.OK: ("ok", "brightgreen"),
    State.WARNING: ("warning", "yellow"),
    State.CRITICAL: ("critical", "red"),
    State.UNKNOWN: ("unknown", "orange"),
}
# (lowest uptime, colour), best first.
_UPTIME_COLORS = [
    (0.999, "brightgreen"),
    (0.99, "green"),
    (0.97, "yellowgreen"),
    (0.95, "yellow"),
    (0.90, "orange"),
]
# (highest mean latency in seconds, colour), best first.
_LATENCY_COLORS = [
    (0.1, "brightgreen"),
    (0.3, "green"),
    (0.5, "yellowgreen"),
    (1.0, "yellow"),
    (2.0, "orange"),
]


def text_width(text: str) -> float:
    """The width of ``text`` in pixels, in 11 px DejaVu Sans."""
    width = 0.0
    for char in text:
        width += _char_width(char)
    return width * _FONT_SIZE


def _char_width(char: str) -> float:
    known = _WIDTHS.get(char)
    if known is not None:
        return known
    if unicodedata.combining(char) or unicodedata.category(char) in {"Cc", "Cf", "Mn", "Me"}:
        return 0.0
    if unicodedata.east_asian_width(char) in {"W", "F"}:
        return 1.0
    base = unicodedata.normalize("NFD", char)[0]
    return _WIDTHS.get(base, _OTHER)


def badge(label: str, value: str, color: str) -> str:
    """A badge reading ``label | value``, the value on ``color`` (a name of :data:`COLORS`
    or ``#rgb``/``#rrggbb``); text is cut at 64 characters and escaped."""
    fill = COLORS.get(color, color)
    if not _HEX.fullmatch(fill):
        raise ValueError(f'invalid badge colour "{color[:20]}"')
    label, value = _clean(label), _clean(value)
    label_text, value_text = text_width(label), text_width(value)
    label_width = math.ceil(label_text) + _PADDING
    value_width = math.ceil(value_text) + _PADDING
    width = label_width + value_width
    title = escape(f"{label}: {value}")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f'aria-label="{title}"><title>{title}</title>',
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" '
        'stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>',
        f'<clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath>',
        f'<g clip-path="url(#r)"><rect width="{label_width}" height="20" fill="#555"/>'
        f'<rect x="{label_width}" width="{value_width}" height="20" fill="{fill}"/>'
        f'<rect width="{width}" height="20" fill="url(#s)"/></g>',
        '<g fill="#fff" text-anchor="middle" font-family="DejaVu Sans,Verdana,Geneva,sans-serif" '
        'text-rendering="geometricPrecision" font-size="110">',
        *_text(label, label_width / 2, label_text),
        *_text(value, label_width + value_width / 2, value_text),
        "</g></svg>",
    ]
    return "".join(parts)


def _text(text: str, middle: float, width: float) -> list[str]:
    # Drawn at 10x and scaled down, as shields.io does, for sub-pixel placement.
    shown = escape(text)
    x, length = round(middle * 10), round(width * 10)
    return [
        f'<text aria-hidden="true" x="{x}" y="150" fill="#010101" fill-opacity=".3" '
        f'transform="scale(.1)" textLength="{length}">{shown}</text>',
        f'<text x="{x}" y="140" transform="scale(.1)" fill="#fff" textLength="{length}">'
        f"{shown}</text>",
    ]


def _clean(text: str) -> str:
    # XML 1.0 has no place for most control characters, nor for lone surrogates.
    kept = "".join(
        "\ufffd" if unicodedata.category(char) in {"Cc", "Cs"} or char in "\ufffe\uffff" else char
        for char in text
    )
    return kept if len(kept) <= _MAX_TEXT else kept[: _MAX_TEXT - 1] + "…"


def format_uptime(share: float) -> str:
    """``0.99934`` → ``"99.93%"``: two decimals, never rounded up to 100%."""
    if share >= 1:
        return "100%"
    # Rounded first to 6 digits: 0.9993 * 10_000 is 9992.999….
    percent = math.floor(round(max(share, 0.0) * 10_000, 6)) / 100
    return f"{percent:.2f}%"


def format_latency(seconds: float) -> str:
    """``0.1234`` → ``"123 ms"``; ``0.00042`` → ``"0.4 ms"``; ``2.5`` → ``"2.50 s"``."""
    if seconds >= 1:
        return f"{seconds:.2f} s"
    milliseconds = seconds * 1000
    return f"{milliseconds:.0f} ms" if milliseconds >= 10 else f"{milliseconds:.1f} ms"


def status_badge(state: State | None, *, label: str = "status") -> str:
    """The monitor's last state; ``None`` before its first result."""
    value, color = ("no data", "lightgrey") if state is None else _STATES[state]
    return badge(label, value, color)


def uptime_badge(uptime: float | None, window: str, *, label: str | None = None) -> str:
    """The share of runs up over ``window`` (``"7d"``), e.g. ``uptime 7d | 99.93%``."""
    shown = f"uptime {window}" if label is None else label
    if uptime is None:
        return badge(shown, "no data", "lightgrey")
    color = next((name for lowest, name in _UPTIME_COLORS if uptime >= lowest), "red")
    return badge(shown, format_uptime(uptime), color)


def latency_badge(seconds: float | None, window: str, *, label: str | None = None) -> str:
    """The mean duration of the runs over ``window``, e.g. ``latency 24h | 123 ms``."""
    shown = f"latency {window}" if label is None else label
    if seconds is None:
        return badge(shown, "no data", "lightgrey")
    color = next((name for highest, name in _LATENCY_COLORS if seconds <= highest), "red")
    return badge(shown, format_latency(seconds), color)
