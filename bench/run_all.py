#!/usr/bin/env python3
"""Run every benchmark in bench/ and print their tables (`make bench`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

for script in (
    "step_overhead.py",
    "workflow_latency.py",
    "dag_overhead.py",
    "dag_faults.py",
    "router_overhead.py",
    "hostile_neighbours.py",
    "scale.py",
    "fleet_heartbeats.py",
    "agent_startup.py",
):
    print(f"== {script}", flush=True)
    code = subprocess.call([sys.executable, str(HERE / script)])
    if code:
        sys.exit(code)
    print(flush=True)
