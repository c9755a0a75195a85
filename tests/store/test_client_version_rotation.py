"""The rotation that confirms the client row's version (PostgreSQL, store/rotation.py): it
rotates only while the client's row is as it was read, and otherwise writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from authserver.models import StaleClient
from authserver.store import clients as client_store
from authserver.store import rotation
from authserver.store.db import Database
from authserver.store.tables import clients
from authserver.tokens.opaque import new_refresh_token, token_digest
from tests.store.conftest import Login

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


async def rotate(db: Database, token: str, version: int) -> object:
    return await rotation.rotate(
        db,
        old_hash=token_digest(token),
        new_hash=token_digest(new_refresh_token()),
        client_id="app",
        now=datetime.now(UTC),
        token_ttl=3600,
        client_version=version,
    )


async def version_of(db: Database) -> int:
    found = await client_store.get_versioned_client(db, "app")
    assert found is not None
    return found.version


async def test_rotation_at_the_current_version_rotates(db: Database, login: Login) -> None:
    assert await rotate(db, login.token, await version_of(db)) is not None


async def test_rotation_at_an_old_version_raises_and_uses_nothing_up(
    db: Database, login: Login
) -> None:
    old = await version_of(db)
    async with db.transaction() as conn:  # any UPDATE of the row, even one changing nothing
        await conn.execute(update(clients).where(clients.c.client_id == "app").values(name="app"))
    new = await version_of(db)
    assert new != old
    with pytest.raises(StaleClient):
        await rotate(db, login.token, old)
    assert await rotate(db, login.token, new) is not None


async def test_rotation_for_a_deleted_client_raises(db: Database, login: Login) -> None:
    version = await version_of(db)
    await client_store.delete_client(db, "app")
    with pytest.raises(StaleClient):
        await rotate(db, login.token, version)


async def test_refused_rotation_at_the_current_version_is_a_plain_refusal(
    db: Database, login: Login
) -> None:
    version = await version_of(db)
    assert await rotate(db, login.token, version) is not None
    assert await rotate(db, login.token, version) is None  # used: refused, not stale
