"""The second agent form: a WASI preview 2 component of the `agentflow:agent` world.

The world (`agentflow/wit/agent.wit`) exports `run(input: string) -> result<string, string>`
and imports `agentflow:agent/host.call(op, req) -> result<string, string>`. `input` is the same
JSON document a module reads from stdin; `ok` is the step's output; `err` fails the step with
that message. `host.call` goes through the same `HostCalls` as a module's `host_call`, so
capabilities, rate and call limits are the same; a refused call answers `err` with
`{"code": <ABI v1 code>, "error": "DENIED", "message": "..."}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import wasmtime
from wasmtime import component

from agentflow.wasm_check import HOST_INTERFACE, RUN_EXPORT
from noded.sandbox.hostcalls import HostCallError, HostCalls

# A component holds several core instances and memories (the interpreter, libc, the WASI
# adapter); the step's memory limit still applies to each memory, and its cgroup to them all.
MAX_COMPONENT_INSTANCES = 64
MAX_COMPONENT_MEMORIES = 16


@dataclass(frozen=True, slots=True)
class RunAnswer:
    ok: bool
    text: str  # the output JSON, or the agent's error message


def linker_for(engine: wasmtime.Engine, calls: HostCalls) -> component.Linker:
    """WASI preview 2 and the host interface, answering through `calls`."""
    linker = component.Linker(engine)
    linker.add_wasip2()

    def call(store: wasmtime.Store, op: str, request: str) -> component.Variant:
        n = calls.call(op, request.encode())
        if n < 0:
            code = HostCallError(n)
            refusal = {"code": int(code), "error": code.name, "message": calls.last_refusal or code.name}
            return component.Variant("err", json.dumps(refusal))
        taken = calls.take_result(n)
        assert isinstance(taken, bytes)
        return component.Variant("ok", taken.decode("utf-8", "replace"))

    with linker.root() as root, root.add_instance(HOST_INTERFACE) as host:
        host.add_func("call", call)
    return linker


def instantiate_run(store: wasmtime.Store, compiled: component.Component, linker: component.Linker) -> component.Func:
    """The component's `run`, instantiated in `store`; wasmtime errors propagate."""
    instance = linker.instantiate(store, compiled)
    run = instance.get_func(store, RUN_EXPORT)
    if run is None:
        raise ComponentShapeError(f"the component exports no `{RUN_EXPORT}` function")
    return run


def call_run(store: wasmtime.Store, run: component.Func, document: str) -> RunAnswer:
    """`run(document)`; traps (a timeout among them) and host-call limits propagate."""
    answer = run(store, document)
    if not isinstance(answer, component.Variant) or answer.tag not in ("ok", "err"):
        raise ComponentShapeError(f"`{RUN_EXPORT}` answered {answer!r}, not result<string, string>")
    text = answer.payload if isinstance(answer.payload, str) else ""
    return RunAnswer(ok=answer.tag == "ok", text=text)


class ComponentShapeError(Exception):
    """The component is not of the agent world (its `run` is missing or of another type)."""
