"""The shipped ``deploy/`` files, proven with Debian's Prometheus and promtool against
real agents on loopback."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, Servers
from tests.support.agent import AgentProcess, wait_for
from tests.support.prometheus import (
    DASHBOARD,
    FLEET,
    RULE_TESTS,
    RULES,
    SCRAPE,
    SHIPPED_AGENT,
    Prometheus,
    dashboard_queries,
    fast,
    promtool,
    substitute,
)
from wsprobe.agent.sharding import shard_of

pytestmark = pytest.mark.slow

#: Values for the dashboard's variables when its queries are parsed or run.
GRAFANA_VALUES = {
    "datasource": "prometheus",
    "job": "wsprobe.*",
    "monitor": ".*",
    "__range": "5m",
    "__rate_interval": "1m",
    "__interval": "15s",
}


@pytest.fixture
def started() -> Iterator[list[AgentProcess | Prometheus]]:
    processes: list[AgentProcess | Prometheus] = []
    yield processes
    for process in reversed(processes):
        if isinstance(process, Prometheus):
            process.stop()
        else:
            process.kill()


def test_rules_pass_promtool_check_and_their_unit_tests() -> None:
    checked = promtool("check", "rules", RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 8 rules found" in checked.stdout
    tested = promtool("test", "rules", RULE_TESTS)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    # Every alerting rule has a unit test that expects it to fire.
    alerts = {
        rule["alert"]
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
    }
    fired = {
        case["alertname"]
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    assert fired == alerts


def test_scrape_configurations_pass_promtool() -> None:
    for path in (SCRAPE, FLEET):
        checked = promtool("check", "config", path)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_readme_shows_the_shipped_scrape_configurations() -> None:
    readme = (ROOT / "README.md").read_text()
    for path in (RULES, RULE_TESTS, SCRAPE, FLEET, DASHBOARD):
        assert str(path.relative_to(ROOT)) in readme
    section = readme[readme.index("### Prometheus and Grafana: `deploy/`") :]
    block = section[section.index("```yaml\n") + 8 : section.index("```\n", 8)]
    # The tests below run the shipped file: the README's copy must be the same.
    assert yaml.safe_load(block) == {
        "scrape_configs": yaml.safe_load(SCRAPE.read_text())["scrape_configs"]
    }


def rule_file_of(queries: list[tuple[str, str]]) -> str:
    rules = [
        {"record": f"dashboard:query_{index}", "expr": expr}
        for index, (_, expr) in enumerate(queries)
    ]
    return yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]})


def test_every_dashboard_query_is_promql(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [
        (where, substitute(expr, GRAFANA_VALUES)) for where, expr in dashboard_queries(dashboard)
    ]
    assert len(queries) == sum(len(panel["targets"]) for panel in dashboard["panels"]) + 2
    # promtool parses each recording rule's expression as PromQL.
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(rule_file_of(queries))
    checked = promtool("check", "rules", path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # And it would say so if one were not.
    path.write_text(rule_file_of([*queries, ("broken", "sum(probe_success")]))
    broken = promtool("check", "rules", path)
    assert broken.returncode != 0
    assert f"dashboard:query_{len(queries)}" in broken.stdout + broken.stderr


def agent_config(servers: Servers, tmp_path: Path) -> Path:
    (tmp_path / "value.lua").write_text("return 42\n")
    path = tmp_path / "agent.yaml"
    path.write_text(
        f"""
defaults: {{interval: 1s, timeout: 5s}}
monitors:
  - {{name: echo, url: '{servers.ws}/', labels: {{team: core}}}}
  - {{name: refused, url: '{servers.ws}/binary'}}
  - {{name: secure, url: '{servers.wss}/', cafile: '{servers.ca_file}'}}
  - {{name: scripted, script: value.lua}}
modules:
  ws_echo: {{send: ping, expect: {{contains: ping}}, timeout: 5s}}
