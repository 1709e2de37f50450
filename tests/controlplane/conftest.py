"""Component-test harness: a real engine and gRPC server on 127.0.0.1:0, and a fake node.

`control_plane(...)` opens an `Engine` over a SQLite file in a temporary data dir and serves it
with `build_server`; tests talk to it through real `ControlPlane` and `NodeGateway` stubs. A
`FakeNode` is a small client of the real `NodeGateway`: it registers, holds one `Connect`
stream, sends hello/heartbeat/started/result and collects every `ControlMessage` it receives.
Every wait has a timeout, so a missing message fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from waiting import WAIT_S, eventually

from agentflow import wire
from agentflow.clock import Clock, ManualClock
from agentflow.transport import BATCHES_METADATA, NODE_ID_METADATA
from agentflow.v1 import (
    controlplane_pb2,
    controlplane_pb2_grpc,
    node_pb2,
    node_pb2_grpc,
    types_pb2,
)
from agentflow.vocabulary import FailureKind
from controlplane.api.server import build_server
from controlplane.engine import Engine

GiB = 1 << 30
MODULE_BYTES = 4 * 1024 * 1024

TERMINAL_RUN = frozenset({types_pb2.RUN_STATUS_SUCCEEDED, types_pb2.RUN_STATUS_FAILED, types_pb2.RUN_STATUS_CANCELLED})


Attempt = node_pb2.AttemptRef | types_pb2.Assignment


def attempt_ref(attempt: Attempt) -> node_pb2.AttemptRef:
    """The AttemptRef of an assignment (or the ref itself)."""
    if isinstance(attempt, node_pb2.AttemptRef):
        return attempt
    return node_pb2.AttemptRef(run_id=attempt.run_id, step=attempt.step, attempt=attempt.attempt)


def step_of(run: types_pb2.Run, name: str) -> types_pb2.Step:
    for step in run.steps:
        if step.name == name:
            return step
    raise AssertionError(f"run {run.id} has no step {name!r}")


class FakeNode:
    """A node speaking the real NodeGateway protocol, driven step by step by the test.

    As noded does, it holds an armed assignment (`after_step`) until the attempt it waits for
    succeeds here, then hands it to the test as an ordinary one, that attempt's output added to
    its input; it drops it when that attempt ends otherwise."""

    def __init__(
        self,
        cp: ControlPlane,
        name: str,
        *,
        slots: int = 4,
        cpu_millis: int = 4000,
        memory_bytes: int = 8 * GiB,
        labels: dict[str, str] | None = None,
    ) -> None:
        self.cp = cp
        self.name = name
        self.capacity = types_pb2.Resources(cpu_millis=cpu_millis, memory_bytes=memory_bytes, slots=slots)
        self.labels = dict(labels or {})
        self.node_id = ""
        self.inbox: asyncio.Queue[node_pb2.ControlMessage] = asyncio.Queue()
        self.received: list[node_pb2.ControlMessage] = []  # everything, in arrival order (batches taken apart)
        self.batches: list[int] = []  # the size of each batch message the control plane sent
        self._held: list[node_pb2.ControlMessage] = []  # taken from the inbox but not yet expected
        self._armed: dict[tuple[str, str, int], list[node_pb2.ControlMessage]] = {}  # behind an attempt
        self._ended: dict[tuple[str, str, int], str | None] = {}  # attempt -> its output if it succeeded
        self._call: grpc.aio.StreamStreamCall | None = None
        self._reader: asyncio.Task[None] | None = None
        self._beats: asyncio.Task[None] | None = None
        # gRPC allows one outstanding write per stream: the heartbeat task and the test take turns
        self._writing = asyncio.Lock()
        self.stream_ended = asyncio.Event()
        self.stream_code: grpc.StatusCode | None = None

    # joining -----------------------------------------------------------------------------------

    async def register(self, *, node_id: str | None = None) -> str:
        """Register (again, with `node_id` or the id held so far); answer the node id."""
        response = await self.cp.gateway.Register(
            node_pb2.RegisterRequest(
                name=self.name,
                node_id=self.node_id if node_id is None else node_id,
                labels=self.labels,
                capacity=self.capacity,
                isolation=types_pb2.ISOLATION_NONE,
                version="test",
            ),
            timeout=WAIT_S,
        )
        self.node_id = response.node_id
        return self.node_id

    async def connect(
        self,
        *,
        in_flight: Iterable[Attempt] = (),
        unacked: Iterable[Attempt] = (),
        batches: bool = False,
    ) -> None:
        """Open the Connect stream and send the hello naming what the node still holds; with
        `batches`, say that this node reads batch messages."""
        assert self._call is None, "already connected"
        self.stream_ended = asyncio.Event()
        self.stream_code = None
        metadata = ((NODE_ID_METADATA, self.node_id), *([(BATCHES_METADATA, "1")] if batches else []))
        call = self.cp.gateway.Connect(metadata=metadata)
        self._call = call
        self._reader = asyncio.create_task(self._read(call), name=f"fake-node-{self.name}")
        hello = node_pb2.Hello(in_flight=[attempt_ref(a) for a in in_flight], unacked=[attempt_ref(a) for a in unacked])
        await self.send(node_pb2.NodeMessage(hello=hello))

    async def join(self) -> FakeNode:
        """Register, connect with an empty hello and wait until the control plane says READY."""
        await self.register()
        await self.connect()
        await self.wait_status(types_pb2.NODE_STATUS_READY)
        return self

    async def wait_status(self, status: types_pb2.NodeStatus.ValueType, *, within: float = WAIT_S) -> None:
        async def check() -> bool:
            node = await self.cp.admin.GetNode(controlplane_pb2.GetNodeRequest(name=self.name), timeout=WAIT_S)
            return node.status == status

        name = types_pb2.NodeStatus.Name(status)
        await eventually(check, within=within, what=f"node {self.name} {name}")

    async def _read(self, call: grpc.aio.StreamStreamCall) -> None:
        try:
            while True:
                message = await call.read()
                if message is grpc.aio.EOF:
                    self.stream_code = await call.code()
                    return
                if message.WhichOneof("kind") == "batch":
                    self.batches.append(len(message.batch.messages))
                    for each in message.batch.messages:
                        self._take(each)
                else:
                    self._take(message)
        except grpc.aio.AioRpcError as exc:
            self.stream_code = exc.code()
        finally:
            self.stream_ended.set()

    def _take(self, message: node_pb2.ControlMessage) -> None:
        self.received.append(message)
        if message.WhichOneof("kind") == "assign" and message.assign.after_step:
            self._hold_armed(message)
            return
        if message.WhichOneof("kind") == "cancel":
            self._drop_armed(message.cancel)
        self.inbox.put_nowait(message)

    @property
    def call(self) -> grpc.aio.StreamStreamCall:
        assert self._call is not None, "not connected"
        return self._call

    # sending -----------------------------------------------------------------------------------

    async def send(self, message: node_pb2.NodeMessage) -> None:
        assert self._call is not None, "not connected"
        async with asyncio.timeout(WAIT_S), self._writing:
            await self._call.write(message)

    async def heartbeat(self) -> None:
        await self.send(node_pb2.NodeMessage(heartbeat=node_pb2.Heartbeat(running=0, idle_workers=1)))

    async def heartbeat_seen(self, clock: Clock) -> None:
        """Heartbeat and wait until the control plane has recorded it at `clock`'s time."""
        await self.heartbeat()
        expected = clock.now()

        async def seen() -> bool:
            node = await self.cp.admin.GetNode(controlplane_pb2.GetNodeRequest(name=self.name), timeout=WAIT_S)
            return node.last_heartbeat.ToDatetime(tzinfo=UTC) >= expected

        await eventually(seen, what=f"heartbeat of {self.name} recorded")

    def start_heartbeats(self, interval: float) -> None:
        async def beat() -> None:
            while True:
                await self.heartbeat()
                await asyncio.sleep(interval)

        self._beats = asyncio.create_task(beat(), name=f"fake-node-{self.name}-heartbeats")

    async def stop_heartbeats(self) -> None:
        if self._beats is not None:
            self._beats.cancel()
            await asyncio.gather(self._beats, return_exceptions=True)
            self._beats = None

    async def started(self, attempt: Attempt) -> None:
        await self.send(node_pb2.NodeMessage(started=node_pb2.StepStarted(attempt=attempt_ref(attempt))))

    async def result(
        self,
        attempt: Attempt,
        *,
        output: Any = None,
        outcome: types_pb2.StepOutcome.ValueType = types_pb2.STEP_OUTCOME_SUCCEEDED,
        error: str = "",
        exit_code: int = 0,
        stderr: str = "",
        failure_kind: FailureKind | None = None,
        llm: types_pb2.LLMUsage | None = None,
        usage: types_pb2.ResourceUsage | None = None,
    ) -> None:
        attempt = attempt_ref(attempt)
        await self.send(
            node_pb2.NodeMessage(
                result=types_pb2.StepResult(
                    run_id=attempt.run_id,
                    step=attempt.step,
                    attempt=attempt.attempt,
                    outcome=outcome,
                    output_json=json.dumps(output) if outcome == types_pb2.STEP_OUTCOME_SUCCEEDED else "",
                    error=error,
                    exit_code=exit_code,
                    stderr=stderr,
                    duration=Duration(nanos=1_000_000),
                    failure_kind=wire.to_pb(failure_kind or FailureKind.EXIT, types_pb2.FailureKind)
                    if outcome == types_pb2.STEP_OUTCOME_FAILED
                    else types_pb2.FAILURE_KIND_UNSPECIFIED,
                    llm=llm,
                    usage=usage,
                )
            )
        )
        self._ended_here(attempt, json.dumps(output) if outcome == types_pb2.STEP_OUTCOME_SUCCEEDED else None)

    def _hold_armed(self, message: node_pb2.ControlMessage) -> None:
        a = message.assign
        after = (a.run_id, a.after_step, a.after_attempt)
        if after in self._ended:
            self._release(message, self._ended[after])
        else:
            self._armed.setdefault(after, []).append(message)

    def _drop_armed(self, ref: node_pb2.AttemptRef) -> None:
        for held in self._armed.values():
            held[:] = [m for m in held if attempt_ref(m.assign) != ref]

    def _release(self, message: node_pb2.ControlMessage, output_json: str | None) -> None:
        if output_json is None:
            return  # the attempt it waited for did not succeed: dropped
        started = node_pb2.ControlMessage()
        started.CopyFrom(message)
        document = json.loads(started.assign.stdin_json)
        document["upstream"][started.assign.after_step] = json.loads(output_json)
        started.assign.stdin_json = json.dumps(document, separators=(",", ":"))
        started.assign.after_step, started.assign.after_attempt = "", 0
        self.inbox.put_nowait(started)

    def _ended_here(self, attempt: node_pb2.AttemptRef, output_json: str | None) -> None:
        key = (attempt.run_id, attempt.step, attempt.attempt)
        self._ended[key] = output_json
        for message in self._armed.pop(key, []):
            self._release(message, output_json)

    async def finish(self, attempt: Attempt, output: Any = None, **kwargs: Any) -> node_pb2.ResultAck:
        """Report started and a result for `attempt`; answer the control plane's ack."""
        await self.started(attempt)
        await self.result(attempt, output=output, **kwargs)
        return await self.ack(attempt)

    # receiving ---------------------------------------------------------------------------------

    async def expect(
        self,
        kind: str,
        where: Callable[[Any], bool] | None = None,
        *,
        within: float = WAIT_S,
    ) -> Any:
        """The next received `kind` ("assign", "cancel", "ack") part matching `where`.

        Messages that do not match stay held, in order, for later calls.
        """
        for i, message in enumerate(self._held):
            part = _part(message, kind, where)
            if part is not None:
                del self._held[i]
                return part
        try:
            async with asyncio.timeout(within):
                while True:
                    message = await self.inbox.get()
                    part = _part(message, kind, where)
                    if part is not None:
                        return part
                    self._held.append(message)
        except TimeoutError:
            held = [m.WhichOneof("kind") for m in self._held]
            raise AssertionError(f"node {self.name}: no {kind} within {within}s (held: {held})") from None

    async def assignment(self, step: str | None = None, *, within: float = WAIT_S) -> types_pb2.Assignment:
        where = None if step is None else (lambda a: a.step == step)
        return await self.expect("assign", where, within=within)

    async def ack(self, attempt: Attempt, *, within: float = WAIT_S) -> node_pb2.ResultAck:
        key = attempt_ref(attempt)
        return await self.expect("ack", lambda a: a.attempt == key, within=within)

    async def cancel(self, attempt: Attempt, *, within: float = WAIT_S) -> node_pb2.AttemptRef:
        key = attempt_ref(attempt)
        return await self.expect("cancel", lambda c: c == key, within=within)

    async def quiet(self, kind: str, seconds: float) -> None:
        """Fail if a `kind` message is held or arrives within `seconds`."""
        try:
            part = await self.expect(kind, within=seconds)
        except AssertionError:
            return
        raise AssertionError(f"node {self.name}: unexpected {kind}: {part}")

    # leaving -----------------------------------------------------------------------------------

    async def drop(self) -> None:
        """Drop the stream as a crashed or partitioned node would (the RPC is cancelled)."""
        await self.stop_heartbeats()
        if self._call is not None:
            self._call.cancel()
            self._call = None
        if self._reader is not None:
            async with asyncio.timeout(WAIT_S):
                await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None
        self._held.clear()
        while not self.inbox.empty():
            self.inbox.get_nowait()


