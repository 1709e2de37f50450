"""How the CLI shows runs, nodes and modules: stable JSON objects and plain-text tables."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from agentflow import wire
from agentflow.spec import format_cpu, format_memory
from agentflow.spec.quantity import format_bytes
from agentflow.v1 import node_admin_pb2, types_pb2
from agentflow.vocabulary import ResourceLimit


def _enum_name(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower()


def run_status(value: int) -> str:
    return _enum_name(types_pb2.RunStatus, value, "RUN_STATUS_")


def step_status(value: int) -> str:
    return _enum_name(types_pb2.StepStatus, value, "STEP_STATUS_")


def node_status(value: int) -> str:
    return _enum_name(types_pb2.NodeStatus, value, "NODE_STATUS_")


def isolation(value: int) -> str:
    return _enum_name(types_pb2.Isolation, value, "ISOLATION_")


def sandbox_layers(values: Iterable[int]) -> list[str]:
    """`["landlock", "netns", "seccomp"]`: the layers besides the cgroup, in a stable order."""
    return sorted(_enum_name(types_pb2.SandboxLayer, v, "SANDBOX_LAYER_") for v in values)


def sandbox_text(isolation_value: int, layers: Iterable[int]) -> str:
    """`cgroup1+netns+seccomp+landlock`: every wall around the node's workers."""
    order = {name: i for i, name in enumerate(("netns", "seccomp", "landlock"))}
    names = sorted(sandbox_layers(layers), key=lambda n: order.get(n, len(order)))
    return "+".join([isolation(isolation_value), *names])


def timestamp(value: Timestamp, present: bool) -> str | None:
    if not present:
        return None
    return value.ToDatetime().isoformat(timespec="milliseconds") + "Z"


def _json_or_none(text: str) -> Any:
    return json.loads(text) if text else None


def run_json(run: types_pb2.Run) -> dict[str, Any]:
    """The stable object of `status --json` and `run --wait --json`."""
    return {
        "run_id": run.id,
        "workflow": run.workflow_name,
        "version": run.workflow_version,
        "status": run_status(run.status),
        "error": run.error,
        "input": _json_or_none(run.input_json),
        "outputs": {
            s.name: json.loads(s.output_json)
            for s in run.steps
            if s.status == types_pb2.STEP_STATUS_SUCCEEDED and s.output_json
        },
        "steps": [
            {
                "name": s.name,
                "status": step_status(s.status),
                "attempt": s.attempt,
                "max_attempts": s.max_attempts,
                "node": s.node,
                "error": s.error,
                "exit_code": s.exit_code,
                "stderr": s.stderr,
                "started_at": timestamp(s.started_at, s.HasField("started_at")),
                "finished_at": timestamp(s.finished_at, s.HasField("finished_at")),
                "llm": llm_json(s.llm),
                "usage": usage_json(s.usage),
            }
            for s in run.steps
        ],
        "created_at": timestamp(run.created_at, run.HasField("created_at")),
        "finished_at": timestamp(run.finished_at, run.HasField("finished_at")),
        "llm": llm_json(run.llm),
        "budget": grant_json(run.budget) if run.HasField("budget") else None,
        "reserved": grant_json(run.reserved) if run.HasField("reserved") else None,
        "trace_id": run.trace_id,
    }


def llm_json(u: types_pb2.LLMUsage) -> dict[str, Any]:
    return {
        "calls": u.calls,
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cost_usd": round(u.cost_usd, 10),
        "cache_hits": u.cache_hits,
        "replays": u.replays,
        "upstream_calls": u.upstream_calls,
    }


def usage_json(u: types_pb2.ResourceUsage) -> dict[str, Any]:
    """`ResourceUsage.to_dict()`'s shape, from the wire."""
    return {
        "cpu_seconds": round(u.cpu_seconds, 6),
        "peak_memory_bytes": u.peak_memory_bytes,
        "wall_seconds": round(u.wall_seconds, 6),
        "fetched_bytes": u.fetched_bytes,
        "host_calls": u.host_calls,
        "limits_hit": [
            wire.from_pb(ResourceLimit, types_pb2.ResourceLimit, n, field="usage.limits_hit").value
            for n in u.limits_hit
        ],
    }