"""
    )
    return path


def agent_address(agent: AgentProcess) -> str:
    return agent.url.removeprefix("http://").rstrip("/")


def by(series: list[dict[str, Any]], label: str) -> dict[str, dict[str, Any]]:
    return {item["metric"].get(label, ""): item for item in series}


def test_prometheus_scrapes_the_agent_and_drives_probe(
    servers: Servers, tmp_path: Path, started: list[AgentProcess | Prometheus]
) -> None:
    agent = AgentProcess(agent_config(servers, tmp_path), tmp_path / "state")
    started.append(agent)
    address = agent_address(agent)
    config = fast(yaml.safe_load(SCRAPE.read_text().replace(SHIPPED_AGENT, address)))
    agent_job, probe_job = config["scrape_configs"]
    assert agent_job["static_configs"] == [{"targets": [address]}]
    assert probe_job["relabel_configs"][-1]["replacement"] == address
    probe_job["static_configs"] = [{"targets": [f"{servers.ws}/", f"{servers.ws}/binary"]}]
    prometheus = Prometheus(config, tmp_path / "prometheus")
    started.append(prometheus)

    monitors = {"echo", "refused", "secure", "scripted"}

    def all_monitors() -> list[dict[str, Any]] | None:
        found = prometheus.query('wsprobe_monitor_last_run_timestamp_seconds{job="wsprobe"}')
        return found if set(by(found, "monitor")) == monitors else None

    wait_for(all_monitors, 60, "every monitor's series in Prometheus")
    success = by(prometheus.query('probe_success{job="wsprobe"}'), "monitor")
    assert success["echo"]["metric"] == {
        "__name__": "probe_success",
        "job": "wsprobe",
        "instance": address,
        "monitor": "echo",
        "team": "core",
    }
    assert {name: item["value"][1] for name, item in success.items()} == {
        "echo": "1",
        "refused": "0",
        "secure": "1",
        "scripted": "1",
    }
    runs = prometheus.query('wsprobe_monitor_runs_total{job="wsprobe", monitor="refused"}')
    assert {item["metric"]["result"] for item in runs} == {
        "ok",
        "warning",
        "critical",
        "unknown",
        "repeat",
    }
    assert by(prometheus.query("wsprobe_monitor_value"), "monitor")["scripted"]["value"][1] == "42"
    (monitors_gauge,) = prometheus.query('wsprobe_agent_monitors{job="wsprobe"}')
    assert monitors_gauge["value"][1] == "4"

    # /probe, as Prometheus drives it: one check per scrape, the target as the instance.
    def probed() -> dict[str, dict[str, Any]] | None:
        found = by(prometheus.query('probe_success{job="wsprobe-probe"}'), "instance")
        return found if len(found) == 2 else None

    probes = wait_for(probed, 60, "both /probe targets in Prometheus")
    assert probes[f"{servers.ws}/"]["metric"] == {
        "__name__": "probe_success",
        "job": "wsprobe-probe",
        "instance": f"{servers.ws}/",
    }
    assert probes[f"{servers.ws}/"]["value"][1] == "1"
    assert probes[f"{servers.ws}/binary"]["value"][1] == "0"
    (code,) = prometheus.query(f'probe_websocket_status_code{{instance="{servers.ws}/"}}')
    assert code["value"][1] == "101"
    assert not prometheus.query('wsprobe_monitor_runs_total{job="wsprobe-probe"}')
    up = {item["metric"]["instance"]: item["value"][1] for item in prometheus.query("up")}
    assert up == {address: "1", f"{servers.ws}/": "1", f"{servers.ws}/binary": "1"}

    # The shipped rules load, evaluate, and the failing checks are on their way to alert.
    def rules_evaluated() -> list[dict[str, Any]] | None:
        groups = prometheus.api("rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return rules if rules and all(rule["health"] == "ok" for rule in rules) else None

    rules = wait_for(rules_evaluated, 60, "the shipped rules evaluated")
    assert len(rules) == 8

    def failing_pending() -> set[str] | None:
        alerts = prometheus.api("alerts")["alerts"]
        failing = {
            alert["labels"].get("monitor") or alert["labels"]["instance"]
            for alert in alerts
            if alert["labels"]["alertname"] == "WsprobeMonitorFailing"
        }
        return failing if len(failing) == 2 else None

    assert wait_for(failing_pending, 60, "WsprobeMonitorFailing pending") == {
        "refused",
        f"{servers.ws}/binary",
    }
    alerts = prometheus.api("alerts")["alerts"]
    assert {alert["labels"]["alertname"] for alert in alerts} == {"WsprobeMonitorFailing"}

    # Every dashboard query runs on these series and finds something (a rate or an
    # increase once two scrapes are in).
    dashboard = json.loads(DASHBOARD.read_text())
    for where, expr in dashboard_queries(dashboard):
        query = functools.partial(prometheus.query, substitute(expr, GRAFANA_VALUES))
        wait_for(query, 30, f"data for {where}: {expr}")


def test_a_sharded_fleet_yields_every_monitor_exactly_once(
    servers: Servers, tmp_path: Path, started: list[AgentProcess | Prometheus]
) -> None:
    names = [f"m{index}" for index in range(12)]
    entries = "".join(f"  - {{name: {name}, url: '{servers.ws}/'}}\n" for name in names)
    path = tmp_path / "agent.yaml"
    path.write_text(f"defaults: {{interval: 1s}}\nmonitors:\n{entries}")
    config = fast(yaml.safe_load(FLEET.read_text()))
    (job,) = config["scrape_configs"]
    assert len(job["static_configs"]) == 3
    addresses = {}
    for index, static in enumerate(job["static_configs"]):
        assert static["labels"]["shard"] == f"{index}/3"
        agent = AgentProcess(path, tmp_path / f"state{index}", "--shard", f"{index}/3")
        started.append(agent)
        addresses[f"{index}/3"] = static["targets"] = [agent_address(agent)]
    prometheus = Prometheus(config, tmp_path / "prometheus")
    started.append(prometheus)

    def every_monitor() -> list[dict[str, Any]] | None:
        found = prometheus.query('count by (monitor) (probe_success{job="wsprobe-fleet"})')
        return found if {item["metric"]["monitor"] for item in found} == set(names) else None

    counts = wait_for(every_monitor, 60, "every monitor of the fleet in Prometheus")
    assert {item["value"][1] for item in counts} == {"1"}
    for item in prometheus.query('probe_success{job="wsprobe-fleet"}'):
        labels = item["metric"]
        owner = f"{shard_of(labels['monitor'], 3)}/3"
        assert (labels["shard"], [labels["instance"]]) == (owner, addresses[owner])
    (total,) = prometheus.query('sum(wsprobe_agent_monitors{job="wsprobe-fleet"})')
    assert total["value"][1] == str(len(names))
