"""Alembic environment: async engines, both dialects, URL from the caller or authserver settings.

`authserver db upgrade` passes its URL through `config.attributes["database_url"]`; plain
`alembic -c migrations/alembic.ini upgrade head` reads the authserver settings instead.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from authserver.store.tables import metadata

# PostgreSQL: concurrent `db upgrade` runs (several hosts deploying at once) take turns.
MIGRATION_LOCK_ID = 7_331_001


def _database_url() -> str:
    url = context.config.attributes.get("database_url")
    if url:
        return str(url)
    from authserver.settings import load_settings

    return load_settings().database_url


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})"))
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_database_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_database_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
