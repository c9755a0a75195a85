"""Bringing a database's schema to the head revision (Alembic, files under `migrations/`).
Checking that it is there is store/schema.py's job, without Alembic."""

from __future__ import annotations

import fcntl
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from authserver.store.db import create_private_file
from authserver.store.schema import migrations_dir, refusal


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str) -> None:
    """Blocking: run from a thread (`asyncio.to_thread`) when an event loop is running.

    On SQLite a file lock next to the database serialises processes migrating at once; on
    PostgreSQL `migrations/env.py` takes an advisory lock.
    """
    config = alembic_config(database_url)
    url = make_url(database_url)
    try:
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            lock_path = Path(f"{url.database}.migrate-lock")
            create_private_file(lock_path)
            with lock_path.open("a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                create_private_file(Path(url.database))  # before Alembic's engine creates it
                command.upgrade(config, "head")
        else:
            command.upgrade(config, "head")
    except sa_exc.DBAPIError as exc:
        refused = refusal(exc)
        if refused is None:
            raise
        raise refused from None
