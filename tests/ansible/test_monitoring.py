"""The agentflow_monitoring role: Grafana dashboards whose every query parses (checked by a real
Prometheus's /api/v1/format_query) and names only series the daemons export, alerting rules that
`promtool check rules` accepts and `promtool test rules` proves fire (and stay quiet), and a real
run of site.yml that lays the files down and changes nothing when run again."""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_support import PrometheusServer, exported_names, promtool

from controlplane.metrics import ControlPlaneMetrics
from noded.metrics import NodeMetrics
from router.metrics import RouterMetrics

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / "ansible"
ROLE = ANSIBLE / "roles" / "agentflow_monitoring"
FILES = ROLE / "files"
DASHBOARDS = sorted((FILES / "dashboards").glob("*.json"))
BIN = Path(sys.executable).parent
PANEL_TYPES = {"timeseries", "stat"}
PROMETHEUS_SERIES = {"up"}  # what Prometheus itself records for every target
GRAFANA_VARIABLES = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h", "workflow": "x"}

# PromQL words that are not metric names: operators and modifiers (functions and aggregations
# are recognised by the parenthesis after them).
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right",
            "inf", "nan"}  # fmt: skip
STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
MATCHERS = re.compile(r"\{[^}]*\}")
CLAUSES = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
RANGES = re.compile(r"\[[^\]]*\]")
IDENTIFIER = re.compile(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?")
VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
LABEL_VALUES = re.compile(r"^label_values\(\s*([A-Za-z_:][\w:]*)\s*,\s*\w+\s*\)$")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, keywords, labels, durations)."""
    text = STRINGS.sub(" ", expr)
    text = MATCHERS.sub(" ", text)
    text = CLAUSES.sub(" ", text)
    text = RANGES.sub(" ", text)
    names = set()
    for match in IDENTIFIER.finditer(text):
        name, call = match.groups()
        if call is None and name not in KEYWORDS:
            names.add(name)
    return names


def substitute(expr: str) -> str:
    """Grafana's variables replaced by values Prometheus accepts."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in GRAFANA_VARIABLES:
            raise AssertionError(f"unknown Grafana variable ${name} in {expr!r}")
        return GRAFANA_VARIABLES[name]

    return VARIABLE.sub(value, expr)


def problems(expr: str, prometheus: PrometheusServer, exported: set[str]) -> list[str]:
    """What is wrong with a query: it does not parse, or it names a series nothing exports."""
    query = substitute(expr)
    found = []
    status, body = prometheus.api("format_query", query=query)
    if status != 200:
        found.append(f"does not parse ({status} {body.get('errorType')}: {body.get('error')})")
    found += [f"unknown metric {name}" for name in sorted(metric_names(query) - exported)]
    return found


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def dashboard_queries() -> Iterator[Any]:
    for path in DASHBOARDS:
        board = load(path)
        for panel in board["panels"]:
            for target in panel["targets"]:
                yield pytest.param(target["expr"], id=f"{path.stem}: {panel['title']} {target['refId']}")


