"""First-start identity: admin@internal and its password.

The password comes from the configuration (auth.admin_password) or, when that
is empty, is generated once and kept in state_dir/admin-password (0600) so
that an administrator can read it after install. Only its scrypt hash goes
into the database.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg

from protocol.pki import write_private

from .passwords import generate_password, hash_password

from .permits import SUPER_USER_ROLE_ID, SYSTEM_OBJECT_ID

__all__ = ["ADMIN_USER_ID", "ensure_admin"]

# admin@internal has this id in every oVirt installation.
ADMIN_USER_ID = "fdfc627c-d875-11e0-90f0-83df133b58cc"


async def ensure_admin(pool: asyncpg.Pool, state_dir: Path, configured: str) -> str | None:
    """Create admin@internal if missing; returns the password when it is known
    to this process (configured, or generated now or earlier)."""
    secret_file = state_dir / "admin-password"
    try:
        return await _ensure_admin_user(pool, secret_file, configured)
    finally:
        await _grant_super_user(pool)


async def _grant_super_user(pool: asyncpg.Pool) -> None:
    """admin@internal holds SuperUser on the system object, as in oVirt."""
    await pool.execute("""
        INSERT INTO permissions (id, role_id, user_id, object_type, object_id)
        SELECT $1, $2, $3, 'system', $4
        WHERE EXISTS (SELECT 1 FROM users WHERE id = $3)
          AND NOT EXISTS (SELECT 1 FROM permissions WHERE user_id = $3 AND role_id = $2
                          AND object_type = 'system')""",
        uuid.uuid4(), uuid.UUID(SUPER_USER_ROLE_ID), uuid.UUID(ADMIN_USER_ID),
        uuid.UUID(SYSTEM_OBJECT_ID))


async def _ensure_admin_user(pool: asyncpg.Pool, secret_file: Path,
                             configured: str) -> str | None:
    row = await pool.fetchrow("SELECT password_hash FROM users WHERE id=$1",
                              uuid.UUID(ADMIN_USER_ID))
    if row is not None and row["password_hash"]:
        if configured:
            return configured
        return secret_file.read_text().strip() if secret_file.exists() else None
    password = configured or generate_password()
    hashed = await asyncio.to_thread(hash_password, password)
    await pool.execute("""
        INSERT INTO users (id, domain, principal, first_name, password_hash)
        VALUES ($1, 'internal', 'admin', 'admin', $2)
        ON CONFLICT (id) DO UPDATE SET password_hash = EXCLUDED.password_hash""",
        uuid.UUID(ADMIN_USER_ID), hashed)
    if not configured:
        await asyncio.to_thread(write_private, secret_file, (password + "\n").encode())
    return password
