"""The router's --metrics-listen: /metrics on an address of its own, apart from the LLM API."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from processes import start_router

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_metrics_are_served_apart_from_the_api(tmp_path: Path) -> None:
    router = start_router(tmp_path / "router", extra=["--metrics-listen", "127.0.0.1:0"])
    try:
        api, metrics = router.state["http"], router.state["metrics"]
        assert api != metrics
        answer = httpx.post(f"http://{api}/v1/chat/completions", timeout=10,
                            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
        assert answer.status_code == 200, answer.text
        text = httpx.get(f"http://{metrics}/metrics", timeout=10).text
        assert 'agentflow_llm_calls_total{model="m",provider="dev",status="ok"} 1.0' in text
        not_the_api = httpx.post(f"http://{metrics}/v1/chat/completions", json={}, timeout=10)
        assert not_the_api.status_code >= 400 and "choices" not in not_the_api.text
    finally:
        router.stop()
    assert router.proc.returncode == 0
