"""The engine's asyncpg pool: JSON codecs, statement timeouts, migrations."""

from __future__ import annotations

import asyncpg
import orjson

from .migrate import migrate

__all__ = ["create_pool", "Pool"]

Pool = asyncpg.Pool


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(typ, schema="pg_catalog",
                                  encoder=lambda v: orjson.dumps(v).decode(),
                                  decoder=orjson.loads, format="text")


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 20,
                      statement_timeout_s: float = 60.0) -> asyncpg.Pool:
    """Connect, apply migrations, and return the pool."""
    conn = await asyncpg.connect(dsn, timeout=30)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection,
        command_timeout=statement_timeout_s, timeout=30,
        server_settings={"statement_timeout": str(int(statement_timeout_s * 1000)),
                         "application_name": "ovengine"})
    assert pool is not None
    return pool
