"""Small WebAssembly binaries for tests that need a module file but not a real agent."""

from __future__ import annotations

import wasmtime

MINIMAL_AGENT = bytes(wasmtime.wat2wasm('(module (func (export "_start")))'))
"""The smallest module a node would run: a WASI command whose `_start` does nothing."""