def grant_json(g: types_pb2.LLMGrant) -> dict[str, Any]:
    return {"usd": g.usd if g.HasField("usd") else None, "tokens": g.tokens if g.HasField("tokens") else None}


def resources_json(r: types_pb2.Resources) -> dict[str, int]:
    return {"cpu_millis": r.cpu_millis, "memory_bytes": r.memory_bytes, "slots": r.slots}


def node_json(node: types_pb2.Node) -> dict[str, Any]:
    return {
        "name": node.name,
        "id": node.id,
        "status": node_status(node.status),
        "isolation": isolation(node.isolation),
        "sandbox_layers": sandbox_layers(node.sandbox_layers),
        "labels": dict(node.labels),
        "capacity": resources_json(node.capacity),
        "allocated": resources_json(node.allocated),
        "running": node.running,
        "draining": node.draining,
        "drain_deadline": timestamp(node.drain_deadline, node.HasField("drain_deadline")),
        "version": node.version,
        "last_heartbeat": timestamp(node.last_heartbeat, node.HasField("last_heartbeat")),
    }


def node_report_json(report: node_admin_pb2.NodeStatusReport) -> dict[str, Any]:
    """`agentflow node status --json`: what one noded says about itself."""
    return {
        "name": report.name,
        "node_id": report.node_id,
        "server": report.server,
        "connected": report.connected,
        "draining": report.draining,
        "drain_deadline": timestamp(report.drain_deadline, report.HasField("drain_deadline")),
        "isolation": isolation(report.isolation),
        "sandbox_layers": sandbox_layers(report.sandbox_layers),
        "slots": report.slots,
        "running": [
            {
                "run_id": s.run_id,
                "step": s.step,
                "attempt": s.attempt,
                "workflow": s.workflow,
                "since": timestamp(s.since, s.HasField("since")),
            }
            for s in report.running
        ],
        "unacked_results": report.unacked_results,
        "idle_workers": report.idle_workers,
        "version": report.version,
    }


def node_report_text(report: node_admin_pb2.NodeStatusReport) -> str:
    link = f"connected to {report.server}" if report.connected else f"NOT connected to {report.server}"
    lines = [
        f"node {report.name} ({report.node_id or 'not registered'}), {link}",
        f"isolation {sandbox_text(report.isolation, report.sandbox_layers)}, {len(report.running)}/{report.slots} "
        "slots busy, "
        f"{report.idle_workers} idle worker(s), {report.unacked_results} result(s) awaiting an ack",
    ]
    if report.draining:
        deadline = timestamp(report.drain_deadline, report.HasField("drain_deadline"))
        lines.append(f"draining ({f'deadline {deadline}' if deadline else 'no deadline'})")
    if report.running:
        rows = [
            [s.run_id, s.step, str(s.attempt), s.workflow, timestamp(s.since, s.HasField("since")) or "-"]
            for s in report.running
        ]
        lines.append(table(rows, ["RUN", "STEP", "ATTEMPT", "WORKFLOW", "SINCE"]))
    return "\n".join(lines)


def module_json(module: types_pb2.Module) -> dict[str, Any]:
    return {
        "digest": module.digest,
        "size": module.size,
        "name": module.name,
        "created_at": timestamp(module.created_at, module.HasField("created_at")),
    }


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)


