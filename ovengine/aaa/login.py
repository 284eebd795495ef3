"""Password login against the authentication domains: `internal` (users with
a scrypt password hash in the database) and each configured LDAP directory.

`user@domain` picks the domain (no domain: internal). A directory user who
binds successfully is recorded (or refreshed) in `users`, and their directory
groups in `groups` / `user_groups`, so group permissions apply.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Sequence

import asyncpg

from ..config import LdapConfig
from ..errors import Unauthorized, ValidationFailed
from .ldap import DirectoryGroup, DirectoryUser, LdapDirectory
from .passwords import verify_password

__all__ = ["Authenticator", "split_user_name", "INTERNAL_DOMAIN"]

INTERNAL_DOMAIN = "internal"
# oVirt names the internal authz provider this way; accept it as an alias.
_ALIASES = {"internal-authz": INTERNAL_DOMAIN}


def split_user_name(name: str) -> tuple[str, str]:
    user, _, domain = name.rpartition("@")
    if not user:
        return name, INTERNAL_DOMAIN
    return user, _ALIASES.get(domain, domain)


class Authenticator:
    def __init__(self, pool: asyncpg.Pool, ldap: Sequence[LdapConfig]) -> None:
        self.pool = pool
        self.directories = {c.name: LdapDirectory(c) for c in ldap if c.name}

    @property
    def domains(self) -> list[str]:
        return [INTERNAL_DOMAIN, *self.directories]

    def directory(self, domain: str) -> LdapDirectory:
        d = self.directories.get(domain)
        if d is None:
            raise ValidationFailed(f"unknown authentication domain {domain!r} (known: "
                                   f"{', '.join(self.domains)})", "domain")
        return d

    async def login(self, username: str, password: str) -> str:
        """The user id, or Unauthorized (the message never says which part was wrong)."""
        user, domain = split_user_name(username)
        if domain == INTERNAL_DOMAIN:
            row = await self.pool.fetchrow(
                "SELECT id, password_hash, active FROM users WHERE domain = $1 AND principal = $2",
                INTERNAL_DOMAIN, user)
            ok = row is not None and row["active"] and await asyncio.to_thread(
                verify_password, password, row["password_hash"])
            if not ok or row is None:
                raise Unauthorized(f"Cannot authenticate user '{username}': The username or "
                                   f"password is incorrect.")
            user_id = str(row["id"])
        else:
            if domain not in self.directories:
                raise Unauthorized(f"Cannot authenticate user '{username}': No valid profile "
                                   f"found in credentials.")
            try:
                found = await self.directories[domain].authenticate(user, password)
            except Unauthorized:
                raise Unauthorized(f"Cannot authenticate user '{username}': The username or "
                                   f"password is incorrect.") from None
            user_id = await self.record_directory_user(domain, found)
            active = await self.pool.fetchval("SELECT active FROM users WHERE id = $1",
                                              uuid.UUID(user_id))
            if not active:
                raise Unauthorized(f"Cannot authenticate user '{username}': the account is "
                                   f"disabled.")
        await self.pool.execute("UPDATE users SET last_login_at = now() WHERE id = $1",
                                uuid.UUID(user_id))
        return user_id

    async def record_directory_user(self, domain: str, u: DirectoryUser) -> str:
        async with self.pool.acquire() as conn, conn.transaction():
            uid = await conn.fetchval("""
                INSERT INTO users (id, domain, principal, external_id, first_name, last_name,
                                   email, department, namespace)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                ON CONFLICT (domain, principal) DO UPDATE SET external_id = EXCLUDED.external_id,
                    first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
                    email = EXCLUDED.email, department = EXCLUDED.department,
                    namespace = EXCLUDED.namespace
                RETURNING id""", uuid.uuid4(), domain, u.principal, u.external_id, u.first_name,
                u.last_name, u.email, u.department, _namespace(u.dn))
            group_ids = [await self._record_group(conn, domain, g) for g in u.groups]
            await conn.execute("DELETE FROM user_groups WHERE user_id = $1", uid)
            await conn.executemany("INSERT INTO user_groups (user_id, group_id) VALUES ($1, $2)",
                                   [(uid, g) for g in group_ids])
        return str(uid)

    @staticmethod
    async def _record_group(conn: asyncpg.Connection, domain: str, g: DirectoryGroup) -> uuid.UUID:
        gid: uuid.UUID = await conn.fetchval("""
            INSERT INTO groups (id, domain, name, external_id) VALUES ($1, $2, $3, $4)
            ON CONFLICT (domain, name) DO UPDATE SET external_id = EXCLUDED.external_id
            RETURNING id""", uuid.uuid4(), domain, g.name, g.external_id)
        return gid

    async def record_group(self, domain: str, g: DirectoryGroup) -> str:
        async with self.pool.acquire() as conn:
            return str(await self._record_group(conn, domain, g))


def _namespace(dn: str) -> str:
    parts = [p for p in dn.split(",") if p.strip().lower().startswith("dc=")]
    return ",".join(parts)