def _part(message: node_pb2.ControlMessage, kind: str, where: Callable[[Any], bool] | None) -> Any:
    if message.WhichOneof("kind") != kind:
        return None
    part = getattr(message, kind)
    return part if where is None or where(part) else None


class ControlPlane:
    """A running engine + gRPC server over `data_dir`, and stubs on a real channel to it."""

    def failed_events(self, run_id: str) -> list[dict[str, Any]]:
        """The run's agent.failed events as stored: their attempt and data."""
        with sqlite3.connect(self.data_dir / "state.db") as db:
            rows = db.execute(
                "SELECT attempt, data_json FROM events WHERE run_id = ? AND type = 'agent.failed' ORDER BY seq",
                (run_id,),
            ).fetchall()
        return [{"attempt": attempt, **json.loads(data)} for attempt, data in rows]

    def __init__(self, engine: Engine, server: grpc.aio.Server, port: int, data_dir: Path) -> None:
        self.engine = engine
        self.server = server
        self.address = f"127.0.0.1:{port}"
        self.data_dir = data_dir
        self.channel = grpc.aio.insecure_channel(self.address)
        self.admin = controlplane_pb2_grpc.ControlPlaneStub(self.channel)
        self.gateway = node_pb2_grpc.NodeGatewayStub(self.channel)
        self.nodes: list[FakeNode] = []
        self.module_digests: dict[str, str] = {}  # "./name.wasm" -> digest, for submit()
        self._closed = False
        self.loops: asyncio.Task[None] | None = None  # engine.run(), unless opened with start=False

    # helpers for test modules, which cannot import this conftest
    eventually = staticmethod(eventually)
    attempt_ref = staticmethod(attempt_ref)
    step_of = staticmethod(step_of)

    def node(self, name: str, **kwargs: Any) -> FakeNode:
        node = FakeNode(self, name, **kwargs)
        self.nodes.append(node)
        return node

    async def push(self, path: Path, *, expected_digest: str = "") -> types_pb2.Module:
        """Push a module file; later submits map "./<file name>" to its digest."""
        data = path.read_bytes()

        async def requests() -> AsyncIterator[controlplane_pb2.PushModuleRequest]:
            yield controlplane_pb2.PushModuleRequest(name=path.name, expected_digest=expected_digest)
            for i in range(0, len(data), 64 * 1024):
                yield controlplane_pb2.PushModuleRequest(chunk=data[i : i + 64 * 1024])

        module = await self.admin.PushModule(requests(), timeout=WAIT_S)
        self.module_digests[f"./{path.name}"] = module.digest
        return module

    async def submit(self, workflow_yaml: str, *, input: Any = None, source: str = "test.yaml") -> str:
        response = await self.admin.SubmitWorkflow(
            controlplane_pb2.SubmitWorkflowRequest(
                workflow_yaml=workflow_yaml,
                source=source,
                input_json="" if input is None else json.dumps(input),
                module_digests=self.module_digests,
            ),
            timeout=WAIT_S,
        )
        return response.run_id

    async def get_run(self, run_id: str) -> types_pb2.Run:
        return await self.admin.GetRun(controlplane_pb2.GetRunRequest(run_id=run_id), timeout=WAIT_S)

    async def wait_run(
        self, run_id: str, status: types_pb2.RunStatus.ValueType, *, within: float = WAIT_S
    ) -> types_pb2.Run:
        async def check() -> types_pb2.Run | None:
            run = await self.get_run(run_id)
            if run.status in TERMINAL_RUN and run.status != status:
                raise AssertionError(f"run {run_id} ended {types_pb2.RunStatus.Name(run.status)}: {run}")
            return run if run.status == status else None

        return await eventually(check, within=within, what=f"run {run_id} {types_pb2.RunStatus.Name(status)}")

    async def step(self, run_id: str, name: str) -> types_pb2.Step:
        return step_of(await self.get_run(run_id), name)

    async def wait_step(
        self, run_id: str, step: str, status: types_pb2.StepStatus.ValueType, *, within: float = WAIT_S
    ) -> types_pb2.Step:
        async def check() -> types_pb2.Step | None:
            s = step_of(await self.get_run(run_id), step)
            return s if s.status == status else None

        return await eventually(check, within=within, what=f"step {step} {types_pb2.StepStatus.Name(status)}")

    async def list_nodes(self) -> dict[str, types_pb2.Node]:
        response = await self.admin.ListNodes(controlplane_pb2.ListNodesRequest(), timeout=WAIT_S)
        return {n.name: n for n in response.nodes}

    async def close(self) -> None:
        """Stop the server and the engine as the daemon does, then the fake nodes; idempotent."""
        if self._closed:
            return
        self._closed = True
        async with asyncio.timeout(WAIT_S):
            await self.server.stop(0.1)
            await self.engine.shutdown()
            if self.loops is not None:
                await self.loops  # re-raises what stopped them
        for node in self.nodes:
            await node.drop()
        await self.channel.close()


