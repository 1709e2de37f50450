"""One run, one trace, across real processes: the control plane's `workflow.execute`, each
attempt's `agent.execute` on the node, and the router's `llm.call`, parented by the W3C trace
context that travels in the assignment and the HTTP headers; through a retry and a kill -9 of
the control plane, to JSON-lines files; and over OTLP (gRPC and HTTP) to real receivers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from cluster import (
    REPO_ROOT,
    Daemon,
    cli,
    nodes_ready,
    start_controlplane,
    start_noded,
    start_router,
    wait_for,
    write_workflow,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

AGENTS = REPO_ROOT / "tests" / "agents"
ONE_CALL = [{"prompt": "one question", "model": "m", "temperature": 0}]


def workflow(path: Path, *, nap_ms: int) -> Path:
    return write_workflow(
        path,
        "apiVersion: agentflow/v1\nkind: Workflow\nname: traced\nversion: '1'\nagents:\n"
        f"  - name: ask\n    module: {AGENTS / 'llm.wasm'}\n    capabilities: {{llm: true}}\n"
        f"    input: {json.dumps({'calls': ONE_CALL})}\n"
        f"  - name: flaky\n    module: {AGENTS / 'flaky.wasm'}\n    dependsOn: [ask]\n"
        "    input: {succeedOn: 2}\n    retry: {maxAttempts: 2, backoff: 100ms}\n"
        f"  - name: nap\n    module: {AGENTS / 'sleep.wasm'}\n    dependsOn: [flaky]\n    input: {{ms: {nap_ms}}}\n",
    )


def spans(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def ids(span: dict[str, Any]) -> tuple[str, str, str | None]:
    """(trace id, span id, parent span id) in lower-case hex without 0x."""
    ctx = span["context"]
    parent = span["parent_id"]
    return ctx["trace_id"][2:], ctx["span_id"][2:], parent[2:] if parent else None


def named(found: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [s for s in found if s["name"] == name]


@pytest.fixture
def router(tmp_path: Path, built_agents: Path) -> Iterator[Daemon]:
    daemon = start_router(tmp_path / "router")
    try:
        yield daemon
    finally:
        daemon.stop()


def test_one_run_is_one_trace_across_processes_retries_and_a_control_plane_restart(
    tmp_path: Path, router: Daemon
) -> None:
    cp_dir = tmp_path / "cp"
    cp = start_controlplane(cp_dir)
    server = str(cp.state["grpc"])
    node = start_noded(tmp_path / "node", server, name="n1", extra=["--router", router.state["http"]])
    try:
        wait_for(lambda: nodes_ready(server, 1), timeout=30, what="the node")
        submitted = cli(server, "run", str(workflow(tmp_path / "w.yaml", nap_ms=2500)), "--json")
        assert submitted.code == 0, submitted.err
        run_id = submitted.json()["run_id"]

        def nap_running() -> bool:
            run = cli(server, "status", run_id, "--json").json()
            return any(s["name"] == "nap" and s["status"] == "running" for s in run["steps"])

        wait_for(nap_running, timeout=60, what="the nap step running")
        wait_for(lambda: named(spans(cp_dir / "traces.jsonl"), "agentflow.v1.ControlPlane/SubmitWorkflow"),
                 timeout=10, what="the submission's span exported")  # fmt: skip
        cp.kill()  # mid-run: the run's trace lives on in the store
        cp = start_controlplane(cp_dir, listen=server)
        done = cli(server, "status", run_id, "--wait", "--json")
        assert done.code == 0 and done.json()["status"] == "succeeded", done.out + done.err
        trace_id = done.json()["trace_id"]
        assert len(trace_id) == 32
        text = cli(server, "status", run_id)
        assert f"trace {trace_id}" in text.out
    finally:
        node.stop()
        cp.stop()
    router.stop()  # each daemon exports what it still buffers as it stops

    cp_spans, node_spans = spans(cp_dir / "traces.jsonl"), spans(tmp_path / "node" / "traces.jsonl")
    router_spans = spans(tmp_path / "router" / "traces.jsonl")
    (workflow_span,) = [s for s in named(cp_spans, "workflow.execute") if ids(s)[0] == trace_id]
    _, w_span, w_parent = ids(workflow_span)
    assert workflow_span["attributes"]["workflow.name"] == "traced"
    assert workflow_span["attributes"]["workflow.run_id"] == run_id
    assert workflow_span["attributes"]["workflow.status"] == "succeeded"
    submit = [s for s in named(cp_spans, "agentflow.v1.ControlPlane/SubmitWorkflow") if ids(s)[0] == trace_id]
    assert [ids(s)[1] for s in submit] == [w_parent], "workflow.execute is a child of the submission"
    assert submit[0]["kind"] == "SpanKind.SERVER"

    agents = [s for s in named(node_spans, "agent.execute") if ids(s)[0] == trace_id]
    by_step: dict[str, list[dict[str, Any]]] = {}
    for s in agents:
        assert ids(s)[2] == w_span, "every attempt is a child of workflow.execute"
        by_step.setdefault(s["attributes"]["agent.name"], []).append(s)
    assert sorted(by_step) == ["ask", "flaky", "nap"]
    flaky = sorted(by_step["flaky"], key=lambda s: s["attributes"]["agent.attempt"])
    assert [s["attributes"]["agent.attempt"] for s in flaky] == [1, 2]
    assert flaky[0]["status"]["status_code"] == "ERROR" and flaky[1]["status"]["status_code"] == "UNSET"
    (ask,) = by_step["ask"]
    assert ask["attributes"]["resource.cpu"] and ask["attributes"]["resource.memory"]
    assert ask["attributes"]["workflow.name"] == "traced"

    # The control plane's spans of the node's module downloads are children of the attempts that
    # needed them; the node's registration is a client span with its server span as child.
    served = [s for s in named(cp_spans, "agentflow.v1.NodeGateway/FetchModule") if ids(s)[0] == trace_id]
    assert served and {ids(s)[2] for s in served} <= {ids(s)[1] for s in agents}
    (register,) = named(node_spans, "agentflow.v1.NodeGateway/Register")
    assert register["kind"] == "SpanKind.CLIENT"
    assert [ids(s)[2] for s in named(cp_spans, "agentflow.v1.NodeGateway/Register")] == [ids(register)[1]]

    (llm_call,) = [s for s in named(router_spans, "llm.call") if ids(s)[0] == trace_id]
    assert ids(llm_call)[2] == ids(ask)[1], "the router's span is a child of the attempt that called"
    attrs = llm_call["attributes"]
    assert attrs["llm.cache"] == "miss" and attrs["llm.provider"] == "dev" and attrs["llm.model"] == "m"
    assert attrs["llm.usage.input_tokens"] > 0 and attrs["llm.usage.output_tokens"] > 0
    assert "llm.cost_usd" in attrs
    assert llm_call["resource"]["attributes"]["service.name"] == "agentflow-router"


class OTLPReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    """The OTLP trace service (gRPC), keeping what it is sent."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.lock = threading.Lock()

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        with self.lock:
            self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


