"""A real Prometheus (Debian's ``/usr/bin/prometheus``) on loopback, and the shipped
``deploy/`` files it is configured with."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT
from tests.support.agent import wait_for

DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "wsprobe-rules.yml"
RULE_TESTS = DEPLOY / "prometheus" / "wsprobe-rules.test.yml"
SCRAPE = DEPLOY / "prometheus" / "prometheus.yml"
FLEET = DEPLOY / "prometheus" / "fleet.yml"
DASHBOARD = DEPLOY / "grafana" / "wsprobe.json"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
#: The agent's address in the shipped scrape configurations.
SHIPPED_AGENT = "127.0.0.1:9814"
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def dashboard_queries(dashboard: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """``(where, PromQL)`` for every panel target and every ``label_values`` variable."""
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            yield f"panel {panel['title']!r} {target['refId']}", target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        match = re.fullmatch(r"label_values\((.+), *(\w+)\)", variable["definition"])
        assert match, variable["definition"]
        yield f"variable {variable['name']}", match.group(1)


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """``expr`` with Grafana's ``$name`` / ``${name}`` replaced; an unknown one is an error."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise AssertionError(f"unknown Grafana variable ${name} in {expr}")
        return values[name]

    return _VARIABLE.sub(replace, expr)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Prometheus:
    """``prometheus`` with ``config`` (a parsed scrape configuration), the shipped rules
    next to it, its data in ``directory``; queried through its HTTP API."""

    def __init__(self, config: Mapping[str, Any], directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copy(RULES, directory / RULES.name)
        path = directory / "prometheus.yml"
        path.write_text(yaml.safe_dump(dict(config)))
        checked = promtool("check", "config", path)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        self.url = f"http://127.0.0.1:{free_port()}/"
        self.log = (directory / "prometheus.log").open("w")
        self.process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={path}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address={self.url.removeprefix('http://').rstrip('/')}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=directory,
        )
        wait_for(self._ready, 60, f"Prometheus ready at {self.url}")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited {self.process.returncode}")
        try:
            with urllib.request.urlopen(self.url + "-/ready", timeout=5) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        """``data`` of ``/api/v1/PATH``; an API error fails the test with Prometheus' reason."""
        query = urllib.parse.urlencode(params)
        request = urllib.request.Request(f"{self.url}api/v1/{path}?{query}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            with exc:
                raise AssertionError(f"{path} {params}: {exc.read().decode()}") from None
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector of ``expr`` now."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


def fast(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` scraping and evaluating every second (the tests wait on conditions)."""
    changed = dict(config)
    changed["global"] = {
        **config.get("global", {}),
        "scrape_interval": "1s",
        "evaluation_interval": "1s",
    }
    return changed
