"""Whether bytes are a module a node can run, checked before anything is pushed or scheduled.

`agentflow validate`, `agentflow run` and the control plane's `PushModule` all ask
`module_problem`, so a truncated file, a non-WebAssembly file, or a module that imports what
no node provides is refused up front with the reason, instead of failing later as a step.

The checks, in order: wasmtime's validator (the whole binary, every function body); then the
imports, each of which must be a function the host defines — WASI preview 1 (the same linker
the node uses answers) or the AgentFlow ABI (`agentflow.host_call`, `agentflow.host_result`) —
with the ABI's signature; then a `_start` function export (a WASI command). The imports and
exports are read from the binary's sections, without compiling it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import wasmtime

ABI_MODULE = "agentflow"
WASI_MODULE = "wasi_snapshot_preview1"

_I32, _I64 = 0x7F, 0x7E
ABI_FUNCTIONS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "host_call": ((_I32, _I32, _I32, _I32), (_I64,)),
    "host_result": ((_I32, _I32), (_I32,)),
}
"""name -> (parameter types, result types) as WebAssembly value-type bytes."""

_VALTYPE_NAMES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128"}
_KIND_NAMES = {0: "function", 1: "table", 2: "memory", 3: "global", 4: "tag"}
_TYPE_SECTION, _IMPORT_SECTION, _EXPORT_SECTION = 1, 2, 7
_COMPONENT_LAYER = b"\x0d\x00\x01\x00"  # version 0x0d, layer 1: a component, not a core module
_COMPONENT_IMPORT_SECTION, _COMPONENT_EXPORT_SECTION = 10, 11
HOST_INTERFACE = "agentflow:agent/host@1.0.0"  # the WIT world's import (agentflow/wit/agent.wit)
WASI_P2_PREFIX = "wasi:"
RUN_EXPORT = "run"


@dataclass(frozen=True, slots=True)
class Import:
    module: str
    name: str
    kind: int
    type_index: int | None  # for functions


def module_problem(data: bytes) -> str | None:
    """Why `data` is not a runnable agent module, or None when it is one."""
    if data[:4] != b"\0asm":
        return "is not a WebAssembly module (it does not start with \\0asm)"
    if data[4:8] == _COMPONENT_LAYER:
        return component_problem(data)
    import wasmtime  # here, not at the top: the daemons import this module and need no engine until a check

    engine = wasmtime.Engine()
    try:
        wasmtime.Module.validate(engine, data)
    except wasmtime.WasmtimeError as exc:
        return f"is not valid WebAssembly: {str(exc).strip().strip(chr(39))}"
    try:
        types, imports, exports = _sections(data)
    except _Malformed as exc:  # the validator accepted it, so only an unusual encoding gets here
        return f"cannot be read: {exc}"
    problem = _imports_problem(engine, types, imports)
    if problem is not None:
        return problem
    if exports.get("_start") != 0:
        return "has no _start function export (build it as a WASI command, e.g. --target=wasm32-wasi)"
    return None


def is_component(data: bytes) -> bool:
    """Whether `data` (its first 8 bytes suffice) is a WebAssembly component, not a core module."""
    return data[:4] == b"\0asm" and data[4:8] == _COMPONENT_LAYER


def component_problem(data: bytes) -> str | None:
    """Why a component is not a runnable agent (the `agent` world), or None when it is one.

    Read from its top-level import and export sections, without compiling it (a Python
    component takes seconds to compile): it must export `run` and import nothing but the
    AgentFlow host interface and WASI preview 2. The node compiles it, and refuses it with the
    compiler's reason if it is invalid beyond that."""
    try:
        imports, exports = _component_sections(data)
    except _Malformed as exc:
        return f"is not a readable WebAssembly component: {exc}"
    for name in imports:
        if name != HOST_INTERFACE and not name.startswith(WASI_P2_PREFIX):
            return f"imports {name}, but the host provides only {HOST_INTERFACE} and {WASI_P2_PREFIX}* (WASI preview 2)"
    if RUN_EXPORT not in exports:
        found = ", ".join(sorted(exports)) or "nothing"
        return f"exports no `{RUN_EXPORT}` function (it exports {found}): build it for the agentflow:agent world"
    return None


def _component_sections(data: bytes) -> tuple[list[str], set[str]]:
    """The names a component imports and exports at its top level."""
    imports: list[str] = []
    exports: set[str] = set()
    for section_id, r in _section_bodies(data):
        if section_id == _COMPONENT_IMPORT_SECTION:
            for _ in range(r.uleb()):
                imports.append(_extern_name(r))
                _extern_desc(r)
        elif section_id == _COMPONENT_EXPORT_SECTION:
            for _ in range(r.uleb()):
                exports.add(_extern_name(r))
                sort = r.byte()
                if sort == 0x00:  # a core sort is one more byte
                    r.byte()
                r.uleb()  # its index
                if r.byte() == 0x01:  # an ascribed type
                    _extern_desc(r)
    return imports, exports


def _extern_name(r: _Reader) -> str:
    tag = r.byte()
    if tag not in (0x00, 0x01):
        raise _Malformed(f"unknown import/export name form {tag:#x} at offset {r.pos - 1:#x}")
    return r.name()


