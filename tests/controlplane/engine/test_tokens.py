"""Tokens in the engine, on a manual clock: expiry, revocation, single use, the bootstrap token."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest

from agentflow.clock import ManualClock
from agentflow.vocabulary import Role
from controlplane.engine.access import Tokens
from controlplane.engine.bus import EventBus
from controlplane.engine.core import Core
from controlplane.errors import InvalidArgument, PermissionDenied, Unauthenticated
from controlplane.store import StateStore

pytestmark = pytest.mark.component


@pytest.fixture
async def core(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = await StateStore.open(tmp_path / "state.db")
    try:
        yield Core(store=store, bus=EventBus(), clock=ManualClock())
    finally:
        await store.close()


async def test_a_token_expires_on_the_clock(core: Core) -> None:
    tokens = Tokens(core)
    record, token = await tokens.create(Role.OPERATOR, ttl=timedelta(hours=1))
    assert tokens.authenticate(token, what="GetRun") == record
    assert isinstance(core.clock, ManualClock)
    core.clock.tick(timedelta(minutes=59, seconds=59))
    tokens.authenticate(token, what="GetRun")
    core.clock.tick(timedelta(seconds=1))
    with pytest.raises(Unauthenticated, match=rf"GetRun: token {record.id} expired at "):
        tokens.authenticate(token, what="GetRun")


async def test_revocation_and_single_use_survive_a_restart(core: Core) -> None:
    tokens = Tokens(core)
    viewer, viewer_token = await tokens.create(Role.VIEWER, ttl=None)
    _, join_token = await tokens.create(Role.NODE, ttl=None, single_use=True)
    await tokens.revoke(viewer.id)
    async with core.tx() as tx:
        tokens.consume_join(tx, join_token, node="n1", now=core.clock.now())
    again = Tokens(core)
    await again.load()  # what a restarted control plane reads
    with pytest.raises(Unauthenticated, match="was revoked"):
        again.authenticate(viewer_token, what="ListRuns")
    async with core.tx() as tx:
        with pytest.raises(Unauthenticated, match="was for one use and has been used"):
            again.consume_join(tx, join_token, node="n2", now=core.clock.now())


async def test_only_join_tokens_register_nodes(core: Core) -> None:
    tokens = Tokens(core)
    _, admin = await tokens.create(Role.ADMIN, ttl=None)
    async with core.tx() as tx:
        with pytest.raises(PermissionDenied, match="is a admin token, not a join token"):
            tokens.consume_join(tx, admin, node="n1", now=core.clock.now())
        with pytest.raises(Unauthenticated, match='node "n1" is new here and needs a join token'):
            tokens.consume_join(tx, "", node="n1", now=core.clock.now())
    with pytest.raises(InvalidArgument, match="only join tokens"):
        await tokens.create(Role.VIEWER, ttl=None, single_use=True)
    with pytest.raises(InvalidArgument, match="ttl: must be positive"):
        await tokens.create(Role.VIEWER, ttl=timedelta(0))


async def test_the_bootstrap_admin_token_is_made_once_and_kept_private(core: Core, tmp_path: Path) -> None:
    tokens = Tokens(core)
    path = await tokens.bootstrap(tmp_path)
    assert path == tmp_path / "admin.token" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert tokens.authenticate(path.read_text().strip(), what="x").role is Role.ADMIN
    assert await tokens.bootstrap(tmp_path) is None  # an admin token exists
    assert [t.role for t in tokens.list()] == [Role.ADMIN]
    stored = (tmp_path / "state.db").read_bytes()
    assert path.read_text().strip().encode() not in stored


def test_roles_cover_what_they_should() -> None:
    assert Role.ADMIN.covers(Role.OPERATOR) and Role.OPERATOR.covers(Role.VIEWER)
    assert not Role.VIEWER.covers(Role.OPERATOR) and not Role.ADMIN.covers(Role.NODE)
    assert not Role.NODE.covers(Role.VIEWER) and Role.NODE.covers(Role.NODE)
