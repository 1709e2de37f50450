"""Binding the host calls to wasm: ``agentflow.host_call`` and ``agentflow.host_result`` on a
``wasmtime.Linker``, reading and writing the guest's memory (worker side only).

`ModuleLinker` is one linker per engine, with WASI and the host calls defined once, and one
`InstancePre` per module (its imports resolved once): a step then only instantiates. Making a
linker, defining WASI and the host calls and resolving the imports for every step cost more
than running a small agent (about 0.9 of 2 ms a step, echo agent, wasmtime 50). The host calls
reach the step of the calling thread: `bound` sets it around the guest's run.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import wasmtime

from noded.sandbox.hostcalls import (
    IMPORT_MODULE,
    MAX_MESSAGE_BYTES,
    MAX_OP_NAME_BYTES,
    HostCallError,
    HostCallLimitReached,
    HostCalls,
)

_U32 = 0xFFFFFFFF
WASM_PAGE_BYTES = 65536


def _guest_memory(caller: wasmtime.Caller) -> wasmtime.Memory | None:
    memory = caller.get("memory")
    return memory if isinstance(memory, wasmtime.Memory) else None


def _read_guest(caller: wasmtime.Caller, memory: wasmtime.Memory, ptr: int, length: int) -> bytes | None:
    """Bytes [ptr, ptr+length) of guest memory, or None if out of bounds.

    ``Memory.read`` silently shortens out-of-range reads, so bounds are checked here.
    """
    if ptr + length > memory.data_len(caller):
        return None
    return bytes(memory.read(caller, ptr, ptr + length)) if length else b""


class ModuleLinker:
    """WASI and the host calls on one linker of `engine`, and each module's imports resolved once."""

    def __init__(self, engine: wasmtime.Engine) -> None:
        self._steps = threading.local()  # .calls: the host calls of the step this thread runs
        self._linker = wasmtime.Linker(engine)
        self._linker.define_wasi()
        define_imports(self._linker, lambda: getattr(self._steps, "calls", None))
        self._pre: weakref.WeakKeyDictionary[wasmtime.Module, wasmtime.InstancePre] = weakref.WeakKeyDictionary()
        self._initial: weakref.WeakKeyDictionary[wasmtime.Module, int] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    @contextmanager
    def bound(self, calls: HostCalls) -> Iterator[None]:
        """Host calls made on this thread inside the block go to `calls`."""
        self._steps.calls = calls
        try:
            yield
        finally:
            self._steps.calls = None

    def instantiate(self, store: wasmtime.Store, module: wasmtime.Module) -> wasmtime.Instance:
        """`module` instantiated in `store`; wasmtime's errors (an import it lacks) propagate."""
        with self._lock:
            pre = self._pre.get(module)
        if pre is None:
            pre = self._linker.instantiate_pre(module)
            with self._lock:
                self._pre[module] = pre
        return pre.instantiate(store)

    def initial_memory_bytes(self, module: wasmtime.Module) -> int:
        """The largest initial size of the memories `module` defines or imports."""
        with self._lock:
            known = self._initial.get(module)
        if known is None:
            types = [e.type for e in module.exports] + [i.type for i in module.imports]
            pages = [ty.limits.min for ty in types if isinstance(ty, wasmtime.MemoryType)]
            known = max(pages, default=0) * WASM_PAGE_BYTES
            with self._lock:
                self._initial[module] = known
        return known


def define_imports(linker: wasmtime.Linker, calls_of: Callable[[], HostCalls | None]) -> None:
    """Defines ``agentflow.host_call`` and ``agentflow.host_result`` on ``linker``; each call goes
    to the host calls `calls_of` answers then (None: the call fails as INTERNAL)."""
    i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()

    def host_call(caller: wasmtime.Caller, op_ptr: int, op_len: int, req_ptr: int, req_len: int) -> int:
        return int(_host_call(caller, op_ptr, op_len, req_ptr, req_len))

    def host_result(caller: wasmtime.Caller, buf_ptr: int, buf_len: int) -> int:
        return int(_host_result(caller, buf_ptr, buf_len))

    def _host_call(caller: wasmtime.Caller, op_ptr: int, op_len: int, req_ptr: int, req_len: int) -> int:
        calls = calls_of()
        if calls is None:
            return HostCallError.INTERNAL
        try:
            # i32 arguments arrive signed; pointers and lengths are unsigned.
            op_ptr, op_len, req_ptr, req_len = op_ptr & _U32, op_len & _U32, req_ptr & _U32, req_len & _U32
            if req_len > MAX_MESSAGE_BYTES:
                return HostCallError.TOO_LARGE
            memory = _guest_memory(caller)
            if memory is None or op_len > MAX_OP_NAME_BYTES:
                return HostCallError.BAD_REQUEST
            op_raw = _read_guest(caller, memory, op_ptr, op_len)
            request = _read_guest(caller, memory, req_ptr, req_len)
            if op_raw is None or request is None:
                return HostCallError.BAD_REQUEST
            try:
                op = op_raw.decode()
            except UnicodeDecodeError:
                return HostCallError.BAD_REQUEST
            return calls.call(op, request)
        except HostCallLimitReached:
            raise  # through the guest's frames: it ends the step
        except Exception:  # an exception here would surface as an opaque trap
            return HostCallError.INTERNAL

    def _host_result(caller: wasmtime.Caller, buf_ptr: int, buf_len: int) -> int:
        calls = calls_of()
        if calls is None:
            return HostCallError.INTERNAL
        try:
            buf_ptr, buf_len = buf_ptr & _U32, buf_len & _U32
            pending = calls.pending
            if pending is None:
                return HostCallError.NO_PENDING
            memory = _guest_memory(caller)
            count = min(buf_len, len(pending))
            if memory is None or buf_ptr + count > memory.data_len(caller):
                return HostCallError.BAD_REQUEST  # the response stays pending
            data = calls.take_result(count)
            if isinstance(data, HostCallError):
                return data
            if data:
                memory.write(caller, data, buf_ptr)
            return len(data)
        except Exception:
            return HostCallError.INTERNAL

    linker.define_func(
        IMPORT_MODULE, "host_call", wasmtime.FuncType([i32, i32, i32, i32], [i64]), host_call, access_caller=True
    )
    linker.define_func(
        IMPORT_MODULE, "host_result", wasmtime.FuncType([i32, i32], [i32]), host_result, access_caller=True
    )