OpenControlPlane = Callable[..., Awaitable[ControlPlane]]


@pytest.fixture
async def control_plane(tmp_path: Path) -> AsyncIterator[OpenControlPlane]:
    """open(data_dir=None, *, start=True, heartbeat_interval=1.0, node_ttl=60.0, clock=None, ...) -> ControlPlane.

    With a `ManualClock`, the engine's loops (scheduler backoffs, the TTL reaper, drain
    deadlines) move only when the test advances it.

    `start=False` leaves the scheduler and reaper loops off: the test drives
    `engine.schedule_once()`, `engine.liveness.reap()` and `engine.drains.enforce()` itself.
    """
    opened: list[ControlPlane] = []

    async def open_cp(
        data_dir: Path | None = None,
        *,
        start: bool = True,
        heartbeat_interval: float = 1.0,
        node_ttl: float = 60.0,
        max_module_bytes: int = MODULE_BYTES,
        clock: Clock | None = None,
    ) -> ControlPlane:
        data_dir = data_dir or tmp_path / "cp"
        engine = await Engine.open(
            data_dir,
            heartbeat_interval=timedelta(seconds=heartbeat_interval),
            node_ttl=timedelta(seconds=node_ttl),
            max_module_bytes=max_module_bytes,
            clock=clock,
        )
        server, port, _ = await build_server(engine, "127.0.0.1:0")
        await server.start()
        cp = ControlPlane(engine, server, port, data_dir)
        if start:
            cp.loops = asyncio.create_task(engine.run(), name="engine")
        opened.append(cp)
        return cp

    yield open_cp
    for cp in reversed(opened):
        await cp.close()


@pytest.fixture
async def cp(control_plane: OpenControlPlane) -> ControlPlane:
    """A control plane with its loops running (node TTL long enough never to expire)."""
    return await control_plane()


@pytest.fixture(scope="session")
def echo_wasm(built_agents: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid WebAssembly module; the control plane only stores and hands out its digest.

    A private copy, so that a rebuild of the agents while the tests run cannot pull it away.
    """
    copy = tmp_path_factory.mktemp("modules") / "echo.wasm"
    copy.write_bytes((built_agents / "tests" / "agents" / "echo.wasm").read_bytes())
    return copy


@pytest.fixture
async def bare_engine(tmp_path: Path) -> AsyncIterator[Engine]:
    """An engine over a fresh store with a manual clock, and none of its loops running."""
    engine = await Engine.open(
        tmp_path / "cp",
        heartbeat_interval=timedelta(seconds=1),
        node_ttl=timedelta(seconds=5),
        max_module_bytes=1 << 20,
        clock=ManualClock(),
    )
    try:
        yield engine
    finally:
        await engine.shutdown()
