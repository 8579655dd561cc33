"""SVG badges: exact texts and colours, well-formed XML whatever the text, widths that
match what a real Chromium renders."""

from __future__ import annotations

import json
import re
import unicodedata
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.e2e.test_agent_page import chromium
from wsprobe.agent.badges import (
    COLORS,
    badge,
    format_latency,
    format_uptime,
    latency_badge,
    status_badge,
    text_width,
    uptime_badge,
)
from wsprobe.agent.outcome import State

SVG = "{http://www.w3.org/2000/svg}"


def read(svg: str) -> tuple[ET.Element, list[str], list[str]]:
    """The root, the texts shown (shadows left out) and the fills of the two halves."""
    root = ET.fromstring(svg)
    texts = [t.text or "" for t in root.iter(f"{SVG}text") if t.get("aria-hidden") is None]
    (halves,) = [g for g in root.iter(f"{SVG}g") if g.get("clip-path")]
    fills = [rect.get("fill") or "" for rect in halves][:2]
    return root, texts, fills


@pytest.mark.parametrize(
    ("share", "text"),
    [
        (1.0, "100%"),
        (0.99999, "99.99%"),
        (0.9993, "99.93%"),
        (0.99934, "99.93%"),
        (0.5, "50.00%"),
        (0.0, "0.00%"),
        (1 / 3, "33.33%"),
    ],
)
def test_uptime_text(share: float, text: str) -> None:
    assert format_uptime(share) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.00042, "0.4 ms"),
        (0.0099, "9.9 ms"),
        (0.1234, "123 ms"),
        (0.9994, "999 ms"),
        (2.5, "2.50 s"),
    ],
)
def test_latency_text(seconds: float, text: str) -> None:
    assert format_latency(seconds) == text


@pytest.mark.parametrize(
    ("svg", "texts", "color"),
    [
        (status_badge(State.OK), ["status", "ok"], "brightgreen"),
        (status_badge(State.WARNING), ["status", "warning"], "yellow"),
        (status_badge(State.CRITICAL), ["status", "critical"], "red"),
        (status_badge(State.UNKNOWN), ["status", "unknown"], "orange"),
        (status_badge(None, label="api"), ["api", "no data"], "lightgrey"),
        (uptime_badge(0.9993, "7d"), ["uptime 7d", "99.93%"], "brightgreen"),
        (uptime_badge(0.995, "24h"), ["uptime 24h", "99.50%"], "green"),
        (uptime_badge(0.97, "30d"), ["uptime 30d", "97.00%"], "yellowgreen"),
        (uptime_badge(0.96, "1h"), ["uptime 1h", "96.00%"], "yellow"),
        (uptime_badge(0.9, "1h"), ["uptime 1h", "90.00%"], "orange"),
        (uptime_badge(0.5, "1h", label="api"), ["api", "50.00%"], "red"),
        (uptime_badge(None, "1h"), ["uptime 1h", "no data"], "lightgrey"),
        (latency_badge(0.05, "1h"), ["latency 1h", "50 ms"], "brightgreen"),
        (latency_badge(0.25, "24h"), ["latency 24h", "250 ms"], "green"),
        (latency_badge(0.5, "24h"), ["latency 24h", "500 ms"], "yellowgreen"),
        (latency_badge(0.8, "24h"), ["latency 24h", "800 ms"], "yellow"),
        (latency_badge(1.5, "24h"), ["latency 24h", "1.50 s"], "orange"),
        (latency_badge(3.0, "7d"), ["latency 7d", "3.00 s"], "red"),
        (latency_badge(None, "7d"), ["latency 7d", "no data"], "lightgrey"),
    ],
)
def test_badges_say_and_colour(svg: str, texts: list[str], color: str) -> None:
    root, shown, fills = read(svg)
    assert shown == texts
    assert fills == ["#555", COLORS[color]]
    assert root.findtext(f"{SVG}title") == f"{texts[0]}: {texts[1]}"


def test_no_external_assets() -> None:
    svg = uptime_badge(0.5, "7d")
    assert re.findall(r"https?://[^\"]*", svg) == ["http://www.w3.org/2000/svg"]
    assert re.findall(r"url\([^)]*\)", svg) == ["url(#r)", "url(#s)"]
    assert "href" not in svg
    assert "<script" not in svg


def test_a_colour_must_be_known_or_hex() -> None:
    assert read(badge("a", "b", "#123abc"))[2][1] == "#123abc"
    with pytest.raises(ValueError, match=re.escape('invalid badge colour "red;stroke:url(http:"')):
        badge("a", "b", "red;stroke:url(http://x)")
    with pytest.raises(ValueError, match=re.escape('invalid badge colour "#fff\n"')):
        badge("a", "b", "#fff\n")


@given(label=st.text(max_size=80), value=st.text(max_size=80))
def test_any_text_is_well_formed_and_kept(label: str, value: str) -> None:
    root, shown, _ = read(badge(label, value, "green"))
    width = int(root.get("width") or 0)
    rects = [int(r.get("width") or 0) for r in root.iter(f"{SVG}rect")]
    # The two halves fill the badge; each is its text's estimated width plus padding.
    assert rects[1] + rects[2] == width
    assert rects[1] >= 10
    assert rects[2] >= 10
    for text, original in zip(shown, (label, value), strict=True):
        assert len(text) <= 64
        # Only control characters, surrogates and non-characters are replaced.
        cleaned = "".join(
            "\ufffd" if unicodedata.category(c) in {"Cc", "Cs"} or c in "\ufffe\uffff" else c
            for c in original
        )
        if len(cleaned) <= 64:
            assert text == cleaned
        else:
            assert text == cleaned[:63] + "…"


@given(text=st.text(max_size=30), more=st.text(min_size=1, max_size=5))
def test_widths_grow_with_the_text(text: str, more: str) -> None:
    assert text_width(text + more) >= text_width(text)


@pytest.mark.slow
def test_estimated_widths_match_chromium(tmp_path: Path) -> None:
    samples = [
        "status",
        "uptime 7d",
        "latency 24h",
        "99.93%",
        "123 ms",
        "no data",
        "critical",
        "WARNING",
        "api-gateway.eu_1",
        "Ünïcödé façade",
        "MW{}|~@#",
    ]
    texts = "".join(
        f'<text font-size="11" y="{20 * (index + 1)}">{sample}</text>'
        for index, sample in enumerate(samples)
    )
    page = tmp_path / "widths.html"
    page.write_text(
        "<!doctype html><meta charset=utf-8><body>"
        '<svg xmlns="http://www.w3.org/2000/svg" width="600" height="400" '
        'font-family="DejaVu Sans,Verdana,Geneva,sans-serif">'
        f"{texts}</svg><pre id=out></pre><script>"
        "document.getElementById('out').textContent = JSON.stringify("
        "[...document.querySelectorAll('text')].map(t => t.getComputedTextLength()));"
        "</script>"
    )
    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    match = re.search(r'<pre id="out">(.*?)</pre>', dom)
    assert match, dom[-500:]
    measured = json.loads(match.group(1))
    for sample, width in zip(samples, measured, strict=True):
        assert width > 0, sample
        # Within 2%: kerning ("WA") is what the estimate leaves out.
        assert abs(text_width(sample) - width) / width < 0.02, (sample, text_width(sample), width)