def _extern_desc(r: _Reader) -> None:
    kind = r.byte()
    if kind == 0x00:  # core module: 0x11 typeidx
        r.byte()
        r.uleb()
    elif kind in (0x01, 0x04, 0x05):  # func, component, instance: a type index
        r.uleb()
    elif kind in (0x02, 0x03):  # value or type bound: a tag, then an index unless (sub resource)
        if r.byte() == 0x00 or kind == 0x02:
            r.uleb()
    else:
        raise _Malformed(f"unknown extern kind {kind:#x} at offset {r.pos - 1:#x}")


def _imports_problem(
    engine: wasmtime.Engine, types: list[tuple[tuple[int, ...], tuple[int, ...]] | None], imports: list[Import]
) -> str | None:
    import wasmtime

    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    for imp in imports:
        what = f"imports {imp.module}.{imp.name}"
        if imp.kind != 0:
            return f"{what} ({_KIND_NAMES.get(imp.kind, 'unknown kind')}), but the host provides only functions"
        if imp.module == ABI_MODULE:
            signature = ABI_FUNCTIONS.get(imp.name)
            if signature is None:
                known = ", ".join(ABI_FUNCTIONS)
                return f"{what}, which the host does not provide (the {ABI_MODULE} module has {known})"
            declared = types[imp.type_index] if imp.type_index is not None and imp.type_index < len(types) else None
            if declared is not None and declared != signature:
                return f"{what} as {_signature(declared)}, but the host defines it as {_signature(signature)}"
        elif imp.module == WASI_MODULE:
            try:
                linker.get(store, imp.module, imp.name)
            except wasmtime.WasmtimeError:
                return f"{what}, which is not a WASI preview 1 function"
        else:
            return f"{what}, but the host provides only {WASI_MODULE} and {ABI_MODULE}"
    return None


def _signature(sig: tuple[tuple[int, ...], tuple[int, ...]]) -> str:
    params = ", ".join(_VALTYPE_NAMES.get(t, hex(t)) for t in sig[0])
    results = ", ".join(_VALTYPE_NAMES.get(t, hex(t)) for t in sig[1])
    return f"({params}) -> ({results})"


class _Malformed(Exception):
    pass


class _Reader:
    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data, self.pos, self.end = data, pos, len(data) if end is None else end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise _Malformed(f"unexpected end at offset {self.pos:#x}")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def uleb(self) -> int:
        result, shift = 0, 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise _Malformed(f"integer too long at offset {self.pos:#x}")

    def name(self) -> str:
        n = self.uleb()
        if self.pos + n > self.end:
            raise _Malformed(f"name runs past its section at offset {self.pos:#x}")
        raw = self.data[self.pos : self.pos + n]
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def limits(self) -> None:
        flags = self.byte()
        self.uleb()
        if flags & 0x01:
            self.uleb()


def _section_bodies(data: bytes) -> Iterator[tuple[int, _Reader]]:
    r = _Reader(data, 8)
    while r.pos < r.end:
        section_id = r.byte()
        size = r.uleb()
        yield section_id, _Reader(data, r.pos, r.pos + size)
        r.pos += size


def _sections(
    data: bytes,
) -> tuple[list[tuple[tuple[int, ...], tuple[int, ...]] | None], list[Import], dict[str, int]]:
    types: list[tuple[tuple[int, ...], tuple[int, ...]] | None] = []
    imports: list[Import] = []
    exports: dict[str, int] = {}
    for section_id, r in _section_bodies(data):
        if section_id == _TYPE_SECTION:
            types = _types(r)
        elif section_id == _IMPORT_SECTION:
            for _ in range(r.uleb()):
                module, name, kind = r.name(), r.name(), r.byte()
                type_index = None
                if kind == 0:
                    type_index = r.uleb()
                elif kind == 1:
                    r.byte()
                    r.limits()
                elif kind == 2:
                    r.limits()
                elif kind == 3:
                    r.byte()
                    r.byte()
                elif kind == 4:
                    r.byte()
                    r.uleb()
                else:
                    raise _Malformed(f"unknown import kind {kind:#x}")
                imports.append(Import(module, name, kind, type_index))
        elif section_id == _EXPORT_SECTION:
            for _ in range(r.uleb()):
                name, kind = r.name(), r.byte()
                r.uleb()
                exports[name] = kind
    return types, imports, exports


def _types(r: _Reader) -> list[tuple[tuple[int, ...], tuple[int, ...]] | None]:
    """The function signatures of a type section; None where the encoding is not a plain
    function type (the GC proposal's recursive groups), so its imports are not signature-checked."""
    out: list[tuple[tuple[int, ...], tuple[int, ...]] | None] = []
    for _ in range(r.uleb()):
        if r.byte() != 0x60:
            return out  # the rest of the section is not read; later indexes go unchecked
        params, results = _valtypes(r), _valtypes(r)
        if params is None or results is None:
            return out
        out.append((params, results))
    return out


def _valtypes(r: _Reader) -> tuple[int, ...] | None:
    """A vector of number or vector types; None at a reference type (whose encoding varies)."""
    out = []
    for _ in range(r.uleb()):
        t = r.byte()
        if t not in _VALTYPE_NAMES:
            return None
        out.append(t)
    return tuple(out)
