"""The client commands: validate, run, status, runs, cancel, retry, nodes, drain, node, module."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TextIO, TypeVar

from agentflow.cli import render
from agentflow.cli.client import Client, ClientError, NodeAdminClient, Unreachable
from agentflow.config import NODE_ADMIN_SOCKET
from agentflow.spec import InvalidWorkflow, WorkflowSpec, load_workflow
from agentflow.tls import TLSError, TLSFiles
from agentflow.v1 import controlplane_pb2, node_admin_pb2, types_pb2

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_INVALID = 2
EXIT_UNREACHABLE = 3

# How long `run --wait` / `status --wait` keep retrying while the control plane is away
# (e.g. restarting), before giving up with exit code 3.
RECONNECT_WINDOW_S = 60.0
DRAIN_POLL_S = 0.5


def client_for(args: argparse.Namespace) -> Client:
    """The admin client for the command's --server, over TLS when --tls-* (or AGENTFLOW_TLS_*) say so."""
    try:
        tls = TLSFiles.from_settings(args.tls_ca, args.tls_cert, args.tls_key, flag="--tls")
    except TLSError as exc:
        raise CommandError(f"agentflow: {exc}", EXIT_INVALID) from None
    token = None
    if getattr(args, "token_file", None) is not None:
        try:
            token = Path(args.token_file).read_text().strip()
        except OSError as exc:
            raise CommandError(
                f"agentflow: --token-file {args.token_file}: {exc.strerror or exc}", EXIT_INVALID
            ) from None
    return Client(args.server, tls=tls, token=token)


class CommandError(Exception):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _load(path_arg: str) -> tuple[Path, str, WorkflowSpec]:
    path = Path(path_arg)
    try:
        text = path.read_text()
    except OSError as exc:
        raise CommandError(f"{path}: cannot read: {exc.strerror}", EXIT_INVALID) from None
    except UnicodeDecodeError:
        raise CommandError(f"{path}: not UTF-8 text", EXIT_INVALID) from None
    try:
        spec = load_workflow(text, source=str(path), base_dir=path.parent)
    except InvalidWorkflow as exc:
        raise CommandError(str(exc), EXIT_INVALID) from None
    return path, text, spec


def cmd_validate(args: argparse.Namespace, out: TextIO) -> int:
    path, _, spec = _load(args.workflow)
    print(f"{path}: valid workflow {spec.name} v{spec.version} ({len(spec.agents)} agents)", file=out)
    return EXIT_OK


def _read_input(args: argparse.Namespace) -> str:
    if args.input is not None and args.input_file is not None:
        raise CommandError("give --input or --input-file, not both", EXIT_INVALID)
    if args.input_file is not None:
        source = args.input_file
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_text()
        except OSError as exc:
            raise CommandError(f"{source}: cannot read: {exc.strerror}", EXIT_INVALID) from None
    elif args.input is not None:
        source, text = "--input", args.input
    else:
        return ""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{source}: not valid JSON: {exc}", EXIT_INVALID) from None
    return text


def _push_local_modules(client: Client, spec: WorkflowSpec, base_dir: Path, *, quiet: bool) -> dict[str, str]:
    from agentflow.cli.client import file_digest

    stored = {m.digest for m in client.list_modules()}
    digests: dict[str, str] = {}
    for agent in spec.agents:
        ref = agent.module.path
        if ref is None or ref in digests:
            continue
        path = base_dir / ref
        digest = file_digest(path)
        if digest not in stored:
            module = client.push_module(path)
            digest = module.digest
            stored.add(digest)
            if not quiet:
                print(f"pushed {ref} as {digest}", file=sys.stderr)
        digests[ref] = digest
    return digests


def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    path, text, spec = _load(args.workflow)
    input_json = _read_input(args)
    with client_for(args) as client:
        digests = _push_local_modules(client, spec, path.parent, quiet=args.json)
        response = client.submit(workflow_yaml=text, source=str(path), input_json=input_json, module_digests=digests)
        if not args.wait:
            if args.json:
                print(json.dumps({"run_id": response.run_id}), file=out)
            else:
                print(response.run_id, file=out)
            return EXIT_OK
        if not args.json:
            print(f"run {response.run_id} started (workflow {spec.name} v{spec.version}, "
                  f"{len(spec.agents)} steps)", file=out)  # fmt: skip
        run = _follow(client, response.run_id, out=None if args.json else out)
    return _finish(run, args.json, out)


