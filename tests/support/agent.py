"""A real ``wsprobe agent`` process on loopback, for the agent's tests."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client.parser import text_string_to_metric_families

T = TypeVar("T")
_LISTENING = re.compile(r"listening on (http://\S+/)")


def agent_command(config: Path, *flags: str) -> list[str]:
    """``python -m wsprobe agent CONFIG --listen 127.0.0.1:0 FLAGS``: an agent on a free
    loopback port, which says its URL in its log, as the tests and the bench start one."""
    return [
        sys.executable,
        "-m",
        "wsprobe",
        "agent",
        str(config),
        "--listen",
        "127.0.0.1:0",
        *flags,
    ]


class AgentProcess:
    """``python -m wsprobe agent CONFIG --listen 127.0.0.1:0``, its stderr collected.

    ``state_dir`` ``None``: no ``--state-dir``; ``env``: the whole environment; ``under``:
    a command that runs the agent in its place (``prlimit --nofile=…``), keeping its PID."""

    def __init__(
        self,
        config: Path,
        state_dir: Path | None,
        *extra: str,
        env: Mapping[str, str] | None = None,
        under: Sequence[str] = (),
    ) -> None:
        state = ["--state-dir", str(state_dir)] if state_dir is not None else []
        self.process = subprocess.Popen(
            [*under, *agent_command(config, *state, *extra)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=config.parent,
            env=None if env is None else dict(env),
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        found = self.wait_for_log(_LISTENING.pattern)
        match = _LISTENING.search(found)
        assert match is not None
        self.url = match.group(1)

    def _read(self) -> None:
        assert self.process.stderr is not None
        with self.process.stderr:
            for line in self.process.stderr:
                self.lines.append(line.rstrip("\n"))

    def wait_for_log(self, pattern: str, timeout: float = 30) -> str:
        """The first log line matching ``pattern``, waiting for it."""
        expression = re.compile(pattern)

        def find() -> str | None:
            for line in self.lines:
                if expression.search(line):
                    return line
            if self.process.poll() is not None and not self._reader.is_alive():
                raise AssertionError(f"agent exited {self.process.returncode}: {self.lines}")
            return None

        return wait_for(find, timeout, f"log line /{pattern}/ in {self.lines}")

    def get(
        self, path: str, headers: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        """GET ``path``: status, headers and body."""
        request = urllib.request.Request(self.url + path.lstrip("/"), headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, dict(exc.headers), exc.read().decode()

    def json(self, path: str) -> Any:
        status, _, body = self.get(path)
        assert status == 200, body
        return json.loads(body)

    def metrics(
        self, path: str = "/metrics"
    ) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """Every sample of ``path`` as ``{(name, labels): value}``, parsed by prometheus_client."""
        status, _, body = self.get(path)
        assert status == 200, body
        return samples_of(body)

    def signal(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        """Stop it whatever state it is in: SIGTERM first, SIGKILL when that is not enough."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._reader.join(timeout=10)


def samples_of(body: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(
    samples: Mapping[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def wait_for(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``check`` until it returns something; generous bounds, never a timed assertion."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None and found is not False:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