def rule_queries() -> Iterator[Any]:
    for group in yaml.safe_load((FILES / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            yield pytest.param(rule["expr"], id=f"alerts.yml: {rule['alert']}")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A real Prometheus (no targets): its parser is the one the queries will meet."""
    with PrometheusServer(tmp_path_factory.mktemp("prometheus")) as server:
        yield server


@pytest.fixture(scope="module")
def exported() -> set[str]:
    """Every series name the three daemons' registries expose (families without samples included)."""
    names = set(PROMETHEUS_SERIES)
    for metrics in (ControlPlaneMetrics, NodeMetrics, RouterMetrics):
        registry = CollectorRegistry()
        metrics(registry)
        names |= exported_names(registry)
    return names


# --- the checker itself ---------------------------------------------------------------------


def test_metric_names_skip_functions_labels_clauses_and_durations() -> None:
    expr = ('histogram_quantile(0.95, sum by (le, model) (rate(agentflow_llm_upstream_seconds_bucket{model=~"gpt.*",'
            'provider!="x"}[5m:1m]))) * on (instance) group_left (node) agentflow_node_info offset 1h > bool 1e3 '
            'or vector(0) unless absent(up)')  # fmt: skip
    assert metric_names(expr) == {"agentflow_llm_upstream_seconds_bucket", "agentflow_node_info", "up"}
    assert metric_names('label_replace(foo, "dst", "$1", "src", "(bar)")') == {"foo"}


def test_exported_names_have_their_series_suffixes(exported: set[str]) -> None:
    assert {"agentflow_llm_cost_usd_total", "agentflow_cluster_node_status", "agentflow_node_capacity",
            "agentflow_router_http_request_duration_seconds_bucket", "agentflow_scheduler_ready_steps",
            "agentflow_workflow_execution_duration_seconds_count"} <= exported  # fmt: skip
    assert "agentflow_llm_cost_usd" not in exported and "agentflow_workflow_execution_duration_seconds" not in exported


def test_the_checker_rejects_an_unknown_metric_and_a_broken_query(prometheus, exported) -> None:
    assert problems("sum(rate(agentflow_llm_cost_usd_total[$__rate_interval]))", prometheus, exported) == []
    assert problems("sum(rate(agentflow_llm_dollars_total[5m]))", prometheus, exported) == [
        "unknown metric agentflow_llm_dollars_total"
    ]
    [broken] = problems("sum(rate(agentflow_llm_cost_usd_total[5m])", prometheus, exported)
    assert broken.startswith("does not parse (400 bad_data:"), broken


# --- dashboards -----------------------------------------------------------------------------


def test_the_three_dashboards_are_there() -> None:
    assert [p.name for p in DASHBOARDS] == ["fleet-overview.json", "llm-spend.json", "workflow.json"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_model(path: Path) -> None:
    board = load(path)
    assert board["schemaVersion"] >= 36 and board["uid"] and board["title"].startswith("AgentFlow")
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    panels = board["panels"]
    assert panels
    ids, titles = [p["id"] for p in panels], [p["title"] for p in panels]
    assert len(set(ids)) == len(ids), f"duplicate panel ids in {path.name}"
    assert len(set(titles)) == len(titles), f"duplicate panel titles in {path.name}"
    for panel in panels:
        assert panel["type"] in PANEL_TYPES, panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(set(refs)) == len(refs) and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
        assert all("${datasource}" not in t["expr"] for t in panel["targets"]), panel["title"]


def test_the_workflow_dashboard_picks_one_workflow(exported) -> None:
    board = load(FILES / "dashboards" / "workflow.json")
    [variable] = [v for v in board["templating"]["list"] if v["name"] == "workflow"]
    assert variable["type"] == "query" and variable["datasource"]["uid"] == "${datasource}"
    match = LABEL_VALUES.match(variable["query"]["query"])
    assert match and match.group(1) == "agentflow_workflow_executions_total" and match.group(1) in exported
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    assert all('workflow="$workflow"' in e for e in exprs)


@pytest.mark.parametrize("expr", [*dashboard_queries(), *rule_queries()])
def test_query_parses_and_names_exported_series(expr: str, prometheus, exported) -> None:
    assert problems(expr, prometheus, exported) == []


# --- alerting rules -------------------------------------------------------------------------


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", str(FILES / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules() -> None:
    result = promtool("test", "rules", "alerts.test.yml", cwd=FILES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_tested_firing_and_quiet() -> None:
    alerts = {r["alert"] for g in yaml.safe_load((FILES / "alerts.yml").read_text())["groups"] for r in g["rules"]}
    assert {"AgentflowScrapeTargetDown", "AgentflowNodeDown", "AgentflowSchedulerQueueBackingUp",
            "AgentflowLLMSpendHigh", "AgentflowRunBudgetSpent"} <= alerts  # fmt: skip
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in yaml.safe_load((FILES / "alerts.test.yml").read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    assert firing == alerts and quiet == alerts


# --- the role, for real -----------------------------------------------------------------------


def tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: install the dev extras (ansible-core, ansible-lint)")
    return found


def playbook(args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCAL_TEMP": str(tmp), "PATH": f"{BIN}:{os.environ['PATH']}"}  # fmt: skip
    return subprocess.run([tool("ansible-playbook"), *args], cwd=ANSIBLE, capture_output=True, text=True, env=env,
                          check=False, timeout=900)  # fmt: skip


def test_site_yml_installs_rules_dashboards_and_scrape_config(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"children": {
        "controlplane": {"hosts": {"cp-1": {"ansible_host": "10.0.0.5"}}},
        "nodes": {"hosts": {"gpu-7": {"ansible_host": "10.0.0.17"}, "gpu-8": {}}},
        "monitoring": {"hosts": {"localhost": local}}}}}))  # fmt: skip
    user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    extra = {"ansible_become": False, "agentflow_root": str(root), "agentflow_monitoring_owner": user,
             "agentflow_monitoring_group": group, "agentflow_monitoring_manage_services": False}  # fmt: skip
    args = ["-i", str(inventory), "--limit", "localhost", "site.yml", "-e", json.dumps(extra)]
    first = playbook(args, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "changed=0" not in first.stdout

    installed = {
        "etc/prometheus/rules/agentflow.yml": FILES / "alerts.yml",
        "var/lib/grafana/dashboards/agentflow/fleet-overview.json": FILES / "dashboards/fleet-overview.json",
        "var/lib/grafana/dashboards/agentflow/workflow.json": FILES / "dashboards/workflow.json",
        "var/lib/grafana/dashboards/agentflow/llm-spend.json": FILES / "dashboards/llm-spend.json",
    }
    for relative, source in installed.items():
        assert (root / relative).read_bytes() == source.read_bytes(), relative
    for relative in [*installed, "etc/prometheus/prometheus.yml", "etc/grafana/provisioning/dashboards/agentflow.yml"]:
        info = (root / relative).stat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o644, os.getuid(), os.getgid()), relative

    config_file = root / "etc/prometheus/prometheus.yml"
    checked = promtool("check", "config", "--syntax-only", str(config_file))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = yaml.safe_load(config_file.read_text())
    targets = {job["job_name"]: [t for c in job["static_configs"] for t in c["targets"]]
               for job in config["scrape_configs"]}  # fmt: skip
    assert targets == {
        "controlplane": ["10.0.0.5:9470"],
        "noded": ["10.0.0.17:9471", "gpu-8:9471"],
        "router": ["10.0.0.17:4000", "gpu-8:4000"],
    }
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    provider = yaml.safe_load((root / "etc/grafana/provisioning/dashboards/agentflow.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/agentflow"

    second = playbook(args, tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    recap = [line for line in second.stdout.splitlines() if line.startswith("localhost")]
    assert recap and all("changed=0" in line and "failed=0" in line for line in recap), second.stdout