def _follow(client: Client, run_id: str, *, out: TextIO | None) -> types_pb2.Run:
    """Watch a run to its end, printing step transitions; ride out control-plane restarts."""
    seen: dict[str, tuple[int, int]] = {}
    tracked = _TrackedRun()
    deadline: float | None = None
    while True:
        try:
            for message in client.watch_run(run_id):
                deadline = None
                tracked.apply(message)
                if out is not None:
                    _print_transitions(message, seen, out)
            if tracked.head is not None and tracked.head.status != types_pb2.RUN_STATUS_RUNNING:
                return tracked.run()
        except Unreachable as exc:
            now = time.monotonic()
            if deadline is None:
                deadline = now + RECONNECT_WINDOW_S
                print(f"{exc}; retrying for up to {RECONNECT_WINDOW_S:.0f}s", file=sys.stderr)
            if now > deadline:
                raise
            time.sleep(0.5)


_QUIET_STATUSES = (types_pb2.STEP_STATUS_PENDING, types_pb2.STEP_STATUS_READY, types_pb2.STEP_STATUS_ASSIGNED)


class _TrackedRun:
    """The run as watch messages tell it: a whole run, or the run's fields and changed steps.
    A message costs what it holds, not the size of the run; `run()` puts the whole run together."""

    def __init__(self) -> None:
        self.head: types_pb2.Run | None = None  # the run's own fields (its steps are in `steps`)
        self.steps: dict[str, types_pb2.Step] = {}  # in the run's order

    def apply(self, message: controlplane_pb2.WatchRunResponse) -> None:
        head = types_pb2.Run()
        head.CopyFrom(message.run)
        if message.run.steps or self.head is None or self.head.id != message.run.id:
            self.steps = {s.name: s for s in message.run.steps}
        else:
            for step in message.steps:
                if step.name in self.steps:
                    self.steps[step.name] = step
        del head.steps[:]
        self.head = head

    def run(self) -> types_pb2.Run:
        assert self.head is not None
        whole = types_pb2.Run()
        whole.CopyFrom(self.head)
        whole.steps.extend(self.steps.values())
        return whole


def _print_transitions(
    message: controlplane_pb2.WatchRunResponse, seen: dict[str, tuple[int, int]], out: TextIO
) -> None:
    for step in [*message.run.steps, *message.steps]:
        state = (step.status, step.attempt)
        if seen.get(step.name) == state:
            continue
        seen[step.name] = state
        if step.status in _QUIET_STATUSES and not step.HasField("not_before"):
            continue  # waiting, queued or just placed: the next line says more
        parts = [f"  {step.name:<20} {render.step_status(step.status):<10}"]
        if step.attempt:
            parts.append(f"attempt {step.attempt}/{step.max_attempts}")
        if step.node:
            parts.append(f"on {step.node}")
        if step.error and step.status != types_pb2.STEP_STATUS_SUCCEEDED:
            parts.append(f"- {step.error.strip().splitlines()[0]}")
        if step.status == types_pb2.STEP_STATUS_READY and step.HasField("not_before"):
            parts.append("(retrying after backoff)")
        print(" ".join(parts), file=out, flush=True)


def _finish(run: types_pb2.Run, as_json: bool, out: TextIO) -> int:
    if as_json:
        print(json.dumps(render.run_json(run), indent=2), file=out)
    else:
        print(f"run {run.id} {render.run_status(run.status)}" + (f": {run.error}" if run.error else ""), file=out)
        print(render.outputs_text(run), file=out)
    return EXIT_OK if run.status == types_pb2.RUN_STATUS_SUCCEEDED else EXIT_RUN_FAILED


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    with client_for(args) as client:
        if args.wait:
            run = _follow(client, args.run_id, out=None if args.json else out)
            return _finish(run, args.json, out)
        run = client.get_run(args.run_id)
    if args.json:
        print(json.dumps(render.run_json(run), indent=2), file=out)
    else:
        print(render.run_text(run), file=out)
        print(render.outputs_text(run), file=out)
    return EXIT_OK


def cmd_runs(args: argparse.Namespace, out: TextIO) -> int:
    with client_for(args) as client:
        runs = client.list_runs(limit=args.limit, workflow_name=args.workflow or "")
    if args.json:
        print(json.dumps([render.run_json(r) for r in runs], indent=2), file=out)
        return EXIT_OK
    rows = [
        [
            r.id,
            r.workflow_name,
            render.run_status(r.status),
            f"{sum(s.status == types_pb2.STEP_STATUS_SUCCEEDED for s in r.steps)}/{len(r.steps)}",
            render.timestamp(r.created_at, r.HasField("created_at")) or "",
        ]
        for r in runs
    ]
    print(render.table(rows, ["RUN", "WORKFLOW", "STATUS", "DONE", "CREATED"]), file=out)
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace, out: TextIO) -> int:
    with client_for(args) as client:
        run = client.cancel_run(args.run_id)
    _print_run(run, args.json, out)
    return EXIT_OK


def cmd_retry(args: argparse.Namespace, out: TextIO) -> int:
    with client_for(args) as client:
        run = client.retry_run(args.run_id)
        if args.wait:
            run = _follow(client, run.id, out=None if args.json else out)
            return _finish(run, args.json, out)
    _print_run(run, args.json, out)
    return EXIT_OK