def flatten(requests: list[trace_service_pb2.ExportTraceServiceRequest]) -> list[tuple[str, Any]]:
    """(service name, span) of every span received."""
    out = []
    for request in requests:
        for rs in request.resource_spans:
            service = next(a.value.string_value for a in rs.resource.attributes if a.key == "service.name")
            out += [(service, span) for ss in rs.scope_spans for span in ss.spans]
    return out


@pytest.fixture
def otlp_grpc() -> Iterator[tuple[OTLPReceiver, int]]:
    receiver = OTLPReceiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield receiver, port
    finally:
        server.stop(0)


@pytest.fixture
def otlp_http() -> Iterator[tuple[list[trace_service_pb2.ExportTraceServiceRequest], int]]:
    got: list[trace_service_pb2.ExportTraceServiceRequest] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            ok = self.path == "/v1/traces" and self.headers["Content-Type"] == "application/x-protobuf"
            if ok:
                got.append(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield got, int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_spans_are_exported_over_otlp_grpc_and_http(
    tmp_path: Path,
    built_agents: Path,
    otlp_grpc: tuple[OTLPReceiver, int],
    otlp_http: tuple[list[trace_service_pb2.ExportTraceServiceRequest], int],
) -> None:
    receiver, grpc_port = otlp_grpc
    http_requests, http_port = otlp_http
    to_grpc = ["--otlp-endpoint", f"127.0.0.1:{grpc_port}"]
    router = start_router(tmp_path / "router", extra=["--otlp-endpoint", f"http://127.0.0.1:{http_port}",
                                                      "--otlp-protocol", "http"])  # fmt: skip
    cp = start_controlplane(tmp_path / "cp", extra=to_grpc)
    server = str(cp.state["grpc"])
    node = start_noded(tmp_path / "node", server, name="n1", extra=["--router", router.state["http"], *to_grpc])
    try:
        wait_for(lambda: nodes_ready(server, 1), timeout=30, what="the node")
        one = write_workflow(
            tmp_path / "one.yaml",
            "apiVersion: agentflow/v1\nkind: Workflow\nname: otlp\nversion: '1'\nagents:\n"
            f"  - name: ask\n    module: {AGENTS / 'llm.wasm'}\n    capabilities: {{llm: true}}\n"
            f"    input: {json.dumps({'calls': ONE_CALL})}\n",
        )
        done = cli(server, "run", str(one), "--wait", "--json")
        assert done.code == 0, done.out + done.err
        trace_id = bytes.fromhex(done.json()["trace_id"])

        def received() -> dict[str, Any] | None:
            with receiver.lock:
                found = {span.name: (service, span) for service, span in flatten(receiver.requests)
                         if span.trace_id == trace_id}  # fmt: skip
            found.update({span.name: (service, span) for service, span in flatten(http_requests)
                          if span.trace_id == trace_id})  # fmt: skip
            wanted = {"workflow.execute", "agent.execute", "llm.call"}
            return found if wanted <= set(found) else None

        found = wait_for(received, timeout=30, what="the run's spans at the OTLP receivers")
    finally:
        node.stop()
        cp.stop()
        router.stop()
    service_w, w = found["workflow.execute"]
    service_a, a = found["agent.execute"]
    service_l, llm_call = found["llm.call"]
    assert (service_w, service_a, service_l) == ("agentflow-controlplane", "agentflow-noded", "agentflow-router")
    assert a.parent_span_id == w.span_id and llm_call.parent_span_id == a.span_id
    assert {kv.key for kv in llm_call.attributes} >= {"llm.model", "llm.cache", "llm.usage.input_tokens"}
