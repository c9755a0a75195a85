"""A stored data set of realistic size for the "seeded" scenario: refresh tokens and their
families (logins), written by ONE SQL statement (generate_series, INSERT … SELECT), and the plan
PostgreSQL then chooses for the refresh hot path's statements.

Each family is a login of one of the benchmark's users at its client, rotated `tokens / families`
- 1 times: every token but the last is used (rotated_at set), the last is live. So the table
holds what a server with that many logins behind it holds, and the rotations measured afterwards
must find their token among them by its digest (the unique index on token_hash).
"""

from __future__ import annotations

import asyncio
import datetime
import time
import uuid
from typing import Any

import asyncpg
from console import log

from authserver.store.clients import VERSIONED_CLIENT_BY_ID
from authserver.store.rotation import ROTATE_CONFIRMING_CLIENT

SEED = """
WITH bench_users AS (SELECT array_agg(id ORDER BY username) AS ids FROM users),
families AS (
    INSERT INTO refresh_families (id, user_id, client_id, scope, created_at, expires_at)
    SELECT md5('family ' || f)::uuid, u.ids[1 + f % cardinality(u.ids)], $1, 'read write',
           now() - interval '1 day', now() + interval '29 days'
    FROM bench_users AS u, generate_series(0, $2 - 1) AS f
    RETURNING id, user_id
)
INSERT INTO refresh_tokens (id, token_hash, family_id, parent_id, client_id, user_id, scope,
                            issued_at, expires_at, family_expires_at, rotated_at)
SELECT md5('token ' || f.id || ' ' || t)::uuid,
       sha256(convert_to(f.id || ' ' || t, 'UTF8')),
       f.id, NULL, $1, f.user_id, 'read write',
       now() - interval '1 hour', now() + interval '29 days', now() + interval '29 days',
       CASE WHEN t < $3 - 1 THEN now() - interval '1 hour' END
FROM families AS f, generate_series(0, $3 - 1) AS t
"""


async def _seed(dsn: str, client_id: str, tokens: int, families: int) -> list[str]:
    conn: Any = await asyncpg.connect(dsn, timeout=10)
    try:
        # The rows are consistent by construction (each token's family is inserted by the same
        # statement): skip the foreign-key trigger per token row, as a bulk load does. Session
        # level, this connection only; it needs a superuser, as the benchmark's postgres is.
        await conn.execute("SET session_replication_role = replica")
        started = time.perf_counter()
        await conn.execute(SEED, client_id, families, max(1, tokens // families), timeout=3600)
        await conn.execute("SET session_replication_role = DEFAULT")
        seeded = time.perf_counter() - started
        started = time.perf_counter()
        # Without this, autovacuum would work through the new rows during the measured windows.
        await conn.execute("VACUUM (ANALYZE) refresh_families, refresh_tokens", timeout=3600)
        await conn.execute("CHECKPOINT", timeout=600)
        vacuumed = time.perf_counter() - started
        count = await conn.fetchval("SELECT count(*) FROM refresh_tokens")
        size = await conn.fetchval(
            "SELECT pg_size_pretty(pg_total_relation_size('refresh_tokens'))"
        )
        log(
            f"seeded {count:,} refresh tokens ({size} with indexes) in {families:,} families: "
            f"one INSERT in {seeded:.1f} s, VACUUM ANALYZE and CHECKPOINT in {vacuumed:.1f} s"
        )
        return await _plans(conn, client_id)
    finally:
        await conn.close()


async def _plans(conn: Any, client_id: str) -> list[str]:
    """EXPLAIN of the hot path's statements, compiled exactly as the server runs them."""
    now = datetime.datetime.now(datetime.UTC)
    values = {
        "old_hash": b"\0" * 32,
        "client": client_id,
        "client_id": client_id,
        "now": now,
        "new_id": uuid.uuid4(),
        "new_hash": b"\1" * 32,
        "new_expires_at": now,
        "client_version": 0,
    }
    lines = []
    for name, prepared in (
        ("rotation", ROTATE_CONFIRMING_CLIENT),
        ("client lookup", VERSIONED_CLIENT_BY_ID),
    ):
        sql, args = prepared.postgresql(values)
        # EXPLAIN without ANALYZE: nothing is executed, so nothing is written.
        plan = await conn.fetch("EXPLAIN " + sql, *args)
        lines.append(f"plan of the {name}:")
        lines.extend("    " + row[0] for row in plan)
    return lines


def seed(dsn: str, client_id: str, tokens: int, families: int) -> list[str]:
    """Seed the database at `dsn`; the hot statements' plans, as lines to print."""
    return asyncio.run(_seed(dsn, client_id, tokens, families))
