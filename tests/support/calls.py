"""The library's send_recv twins and the command line, called in process."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import wsprobe
from wsprobe.cli import main

Capture = pytest.CaptureFixture[str]


def call(url: str, data: str = "Olá, WebSocket!", **options: Any) -> tuple[str, float]:
    """send_recv's reply, or the error message, and the elapsed time."""
    started = time.monotonic()
    try:
        outcome = wsprobe.send_recv(url, data, **options)
    except wsprobe.Error as exc:
        outcome = f"error: {exc}"
    return outcome, time.monotonic() - started


def call_async(url: str, data: str = "Olá, WebSocket!", **options: Any) -> tuple[str, float]:
    """The same through send_recv_async on a fresh event loop."""

    async def run() -> str:
        try:
            return await wsprobe.send_recv_async(url, data, **options)
        except wsprobe.Error as exc:
            return f"error: {exc}"

    started = time.monotonic()
    outcome = asyncio.run(run())
    return outcome, time.monotonic() - started


CALLS = [pytest.param(call, id="sync"), pytest.param(call_async, id="async")]


def cli(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    """``wsprobe ARGV`` in process: exit code, standard output, standard error."""
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
