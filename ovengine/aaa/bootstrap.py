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

__all__ = ["ADMIN_USER_ID", "ensure_admin"]

# admin@internal has this id in every oVirt installation.
ADMIN_USER_ID = "fdfc627c-d875-11e0-90f0-83df133b58cc"


async def ensure_admin(pool: asyncpg.Pool, state_dir: Path, configured: str) -> str | None:
    """Create admin@internal if missing; returns the password when it is known
    to this process (configured, or generated now or earlier)."""
    secret_file = state_dir / "admin-password"
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
