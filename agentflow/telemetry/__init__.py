"""Logging and metrics helpers shared by the daemons."""

from agentflow.telemetry.logs import LEVELS, JsonFormatter, configure_logging
from agentflow.telemetry.metrics import serve_metrics

__all__ = ["LEVELS", "JsonFormatter", "configure_logging", "serve_metrics"]