def run_text(run: types_pb2.Run) -> str:
    head = f"run {run.id}  workflow {run.workflow_name} v{run.workflow_version}  {run_status(run.status)}"
    if run.error:
        head += f"  ({run.error})"
    ai = any(s.llm.calls for s in run.steps)  # an AI workflow: what its LLM calls cost, per step
    fetched = any(s.usage.fetched_bytes for s in run.steps)
    header = ["STEP", "STATUS", "ATTEMPT", "NODE", "CPU", "MEM", "WALL", "CALLS"]
    header += ["FETCHED"] * fetched + ["LLM"] * ai + ["ERROR"]
    rows = []
    for s in run.steps:
        row = [s.name, step_status(s.status), f"{s.attempt}/{s.max_attempts}", s.node or "-", *_usage_cells(s.usage)]
        row += [format_bytes(s.usage.fetched_bytes)] * fetched + [_llm_text(s.llm)] * ai + [_one_line(s.error)]
        rows.append(row)
    lines = [head]
    if run.trace_id:
        lines.append(f"trace {run.trace_id}")
    if ai:
        total = f"llm: {_llm_text(run.llm)}"
        if run.HasField("budget"):
            total += f"  budget {_grant_text(run.budget)}"
        lines.append(total)
    return "\n".join([*lines, table(rows, header)])


def _usage_cells(u: types_pb2.ResourceUsage) -> list[str]:
    """CPU, MEM, WALL and CALLS of a step's last finished attempt; dashes before one finished."""
    if not u.wall_seconds:
        return ["-"] * 4
    memory = format_bytes(u.peak_memory_bytes) if u.peak_memory_bytes else "-"
    return [f"{u.cpu_seconds:.3f}s", memory, f"{u.wall_seconds:.3f}s", str(u.host_calls)]


def _llm_text(u: types_pb2.LLMUsage) -> str:
    if not u.calls:
        return "-"
    extras = [f"{n} {what}" for n, what in ((u.cache_hits, "cached"), (u.replays, "replayed")) if n]
    text = f"{u.calls} calls, {u.input_tokens + u.output_tokens} tokens, ${u.cost_usd:.4f}"
    return text + (f" ({', '.join(extras)})" if extras else "")


def _grant_text(g: types_pb2.LLMGrant) -> str:
    parts = ([f"${g.usd:.4f}"] if g.HasField("usd") else []) + ([f"{g.tokens} tokens"] if g.HasField("tokens") else [])
    return " / ".join(parts) or "none"


def outputs_text(run: types_pb2.Run) -> str:
    lines = []
    for s in run.steps:
        if s.status == types_pb2.STEP_STATUS_SUCCEEDED and s.output_json:
            lines.append(f"  {s.name}: {s.output_json}")
    return "outputs:\n" + "\n".join(lines) if lines else "outputs: (none)"


def nodes_text(nodes: list[types_pb2.Node]) -> str:
    rows = [
        [
            n.name,
            _status_text(n),
            sandbox_text(n.isolation, n.sandbox_layers),
            f"{n.running}/{n.capacity.slots}",
            f"{_cpu(n.allocated.cpu_millis)}/{_cpu(n.capacity.cpu_millis)}",
            f"{_mem(n.allocated.memory_bytes)}/{_mem(n.capacity.memory_bytes)}",
            ",".join(f"{k}={v}" for k, v in sorted(n.labels.items())) or "-",
        ]
        for n in nodes
    ]
    return table(rows, ["NAME", "STATUS", "ISOLATION", "RUNNING", "CPU", "MEMORY", "LABELS"])


def node_line(node: types_pb2.Node) -> str:
    """One line after drain/undrain: where the node stands."""
    parts = [f"{node.name}: {_status_text(node)}", f"{node.running} step(s) on it"]
    if node.draining:
        deadline = timestamp(node.drain_deadline, node.HasField("drain_deadline"))
        parts.append(f"deadline {deadline}" if deadline else "no deadline")
    else:
        parts.append("takes new steps")
    return ", ".join(parts)


def _status_text(node: types_pb2.Node) -> str:
    """The status, and draining also while the node is away (its status then says disconnected/down)."""
    status = node_status(node.status)
    return f"{status}+draining" if node.draining and node.status != types_pb2.NODE_STATUS_DRAINING else status


def _cpu(millis: int) -> str:
    return format_cpu(millis) if millis > 0 else "0"


def _mem(size: int) -> str:
    """Exact when short (64Mi), else rounded for reading (21.2Gi)."""
    if size <= 0:
        return "0"
    exact = format_memory(size)
    if len(exact) <= 6:
        return exact
    for unit, scale in (("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f}{unit}"
    return exact


def _one_line(text: str, limit: int = 80) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"
