"""The schema check every CLI command makes (authserver/store/schema.py): one SELECT of
`alembic_version` against the head read from migrations/versions, without importing Alembic. It
must agree with Alembic on both backends: at head it passes; an empty database, an older
revision and a revision this version does not know are each refused with one line."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text

from authserver.settings import Settings
from authserver.store.db import open_database
from authserver.store.migrate import alembic_config, upgrade
from authserver.store.schema import SchemaOutOfDate, check_at_head, head_revision, known_revisions
from tests.postgres import postgres_server, throwaway_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def blank_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of each backend (no schema at all)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'blank.db'}"
        return
    if postgres_server() == "off":
        pytest.skip("PostgreSQL disabled by AUTHSERVER_TEST_POSTGRES=off")
    async with throwaway_database("authserver_schema") as url:
        yield url


async def checked(url: str) -> str:
    db = open_database(Settings(database_url=url))
    try:
        return await check_at_head(db)
    finally:
        await db.dispose()


def test_the_head_is_read_from_the_revision_files_as_alembic_reads_it() -> None:
    script = ScriptDirectory.from_config(alembic_config(""))
    assert head_revision() == script.get_current_head()
    assert known_revisions() == {revision.revision for revision in script.walk_revisions()}


def test_finding_the_head_does_not_import_alembic() -> None:
    probe = (
        "import sys\n"
        "from authserver.store.schema import head_revision\n"
        "head_revision()\n"
        "assert 'alembic' not in sys.modules, 'alembic imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


async def test_a_database_at_head_passes(database_url: str) -> None:
    assert await checked(database_url) == head_revision()


async def test_an_empty_database_is_refused_as_having_no_schema(blank_url: str) -> None:
    with pytest.raises(SchemaOutOfDate) as raised:
        await checked(blank_url)
    message = str(raised.value)
    assert "\n" not in message
    assert "no schema" in message
    assert "authserver db upgrade" in message


async def test_an_older_revision_is_refused(blank_url: str) -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(blank_url), "0001")
    with pytest.raises(SchemaOutOfDate) as raised:
        await checked(blank_url)
    message = str(raised.value)
    assert "revision 0001" in message
    assert head_revision() in message
    assert "authserver db upgrade" in message


async def test_a_revision_this_version_does_not_know_is_refused(blank_url: str) -> None:
    await asyncio.to_thread(upgrade, blank_url)
    db = open_database(Settings(database_url=blank_url))
    try:
        async with db.transaction() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        await db.dispose()
    with pytest.raises(SchemaOutOfDate) as raised:
        await checked(blank_url)
    message = str(raised.value)
    assert "9999" in message
    assert "newer" in message
