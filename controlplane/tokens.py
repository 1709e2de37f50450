"""Bearer tokens: join tokens that let a new node register, and admin tokens that carry a role.

A token reads `aft_<id>_<secret>`: the id names it (in `token list`, in logs), the secret proves
it. Only the SHA-256 of the whole token is stored; secrets are 192 random bits, so a plain hash
is enough (no password stretching), and comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from agentflow.vocabulary import Role

PREFIX = "aft_"
_FORMAT = re.compile(r"aft_([0-9a-f]{12})_[A-Za-z0-9_-]{32}")


def new_token() -> tuple[str, str]:
    """(id, token) of a fresh token."""
    token_id = secrets.token_hex(6)
    return token_id, f"{PREFIX}{token_id}_{secrets.token_urlsafe(24)}"


def token_id_of(token: str) -> str | None:
    """The id of a well-formed token, or None."""
    match = _FORMAT.fullmatch(token.strip())
    return match.group(1) if match else None


def digest(token: str) -> str:
    return hashlib.sha256(token.strip().encode()).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRecord:
    id: str
    role: Role
    digest: str
    description: str
    created_at: datetime
    expires_at: datetime | None
    single_use: bool
    used_at: datetime | None = None
    revoked_at: datetime | None = None

    def matches(self, token: str) -> bool:
        return hmac.compare_digest(self.digest, digest(token))

    def problem(self, now: datetime) -> str | None:
        """Why this token cannot be used at `now`, or None."""
        if self.revoked_at is not None:
            return f"token {self.id} was revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return f"token {self.id} expired at {self.expires_at.isoformat(timespec='seconds')}"
        if self.single_use and self.used_at is not None:
            return f"token {self.id} was for one use and has been used"
        return None
