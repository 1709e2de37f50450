"""Serving a Prometheus registry over HTTP."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, start_http_server

from agentflow.config.parsers import split_address


def serve_metrics(registry: CollectorRegistry, listen: str) -> tuple[int, Callable[[], None]]:
    """Serve /metrics on `listen` (port 0 picks one); answer the port and a stop function."""
    host, port = split_address(listen)
    server, thread = start_http_server(port, addr=host, registry=registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return int(server.server_address[1]), stop
