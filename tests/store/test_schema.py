"""The Alembic revisions create exactly the schema `store/tables.py` describes, on both backends."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from authserver.settings import Settings
from authserver.store.db import open_database
from authserver.store.schema import head_revision
from authserver.store.tables import metadata


async def test_migrated_database_matches_the_table_definitions(database_url: str) -> None:
    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    db = open_database(Settings(database_url=database_url))
    try:
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(differences)
            revision = await conn.run_sync(
                lambda c: MigrationContext.configure(c).get_current_revision()
            )
    finally:
        await db.dispose()
    assert diff == []
    assert revision == head_revision()
