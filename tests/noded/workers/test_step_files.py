"""A step's files, through a real (confined) worker: `/scratch`, read-only and read-write grants,
and the ways out of them a hostile agent tries — `..`, symlinks, absolute paths, replacing the
granted directory itself."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from jobs import job_for, step_stdin

from noded.workers import WorkerPool

pytestmark = pytest.mark.component


@pytest.fixture
async def pool(tmp_path: Path) -> AsyncIterator[WorkerPool]:
    async with WorkerPool(tmp_path / "compiled", warm=1, max_workers=1) as pool:
        yield pool


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """A host tree: a read-only grant, a read-write grant, and a secret beside them."""
    ro, rw, scratch = tmp_path / "shared", tmp_path / "out", tmp_path / "scratch"
    for d in (ro, rw, scratch):
        d.mkdir()
    (ro / "data.txt").write_text("shared data")
    secret = tmp_path / "secret.txt"
    secret.write_text("node secret")
    (ro / "escape").symlink_to(secret)  # a symlink inside a grant that points out of it
    (rw / "escape-dir").symlink_to(tmp_path)
    return {"ro": ro, "rw": rw, "scratch": scratch, "secret": secret, "root": tmp_path}


async def files(pool: WorkerPool, built_agents: Path, tree: dict[str, Path], ops: list[dict[str, str]]) -> Any:
    job = job_for(
        built_agents / "tests" / "agents" / "files.wasm",
        step_stdin({"ops": ops}),
        scratch=tree["scratch"],
        allowed_paths=(str(tree["ro"]),),
        writable_paths=(str(tree["rw"]),),
    )
    result = await pool.run(job)
    assert result.ok, (result.error, result.stderr)
    return json.loads(result.output_json or "null")


async def test_grants_read_and_write_as_declared(pool: WorkerPool, built_agents: Path, tree) -> None:
    ro, rw = tree["ro"], tree["rw"]
    out = await files(pool, built_agents, tree, [
        {"op": "read", "path": f"{ro}/data.txt"},
        {"op": "write", "path": f"{rw}/result.txt", "data": "written by the agent"},
        {"op": "mkdir", "path": f"{rw}/sub"},
        {"op": "write", "path": "/scratch/tmp.txt", "data": "scratch"},
        {"op": "list", "path": "/scratch"},
        {"op": "write", "path": f"{ro}/new.txt", "data": "x"},
        {"op": "unlink", "path": f"{ro}/data.txt"},
    ])  # fmt: skip
    assert out[0] == {"ok": True, "data": "shared data"}
    assert out[1]["ok"] and out[2]["ok"] and out[3]["ok"]
    assert out[4] == {"ok": True, "data": "tmp.txt"}
    assert (rw / "result.txt").read_text() == "written by the agent" and (rw / "sub").is_dir()
    assert not out[5]["ok"] and not out[6]["ok"]  # read-only stays read-only
    assert not (ro / "new.txt").exists() and (ro / "data.txt").exists()


async def test_no_way_out_of_a_grant(pool: WorkerPool, built_agents: Path, tree) -> None:
    ro, rw, secret = tree["ro"], tree["rw"], tree["secret"]
    out = await files(pool, built_agents, tree, [
        {"op": "read", "path": f"{ro}/escape"},                 # symlink to the secret
        {"op": "read", "path": f"{rw}/escape-dir/secret.txt"},  # through a symlinked directory
        {"op": "read", "path": f"{ro}/../secret.txt"},          # ..
        {"op": "read", "path": str(secret)},                    # not granted at all
        {"op": "read", "path": "/etc/passwd"},
        {"op": "write", "path": f"{rw}/escape-dir/planted.txt", "data": "x"},
        {"op": "rmdir", "path": str(rw)},                       # the grant itself
        {"op": "rename", "path": str(rw), "to": f"{rw}-moved"},
        {"op": "rename", "path": "/scratch", "to": f"{rw}/scratch"},
    ])  # fmt: skip
    assert [o["ok"] for o in out] == [False] * len(out), out
    assert not (tree["root"] / "planted.txt").exists()
    assert rw.is_dir() and not Path(f"{rw}-moved").exists()
    assert secret.read_text() == "node secret"