def _print_run(run: types_pb2.Run, as_json: bool, out: TextIO) -> None:
    if as_json:
        print(json.dumps(render.run_json(run), indent=2), file=out)
    else:
        print(render.run_text(run), file=out)


def cmd_nodes(args: argparse.Namespace, out: TextIO) -> int:
    with client_for(args) as client:
        nodes = client.list_nodes()
    if args.json:
        print(json.dumps([render.node_json(n) for n in nodes], indent=2), file=out)
    else:
        print(render.nodes_text(nodes), file=out)
    return EXIT_OK


def cmd_drain(args: argparse.Namespace, out: TextIO) -> int:
    with client_for(args) as client:
        node = client.drain_node(args.node, deadline=args.deadline)
        if args.wait:
            node = _wait_drained(
                node, lambda: client.get_node(args.node), lambda n: n.running, out=None if args.json else out
            )
    _print_node(node, args.json, out)
    return EXIT_OK


class _DrainView(Protocol):
    """What `Node` (control plane) and `NodeStatusReport` (noded) both say about a drain."""

    @property
    def name(self) -> str: ...
    @property
    def draining(self) -> bool: ...


V = TypeVar("V", bound=_DrainView)


def _wait_drained(view: V, refresh: Callable[[], V], running: Callable[[V], int], *, out: TextIO | None) -> V:
    """Poll until nothing runs on the node; print the count whenever it changes."""
    shown = -1
    while count := running(view):
        if out is not None and count != shown:
            print(f"{view.name}: waiting for {count} step(s) to finish", file=out, flush=True)
            shown = count
        time.sleep(DRAIN_POLL_S)
        view = refresh()
        if not view.draining:
            raise CommandError(f"{view.name}: the drain was called off (undrained)", EXIT_RUN_FAILED)
    return view


def cmd_undrain(args: argparse.Namespace, out: TextIO) -> int:
    with client_for(args) as client:
        node = client.undrain_node(args.node)
    _print_node(node, args.json, out)
    return EXIT_OK


def _print_node(node: types_pb2.Node, as_json: bool, out: TextIO) -> None:
    if as_json:
        print(json.dumps(render.node_json(node), indent=2), file=out)
    else:
        print(render.node_line(node), file=out)


def cmd_node_status(args: argparse.Namespace, out: TextIO) -> int:
    with NodeAdminClient(_admin_socket(args)) as node:
        _print_report(node.status(), args.json, out)
    return EXIT_OK


def cmd_node_drain(args: argparse.Namespace, out: TextIO) -> int:
    with NodeAdminClient(_admin_socket(args)) as node:
        report = node.drain(deadline=args.deadline)
        if args.wait:
            report = _wait_drained(report, node.status, lambda r: len(r.running), out=None if args.json else out)
        _print_report(report, args.json, out)
    return EXIT_OK


def cmd_node_undrain(args: argparse.Namespace, out: TextIO) -> int:
    with NodeAdminClient(_admin_socket(args)) as node:
        _print_report(node.undrain(), args.json, out)
    return EXIT_OK


def _admin_socket(args: argparse.Namespace) -> Path:
    return Path(args.socket) if args.socket else Path(args.data_dir) / NODE_ADMIN_SOCKET


def _print_report(report: node_admin_pb2.NodeStatusReport, as_json: bool, out: TextIO) -> None:
    if as_json:
        print(json.dumps(render.node_report_json(report), indent=2), file=out)
    else:
        print(render.node_report_text(report), file=out)


def cmd_module_push(args: argparse.Namespace, out: TextIO) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise CommandError(f"{path}: no such file", EXIT_INVALID)
    with client_for(args) as client:
        module = client.push_module(path)
    if args.json:
        print(json.dumps(render.module_json(module)), file=out)
    else:
        print(module.digest, file=out)
    return EXIT_OK


def cmd_module_list(args: argparse.Namespace, out: TextIO) -> int:
    with client_for(args) as client:
        modules = client.list_modules()
    if args.json:
        print(json.dumps([render.module_json(m) for m in modules], indent=2), file=out)
    else:
        rows = [[m.digest, str(m.size), m.name] for m in modules]
        print(render.table(rows, ["DIGEST", "SIZE", "NAME"]), file=out)
    return EXIT_OK


def run_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    handler: Any = args.handler
    out = sys.stdout if out is None else out  # looked up per call: sys.stdout may be replaced
    try:
        return int(handler(args, out))
    except CommandError as exc:
        print(str(exc), file=sys.stderr)
        return exc.exit_code
    except ClientError as exc:
        print(f"agentflow: {exc}", file=sys.stderr)
        return exc.exit_code
