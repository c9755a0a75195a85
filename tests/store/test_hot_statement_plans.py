"""The refresh hot path's statements find their rows through indexes, so a refresh costs the
same with millions of stored tokens as with none (issue 13, item 3; bench's seeded scenario
measures it): EXPLAIN of the statements exactly as the server compiles them, on a table with
enough rows for PostgreSQL to prefer an index when one fits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from authserver.store.clients import VERSIONED_CLIENT_BY_ID
from authserver.store.db import Database
from authserver.store.dialect import Prepared
from authserver.store.rotation import REPLAY_ONE_STATEMENT, ROTATE_CONFIRMING_CLIENT
from tests.store.conftest import Login

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

SEED = """
WITH families AS (
    INSERT INTO refresh_families (id, user_id, client_id, scope, created_at, expires_at)
    SELECT md5('family ' || f)::uuid, :user_id, 'app', 'read', now(), now() + interval '1 day'
    FROM generate_series(1, 2000) AS f
    RETURNING id
)
INSERT INTO refresh_tokens (id, token_hash, family_id, client_id, user_id, scope, issued_at,
                            expires_at, family_expires_at, rotated_at)
SELECT md5('token ' || f.id || t)::uuid, sha256(convert_to(f.id || ' ' || t, 'UTF8')), f.id,
       'app', :user_id, 'read', now(), now() + interval '1 day', now() + interval '1 day',
       CASE WHEN t < 5 THEN now() END
FROM families AS f, generate_series(1, 5) AS t
"""


async def plan(db: Database, prepared: Prepared) -> str:
    now = datetime.now(UTC)
    values = {
        "old_hash": b"\0" * 32,
        "client": "app",
        "client_id": "app",
        "now": now,
        "new_id": uuid.uuid4(),
        "new_hash": b"\1" * 32,
        "new_expires_at": now,
        "client_version": 0,
        "window_start": now,
    }
    sql, args = prepared.postgresql(values)
    assert db.driver_pool is not None  # the connections the server runs them on
    lease = await db.driver_pool.acquire()
    try:  # EXPLAIN without ANALYZE: nothing runs
        rows = await lease.connection.fetch("EXPLAIN " + sql, *args)
    finally:
        db.driver_pool.release(lease)
    return "\n".join(row[0] for row in rows)


@pytest.fixture
async def seeded(db: Database, login: Login) -> Database:
    async with db.transaction() as conn:
        await conn.execute(text(SEED), {"user_id": login.user_id})
    async with db.statement() as conn:
        await conn.execute(text("ANALYZE refresh_families"))
        await conn.execute(text("ANALYZE refresh_tokens"))
    return db


async def test_rotation_finds_the_token_by_its_digest_index(seeded: Database) -> None:
    explained = await plan(seeded, ROTATE_CONFIRMING_CLIENT)
    assert "Index Scan using uq_refresh_tokens_token_hash on refresh_tokens" in explained
    assert "Index Scan using pk_refresh_families" in explained
    assert "Seq Scan on refresh" not in explained, explained


async def test_replay_uses_indexes_only(seeded: Database) -> None:
    explained = await plan(seeded, REPLAY_ONE_STATEMENT)
    assert "Index Scan using uq_refresh_tokens_token_hash on refresh_tokens" in explained
    assert "Seq Scan on refresh" not in explained, explained


async def test_client_lookup_uses_the_primary_key(seeded: Database) -> None:
    explained = await plan(seeded, VERSIONED_CLIENT_BY_ID)
    assert "Index Scan using pk_clients on clients" in explained
