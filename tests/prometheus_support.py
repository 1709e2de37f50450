"""Prometheus's own tools for the tests: `promtool`, a real `prometheus` server (Debian's
prometheus package; .ci/run installs it), and the series names a metrics registry exports."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import yaml
from processes import START_TIMEOUT_S, free_port, wait_for
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

STOP_TIMEOUT_S = 20.0
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count")}


def binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise AssertionError(f"{name} is not installed: apt-get install prometheus (.ci/run does)")
    return found


def promtool(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("promtool"), *args], input=stdin, capture_output=True, text=True, cwd=cwd, check=False, timeout=60
    )


def exposition(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


def lint(registry: CollectorRegistry) -> subprocess.CompletedProcess[str]:
    """`promtool check metrics` on the registry's exposition (exit 0 and no output when clean)."""
    return promtool("check", "metrics", stdin=exposition(registry))


def exported_names(registry: CollectorRegistry) -> set[str]:
    """The series names a query can name: counters as `_total`, histograms as `_bucket`, `_sum`,
    `_count`; families without samples yet count too."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition(registry)):
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


class PrometheusServer:
    """`prometheus` on 127.0.0.1 with its data in `root`, scraping `jobs` (job name: host:port
    targets, path /metrics) every `interval` and loading `rule_files`."""

    def __init__(
        self,
        root: Path,
        *,
        jobs: Mapping[str, Sequence[str]] | None = None,
        rule_files: Sequence[Path] = (),
        interval: str = "1s",
    ) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(path) for path in rule_files],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": list(targets)}]}
                for job, targets in (jobs or {}).items()
            ],
        }
        self.log_file = root / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._http = httpx.Client(base_url=self.url, timeout=10)

    def start(self) -> PrometheusServer:
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config))
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                [binary("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={self.root / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
        wait_for(self._ready, timeout=START_TIMEOUT_S, what="prometheus to be ready")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.proc.returncode}:\n{self.log_tail()}")
        try:
            return self._http.get("/-/ready").status_code == 200
        except httpx.TransportError:
            return False

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def api(self, path: str, **params: str) -> tuple[int, dict[str, Any]]:
        """GET /api/v1/`path`: the HTTP status and the decoded answer."""
        response = self._http.get(f"/api/v1/{path}", params=params)
        return response.status_code, response.json()

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector `expr` evaluates to now."""
        status, body = self.api("query", query=expr)
        assert status == 200 and body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def stop(self) -> None:
        self._http.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()
