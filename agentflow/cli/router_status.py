"""`agentflow router status`: what the host's LLM router says of itself (GET /v1/agentflow/status)."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

import httpx

from agentflow.cli.client import Unreachable
from agentflow.cli.render import table

STATUS_TIMEOUT_S = 10.0
EXIT_OK = 0


def fetch_status(address: str) -> dict[str, Any]:
    url = f"http://{address}/v1/agentflow/status"
    try:
        response = httpx.get(url, timeout=STATUS_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise Unreachable(f"the LLM router at {address} is unreachable ({exc})") from None
    if response.status_code != 200:
        raise Unreachable(f"the LLM router at {address} answered {response.status_code}: {response.text[:200]}")
    data: dict[str, Any] = response.json()
    return data


def render(status: dict[str, Any]) -> str:
    cache = status.get("cache", {})
    providers = ", ".join(f"{p['name']} ({p['kind']})" for p in status.get("providers", [])) or "none"
    lines = [
        f"providers      {providers}"
        + ("   (dev: answers are labelled as from the offline dev provider)" if status.get("dev") else ""),
        f"cache          {cache.get('entries', 0)} entries, {cache.get('bytes', 0)} bytes"
        + ("" if cache.get("enabled", True) else " (disabled)"),
        f"in flight      {status.get('inflight', 0)} calls",
        f"spend today    ${status.get('spend_today_usd', 0):.6f}",
    ]
    deployments = status.get("deployments", [])
    breakers = status.get("breakers", {})
    if deployments:
        rows = [
            [d["name"], d["provider"], d["model"], str(d.get("rpm") or "-"), str(d.get("tpm") or "-"),
             str(breakers.get(d["name"], "closed"))]
            for d in deployments
        ]  # fmt: skip
        lines += ["", table(rows, ["DEPLOYMENT", "PROVIDER", "MODEL", "RPM", "TPM", "BREAKER"])]
    return "\n".join(lines)


def cmd_router_status(args: argparse.Namespace, out: TextIO) -> int:
    status = fetch_status(args.router)
    print(json.dumps(status, indent=2, sort_keys=True) if args.json else render(status), file=out)
    return EXIT_OK
