"""Bringing a database's schema to the head revision (Alembic, files under `migrations/`)."""

from __future__ import annotations

import fcntl
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, make_url

from authserver.store.db import Database, create_private_file


class SchemaOutOfDate(Exception):
    """The database is not at the head revision."""


def migrations_dir() -> Path:
    """Inside an installed wheel the revisions ship as `authserver/migrations`; in a checkout
    (editable install) they are the top-level `migrations/` folder."""
    package = Path(__file__).parent.parent  # authserver/
    packaged = package / "migrations"
    return packaged if packaged.is_dir() else package.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["database_url"] = database_url
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


def upgrade(database_url: str) -> None:
    """Blocking: run from a thread (`asyncio.to_thread`) when an event loop is running.

    On SQLite a file lock next to the database serialises processes migrating at once; on
    PostgreSQL `migrations/env.py` takes an advisory lock.
    """
    config = alembic_config(database_url)
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        lock_path = Path(f"{url.database}.migrate-lock")
        create_private_file(lock_path)
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            create_private_file(Path(url.database))  # before Alembic's engine creates it
            command.upgrade(config, "head")
    else:
        command.upgrade(config, "head")


async def check_at_head(db: Database) -> None:
    """Refuse to serve a PostgreSQL database that `db upgrade` has not brought up to date."""

    def current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with db.engine.connect() as conn:
        revision = await conn.run_sync(current)
    head = head_revision()
    if revision != head:
        raise SchemaOutOfDate(
            f"database schema is at revision {revision or 'none'}, not {head}: "
            "run `authserver db upgrade`"
        )
