"""A real Prometheus scraping a real control plane, noded and router: their series come back
through Prometheus's query API once a workflow has run, and the alerting rules evaluate cleanly
against them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cluster import Daemon, cli, sleep_workflow, start_router
from prometheus_support import PrometheusServer
from waiting import eventually

from agentflow.vocabulary import Isolation

pytestmark = pytest.mark.integration

FILES = Path(__file__).resolve().parents[2] / "ansible/roles/agentflow_monitoring/files"
ALERTS = FILES / "alerts.yml"
SCRAPED_WITHIN_S = 30.0  # scrapes every second; the first one waits for Prometheus's start
# Grafana's variables as a dashboard showing the last minute of workflow "nap" would set them.
GRAFANA = {"$__rate_interval": "10s", "$__range": "1m", "$workflow": "nap"}


def queries() -> dict[str, str]:
    """Every dashboard query and alert expression, by where it is, with Grafana's variables set."""
    found = {}
    for path in sorted((FILES / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                expr = target["expr"]
                for variable, value in GRAFANA.items():
                    expr = expr.replace(variable, value)
                found[f"{path.stem}: {panel['title']} {target['refId']}"] = expr
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            found[f"alerts.yml: {rule['alert']}"] = rule["expr"]
    return found


@pytest.fixture
def router(tmp_path: Path) -> Iterator[Daemon]:
    daemon = start_router(tmp_path / "router")
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def prometheus(tmp_path: Path, cluster, router: Daemon) -> Iterator[PrometheusServer]:
    jobs = {
        "controlplane": [cluster.controlplane.state["metrics"]],
        "noded": [node.state["metrics"] for node in cluster.nodes],
        "router": [router.state["http"]],
    }
    server = PrometheusServer(tmp_path / "prometheus", jobs=jobs, rule_files=[ALERTS]).start()
    try:
        yield server
    finally:
        server.stop()
    assert server.proc is not None and server.proc.returncode is not None  # stopped, not left behind


async def test_prometheus_scrapes_every_daemon_and_the_rules_evaluate(cluster, prometheus, tmp_path) -> None:
    async def series(expr: str) -> list[dict]:
        return await eventually(lambda: prometheus.query(expr), within=SCRAPED_WITHIN_S, what=expr)

    for job in ("controlplane", "noded", "router"):
        await series(f'up{{job="{job}"}} == 1')
    await series('agentflow_cluster_node_status{node="alpha", status="ready"} == 1')
    await series('agentflow_cluster_node_capacity{node="alpha", resource="slots"} == 4')
    await series('agentflow_cluster_node_heartbeat_age_seconds{node="alpha"} < 5')
    await series('agentflow_node_capacity{job="noded", resource="slots"} == 4')
    [info] = await series('agentflow_node_info{job="noded", node="alpha"} == 1')
    assert info["metric"]["isolation"] in set(Isolation)
    await series('agentflow_node_heartbeat_age_seconds{job="noded"} < 5')
    await series('agentflow_node_warm_workers{job="noded"} + agentflow_node_busy_workers{job="noded"} >= 1')

    long_nap = sleep_workflow(tmp_path / "nap.yaml", ms=60_000)
    run_id = cli(cluster.server, "run", str(long_nap), "--json").json()["run_id"]
    # Scraped while the run runs: its outcome series exist at 0, so increase() counts the first run.
    await series('agentflow_workflow_executions_total{workflow="nap", status="succeeded"} == 0')
    await series('agentflow_cluster_node_running_steps{node="alpha"} == 1')
    await series('agentflow_cluster_node_free{node="alpha", resource="slots"} == 3')
    assert cli(cluster.server, "cancel", run_id).code == 0
    run = cli(cluster.server, "run", str(sleep_workflow(tmp_path / "nap.yaml", ms=10)), "--wait", "--json")
    assert run.code == 0 and run.json()["status"] == "succeeded", run.err + cluster.logs()

    await series('agentflow_agent_executions_total{workflow="nap", agent="nap", status="succeeded"} > 0')
    await series('agentflow_workflow_executions_total{workflow="nap", status="succeeded"} > 0')
    await series('increase(agentflow_workflow_executions_total{workflow="nap", status="succeeded"}[1m]) > 0')
    await series('agentflow_workflow_executions_total{workflow="nap", status="cancelled"} > 0')
    await series('agentflow_node_step_executions_total{job="noded", workflow="nap", status="succeeded"} > 0')
    await series("agentflow_scheduler_placed_steps_total >= 1")
    await series("agentflow_scheduler_pass_duration_seconds_count >= 1")
    await series("agentflow_scheduler_ready_steps == 0")
    await series('agentflow_router_http_request_duration_seconds_count{route="/metrics", code="200"} > 0')

    def rules_evaluated() -> list[dict]:
        status, body = prometheus.api("rules")
        assert status == 200, body
        rules = [rule for group in body["data"]["groups"] for rule in group["rules"]]
        assert rules, body
        return rules if all(rule["health"] == "ok" for rule in rules) else []

    rules = await eventually(rules_evaluated, within=SCRAPED_WITHIN_S, what="every alerting rule evaluated")
    assert {rule["name"] for rule in rules} >= {"AgentflowNodeDown", "AgentflowScrapeTargetDown"}
    assert prometheus.query('ALERTS{alertname=~"AgentflowNodeDown|AgentflowScrapeTargetDown"}') == []

    # Every dashboard query evaluates against the real series; the fleet's and the run's show them.
    results = {where: prometheus.query(expr) for where, expr in queries().items()}
    [ready] = results["fleet-overview: Nodes ready A"]
    assert float(ready["value"][1]) == 1
    [succeeded] = results["workflow: Runs succeeded A"]
    assert float(succeeded["value"][1]) >= 1
    assert results["fleet-overview: Warm workers per node A"][0]["metric"]["node"] == "alpha"
