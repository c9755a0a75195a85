"""Review finding 8: the embedded SQLite database holds password hashes, token digests and the
encrypted signing keys, so its files are created readable by their owner only (0600), whatever
the umask, by whichever comes first: the migration (`db upgrade`, `serve`, any CLI command) or
the engine."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import text

from authserver.settings import Settings
from authserver.store.db import open_database
from authserver.store.migrate import upgrade


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def modes(path: Path) -> dict[str, int]:
    """The mode of the database file and of its -wal and -shm files (all must exist)."""
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    return {file.name: stat.S_IMODE(file.stat().st_mode) for file in files}


async def write_something(url: str) -> None:
    """A write through the engine: SQLite then has its -wal and -shm files open."""
    db = open_database(Settings(database_url=url))
    try:
        async with db.transaction() as conn:
            await conn.execute(text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
            await conn.execute(text("INSERT INTO probe VALUES (1)"))
        path = Path(url.removeprefix("sqlite+aiosqlite:///"))
        assert set(modes(path).values()) == {0o600}, modes(path)
    finally:
        await db.dispose()


async def test_the_migration_creates_the_database_0600_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "var" / "authserver.db"
    url = f"sqlite+aiosqlite:///{path}"
    with umask(0o022):
        await asyncio.to_thread(upgrade, url)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        await write_something(url)


async def test_the_engine_creates_a_new_database_0600_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere" / "new.db"
    with umask(0o002):
        await write_something(f"sqlite+aiosqlite:///{path}")
