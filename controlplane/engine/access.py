"""Tokens, as the engine keeps them: created, listed, revoked and checked.

Every token is in memory as well as in the store (one control plane owns its database), so
checking a bearer token on each call reads no table; a change is committed first and then
applied to the cache. A single-use join token is consumed inside the registration's own
transaction, so two nodes cannot both register with it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from datetime import datetime, timedelta
from pathlib import Path

from agentflow.vocabulary import Role
from controlplane.engine.core import Core
from controlplane.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from controlplane.store import Tx
from controlplane.tokens import TokenRecord, digest, new_token, token_id_of

log = logging.getLogger(__name__)

MAX_TTL = timedelta(days=3650)
BOOTSTRAP_FILE = "admin.token"


class Tokens:
    def __init__(self, core: Core) -> None:
        self._core = core
        self._by_id: dict[str, TokenRecord] = {}

    async def load(self) -> None:
        self._by_id = {t.id: t for t in self._core.store.read.tokens()}

    def list(self) -> list[TokenRecord]:
        return sorted(self._by_id.values(), key=lambda t: (t.created_at, t.id))

    async def create(
        self, role: Role, *, ttl: timedelta | None, single_use: bool = False, description: str = ""
    ) -> tuple[TokenRecord, str]:
        if ttl is not None and not timedelta(0) < ttl <= MAX_TTL:
            raise InvalidArgument(f"ttl: must be positive and at most {MAX_TTL.days} days")
        if single_use and role is not Role.NODE:
            raise InvalidArgument("single_use: only join tokens (role node) are for one use")
        token_id, token = new_token()
        now = self._core.clock.now()
        record = TokenRecord(
            id=token_id, role=role, digest=digest(token), description=description, created_at=now,
            expires_at=None if ttl is None else now + ttl, single_use=single_use,
        )  # fmt: skip
        async with self._core.tx() as tx:
            tx.insert_token(record)
        self._by_id[token_id] = record
        log.info("token created", extra={"token": token_id, "role": role.value})
        return record, token

    async def revoke(self, token_id: str) -> TokenRecord:
        record = self._by_id.get(token_id)
        if record is None:
            raise NotFound(f"no token {token_id}")
        if record.revoked_at is None:
            now = self._core.clock.now()
            async with self._core.tx() as tx:
                tx.mark_token(token_id, revoked_at=now)
            record = self._by_id[token_id] = dataclasses.replace(record, revoked_at=now)
            log.info("token revoked", extra={"token": token_id})
        return record

    def authenticate(self, token: str, *, what: str) -> TokenRecord:
        """The record of a valid bearer token; Unauthenticated saying why not."""
        token_id = token_id_of(token)
        record = self._by_id.get(token_id) if token_id else None
        if record is None or not record.matches(token):
            raise Unauthenticated(f"{what}: the bearer token is not one of this control plane's")
        if (problem := record.problem(self._core.clock.now())) is not None:
            raise Unauthenticated(f"{what}: {problem}")
        return record

    def consume_join(self, tx: Tx, token: str, *, node: str, now: datetime) -> TokenRecord:
        """Check a join token within the registration's transaction and use it up if single-use."""
        if not token:
            raise Unauthenticated(
                f'node "{node}" is new here and needs a join token (agentflow token create --role node; '
                "noded --join-token-file)"
            )
        record = self.authenticate(token, what=f'join token of node "{node}"')
        if record.role is not Role.NODE:
            raise PermissionDenied(f"token {record.id} is a {record.role.value} token, not a join token")
        if record.single_use:
            tx.mark_token(record.id, used_at=now)
            # Used in memory at once: should the transaction fail, the token is refused until a
            # restart reloads it (closed, not open).
            self._by_id[record.id] = dataclasses.replace(record, used_at=now)
        return record

    async def bootstrap(self, data_dir: Path) -> Path | None:
        """With no usable admin token, make one and write it to `<data_dir>/admin.token` (0600);
        the path, or None when there was one already."""
        now = self._core.clock.now()
        if any(t.role is Role.ADMIN and t.problem(now) is None for t in self._by_id.values()):
            return None
        _, token = await self.create(Role.ADMIN, ttl=None, description="bootstrap admin token")
        path = data_dir / BOOTSTRAP_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, (token + "\n").encode())
        finally:
            os.close(fd)
        return path
