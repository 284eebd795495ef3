"""SSO tokens: random bearer secrets; only their SHA-256 is stored (sso_tokens).

A token expires after api.token_lifetime_s, is revoked by logout, and
disappears with its user (ON DELETE CASCADE).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass

import asyncpg

__all__ = ["TokenStore", "IssuedToken", "token_hash"]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: dt.datetime
    scope: str


class TokenStore:
    def __init__(self, pool: asyncpg.Pool, lifetime_s: float) -> None:
        self.pool = pool
        self.lifetime_s = lifetime_s

    async def issue(self, user_id: str, scope: str) -> IssuedToken:
        token = secrets.token_urlsafe(32)
        expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=self.lifetime_s)
        await self.pool.execute(
            "INSERT INTO sso_tokens (token_hash, user_id, scope, expires_at) "
            "VALUES ($1, $2, $3, $4)", token_hash(token), uuid.UUID(user_id), scope, expires)
        # Expired and revoked tokens are useless: drop them as new ones come.
        await self.pool.execute("DELETE FROM sso_tokens WHERE expires_at < now() - "
                                "interval '1 day'")
        return IssuedToken(token, expires, scope)

    async def resolve(self, token: str) -> str | None:
        """The user id of a valid token, or None."""
        uid = await self.pool.fetchval("""
            SELECT t.user_id FROM sso_tokens t JOIN users u ON u.id = t.user_id
            WHERE t.token_hash = $1 AND NOT t.revoked AND t.expires_at > now() AND u.active""",
            token_hash(token))
        return str(uid) if uid is not None else None

    async def is_valid_hash(self, hashed: str) -> bool:
        return bool(await self.pool.fetchval(
            "SELECT 1 FROM sso_tokens WHERE token_hash = $1 AND NOT revoked AND "
            "expires_at > now()", hashed))

    async def revoke(self, token: str) -> bool:
        status = await self.pool.execute(
            "UPDATE sso_tokens SET revoked = true WHERE token_hash = $1 AND NOT revoked",
            token_hash(token))
        return status.endswith(" 1")

    async def revoke_user(self, user_id: str) -> None:
        await self.pool.execute("UPDATE sso_tokens SET revoked = true WHERE user_id = $1",
                                uuid.UUID(user_id))
