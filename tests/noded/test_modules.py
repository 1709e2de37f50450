"""`noded.modules.ModuleStore`: download by digest, verify, cache, deduplicate concurrent fetches."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from waiting import eventually

from noded.errors import ModuleFetchError
from noded.modules import ModuleStore

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]

MODULE = b"\x00asm\x01\x00\x00\x00" + bytes(range(256)) * 40
DIGEST = "sha256:" + hashlib.sha256(MODULE).hexdigest()
OTHER = b"\x00asm\x01\x00\x00\x00other"
OTHER_DIGEST = "sha256:" + hashlib.sha256(OTHER).hexdigest()


class FakeFetch:
    """Serves modules in chunks; counts calls; can block, fail midway or serve wrong bytes."""

    def __init__(self, modules: dict[str, bytes], *, chunk: int = 1000) -> None:
        self.modules = modules
        self.chunk = chunk
        self.calls: list[str] = []
        self.gate: asyncio.Event | None = None  # when set, the first chunk waits for it
        self.fail_after: int | None = None  # raise after this many chunks
        self.started = asyncio.Event()

    async def __call__(self, digest: str) -> AsyncIterator[bytes]:
        self.calls.append(digest)
        self.started.set()
        data = self.modules[digest]
        for n, start in enumerate(range(0, len(data), self.chunk)):
            if self.fail_after is not None and n == self.fail_after:
                raise ConnectionError("stream reset by peer")
            if n == 0 and self.gate is not None:
                await self.gate.wait()
            yield data[start : start + self.chunk]
            await asyncio.sleep(0)


def listing(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


@pytest.fixture
def fetch() -> FakeFetch:
    return FakeFetch({DIGEST: MODULE, OTHER_DIGEST: OTHER})


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "modules"


async def test_ensure_downloads_verifies_and_stores(root: Path, fetch: FakeFetch) -> None:
    store = ModuleStore(root, fetch)
    path = await store.ensure(DIGEST)
    assert path == root / f"{DIGEST.removeprefix('sha256:')}.wasm"
    assert path.read_bytes() == MODULE
    assert listing(root) == [path.name]
    assert fetch.calls == [DIGEST]
    assert (store.hits, store.misses) == (0, 1)


async def test_second_ensure_is_a_cache_hit(root: Path, fetch: FakeFetch) -> None:
    store = ModuleStore(root, fetch)
    first = await store.ensure(DIGEST)
    second = await store.ensure(DIGEST)
    assert first == second
    assert fetch.calls == [DIGEST]
    assert (store.hits, store.misses) == (1, 1)


async def test_a_new_store_on_the_same_root_reuses_the_file(root: Path, fetch: FakeFetch) -> None:
    await ModuleStore(root, fetch).ensure(DIGEST)
    again = ModuleStore(root, fetch)
    assert (await again.ensure(DIGEST)).read_bytes() == MODULE
    assert fetch.calls == [DIGEST]
    assert again.hits == 1


async def test_different_digests_are_fetched_separately(root: Path, fetch: FakeFetch) -> None:
    store = ModuleStore(root, fetch)
    paths = await asyncio.gather(store.ensure(DIGEST), store.ensure(OTHER_DIGEST))
    assert [p.read_bytes() for p in paths] == [MODULE, OTHER]
    assert sorted(fetch.calls) == sorted([DIGEST, OTHER_DIGEST])


async def test_concurrent_ensure_of_one_digest_fetches_once(root: Path, fetch: FakeFetch) -> None:
    fetch.gate = asyncio.Event()
    store = ModuleStore(root, fetch)
    tasks = [asyncio.create_task(store.ensure(DIGEST)) for _ in range(5)]
    await fetch.started.wait()
    await eventually(lambda: store.joined == 4, what="every other task waiting for the download")
    fetch.gate.set()
    paths = await asyncio.gather(*tasks)
    assert len(set(paths)) == 1 and paths[0].read_bytes() == MODULE
    assert fetch.calls == [DIGEST]
    assert store.misses == 1


async def test_wrong_bytes_fail_and_leave_nothing(root: Path) -> None:
    fetch = FakeFetch({DIGEST: MODULE[:-1] + b"!"})
    store = ModuleStore(root, fetch)
    with pytest.raises(ModuleFetchError) as info:
        await store.ensure(DIGEST)
    assert DIGEST in str(info.value)
    assert "sha256:" + hashlib.sha256(MODULE[:-1] + b"!").hexdigest() in str(info.value)
    assert listing(root) == []


async def test_concurrent_waiters_see_the_verification_failure(root: Path) -> None:
    fetch = FakeFetch({DIGEST: b"not the module"})
    fetch.gate = asyncio.Event()
    store = ModuleStore(root, fetch)
    tasks = [asyncio.create_task(store.ensure(DIGEST)) for _ in range(3)]
    await fetch.started.wait()
    await eventually(lambda: store.joined == 2, what="both other tasks waiting for the download")
    fetch.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, ModuleFetchError) for r in results), results
    assert fetch.calls == [DIGEST]
    assert listing(root) == []


MALFORMED = {
    "no-prefix": DIGEST.removeprefix("sha256:"),
    "other-algorithm": "sha512:" + DIGEST.removeprefix("sha256:"),
    "too-short": DIGEST[:-1],
    "too-long": DIGEST + "0",
    "upper-case": "sha256:" + DIGEST.removeprefix("sha256:").upper(),
    "not-hex": "sha256:" + "g" * 64,
    "path-traversal": "sha256:../../" + "0" * 58,
    "empty": "",
}


@pytest.mark.parametrize("digest", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_digest_is_refused_without_fetching(root: Path, fetch: FakeFetch, digest: str) -> None:
    store = ModuleStore(root, fetch)
    with pytest.raises(ModuleFetchError, match="is not a sha256 digest"):
        await store.ensure(digest)
    assert fetch.calls == []
    assert listing(root) == []


async def test_fetch_failing_midway_leaves_nothing_and_a_later_ensure_retries(root: Path, fetch: FakeFetch) -> None:
    fetch.fail_after = 3
    store = ModuleStore(root, fetch)
    with pytest.raises(ConnectionError, match="stream reset"):
        await store.ensure(DIGEST)
    assert listing(root) == []

    fetch.fail_after = None
    path = await store.ensure(DIGEST)
    assert path.read_bytes() == MODULE
    assert fetch.calls == [DIGEST, DIGEST]
    assert listing(root) == [path.name]


async def test_fetch_failing_before_any_bytes_leaves_nothing(root: Path, fetch: FakeFetch) -> None:
    fetch.fail_after = 0
    store = ModuleStore(root, fetch)
    with pytest.raises(ConnectionError):
        await store.ensure(DIGEST)
    assert listing(root) == []


async def test_cancelled_download_leaves_nothing_and_can_be_retried(root: Path, fetch: FakeFetch) -> None:
    fetch.gate = asyncio.Event()
    store = ModuleStore(root, fetch)
    task = asyncio.create_task(store.ensure(DIGEST))
    await fetch.started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert listing(root) == []

    fetch.gate.set()
    assert (await store.ensure(DIGEST)).read_bytes() == MODULE


async def test_waiter_survives_the_cancellation_of_the_downloading_task(root: Path, fetch: FakeFetch) -> None:
    fetch.gate = asyncio.Event()
    store = ModuleStore(root, fetch)
    downloader = asyncio.create_task(store.ensure(DIGEST))
    await fetch.started.wait()
    waiter = asyncio.create_task(store.ensure(DIGEST))
    await eventually(lambda: store.joined == 1, what="the waiter joining the download")
    downloader.cancel()
    fetch.gate.set()
    path = await waiter  # fetches it itself instead of inheriting the other task's cancellation
    assert downloader.cancelled()
    assert path.read_bytes() == MODULE
    assert fetch.calls == [DIGEST, DIGEST]


async def test_cancelling_a_waiter_does_not_stop_the_download(root: Path, fetch: FakeFetch) -> None:
    fetch.gate = asyncio.Event()
    store = ModuleStore(root, fetch)
    downloader = asyncio.create_task(store.ensure(DIGEST))
    await fetch.started.wait()
    waiter = asyncio.create_task(store.ensure(DIGEST))
    await eventually(lambda: store.joined == 1, what="the waiter joining the download")
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    fetch.gate.set()
    assert (await downloader).read_bytes() == MODULE
    assert fetch.calls == [DIGEST]
