"""The compiled-module cache with real wasmtime compilation."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import wasmtime

from noded.sandbox.engine import create_engine
from noded.sandbox.module_cache import CompiledModuleCache

pytestmark = pytest.mark.component


@pytest.fixture
def echo(built_agents: Path) -> tuple[Path, str]:
    path = built_agents / "tests/agents/echo.wasm"
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_second_load_uses_the_serialized_file(tmp_path: Path, echo: tuple[Path, str]) -> None:
    path, digest = echo
    engine = create_engine()
    first = CompiledModuleCache(tmp_path)
    module = first.load(engine, path, digest)
    assert isinstance(module, wasmtime.Module)
    compiled = first.path_for(digest)
    assert compiled.is_file() and compiled.stat().st_size > 0
    assert (first.stats.compiled, first.stats.disk_hits) == (1, 0)
    assert first.load(engine, path, digest) is module
    assert first.stats.memory_hits == 1

    second = CompiledModuleCache(tmp_path)  # a fresh process would look like this
    loaded = second.load(engine, "/nonexistent/source.wasm", digest)  # the source is not needed
    assert [e.name for e in loaded.exports] == [e.name for e in module.exports]
    assert (second.stats.compiled, second.stats.disk_hits) == (0, 1)
    assert [p.name for p in tmp_path.iterdir()] == [compiled.name]  # no temp files left


@pytest.mark.parametrize("damage", [b"garbage", b""], ids=["garbage", "empty"])
def test_corrupt_file_is_deleted_and_recompiled(tmp_path: Path, echo: tuple[Path, str], damage: bytes) -> None:
    path, digest = echo
    engine = create_engine()
    CompiledModuleCache(tmp_path).load(engine, path, digest)
    compiled = CompiledModuleCache(tmp_path).path_for(digest)
    good = compiled.read_bytes()
    compiled.write_bytes(damage)

    cache = CompiledModuleCache(tmp_path)
    module = cache.load(engine, path, digest)
    assert "_start" in [e.name for e in module.exports]
    assert (cache.stats.corrupt_recovered, cache.stats.compiled) == (1, 1)
    assert compiled.read_bytes() == good


def test_truncated_file_is_recompiled(tmp_path: Path, echo: tuple[Path, str]) -> None:
    path, digest = echo
    engine = create_engine()
    CompiledModuleCache(tmp_path).load(engine, path, digest)
    compiled = CompiledModuleCache(tmp_path).path_for(digest)
    with open(compiled, "r+b") as f:
        f.truncate(compiled.stat().st_size // 2)
    cache = CompiledModuleCache(tmp_path)
    cache.load(engine, path, digest)
    assert cache.stats.compiled == 1


def test_fingerprint_keys_the_file(tmp_path: Path, echo: tuple[Path, str]) -> None:
    _, digest = echo
    a = CompiledModuleCache(tmp_path, fingerprint="engine-a").path_for(digest)
    b = CompiledModuleCache(tmp_path, fingerprint="engine-b").path_for(digest)
    assert a != b
    assert a.name.startswith(digest)
    assert CompiledModuleCache(tmp_path).path_for(f"sha256:{digest}") == CompiledModuleCache(tmp_path).path_for(digest)


@pytest.mark.parametrize("digest", ["../../etc/passwd", "abc", "zz" * 32, ""], ids=repr)
def test_invalid_digest_is_rejected(tmp_path: Path, digest: str) -> None:
    with pytest.raises(ValueError, match="invalid module digest"):
        CompiledModuleCache(tmp_path).path_for(digest)


def test_uncompilable_module_raises_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"\0asm\x01\0\0\0\xff")
    cache = CompiledModuleCache(tmp_path / "cache")
    with pytest.raises(wasmtime.WasmtimeError):
        cache.load(create_engine(), bad, hashlib.sha256(bad.read_bytes()).hexdigest())
    assert os.listdir(tmp_path / "cache") == []
