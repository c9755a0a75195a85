"""Benchmark `authserver tokens purge` on a PostgreSQL database of realistic size.

    .venv/bin/python bench/purge.py [--families 300000] [--postgres postgresql://postgres@127.0.0.1:5432/test]

Seeds a throwaway database (migrated with `authserver db upgrade`) with one user, one client and
`--families` refresh-token families, two tokens each (one rotated, one current):
  60 %  live: created today, nothing eligible (the purge must leave every row);
  20 %  created 430 days ago, revoked a day later: both tokens and the family go;
  20 %  created 430 days ago, past their absolute expiry 400 days ago: all of it goes.
Then it times one `authserver tokens purge` (a real process, default batch size), checks that
exactly the eligible rows went, and drops the database in every case. Only 127.0.0.1 is used.

Run as a script: its directory is then on sys.path, which is how the sibling modules import.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
from console import BenchError, log
from database import Postgres, drop_database, drop_orphans, sqlalchemy_url, throwaway_name

SEED = """
WITH owner AS (
    INSERT INTO users (id, username, password_hash, disabled, created_at, password_changed_at)
    VALUES (gen_random_uuid(), 'bench', 'not-a-hash', false, now(), now())
    RETURNING id
), client AS (
    INSERT INTO clients (client_id, name, secret_hash, grant_types, scopes, created_at)
    VALUES ('bench', 'bench', NULL, 'password refresh_token', 'profile:read', now())
    RETURNING client_id
), plan AS (  -- n % 5: 0 revoked long ago, 1 expired long ago, else live
    SELECT n, gen_random_uuid() AS family_id,
           CASE WHEN n % 5 IN (0, 1) THEN now() - interval '430 days' ELSE now() END
               AS created_at,
           CASE WHEN n % 5 IN (0, 1) THEN now() - interval '400 days'
                ELSE now() + interval '30 days' END AS expires_at,
           CASE WHEN n % 5 = 0 THEN now() - interval '429 days' END AS revoked_at
    FROM generate_series(1, $1) AS n
), families AS (
    INSERT INTO refresh_families (id, user_id, client_id, scope, created_at, expires_at,
                                  revoked_at, revoked_reason)
    SELECT family_id, owner.id, client.client_id, 'profile:read', created_at, expires_at,
           revoked_at, CASE WHEN revoked_at IS NOT NULL THEN 'logout' END
    FROM plan, owner, client
    RETURNING id, user_id, created_at, expires_at, revoked_at
)
INSERT INTO refresh_tokens (id, token_hash, family_id, parent_id, client_id, user_id, scope,
                            issued_at, expires_at, family_expires_at, rotated_at, revoked_at)
SELECT gen_random_uuid(), sha256(uuid_send(gen_random_uuid())), f.id, NULL, 'bench',
       f.user_id, 'profile:read', f.created_at,
       LEAST(f.created_at + interval '7 days', f.expires_at), f.expires_at,
       CASE WHEN generation = 1 THEN f.created_at END, f.revoked_at
FROM families AS f, generate_series(1, 2) AS generation
"""

COUNTS = "SELECT (SELECT count(*) FROM refresh_families), (SELECT count(*) FROM refresh_tokens)"


async def seed(dsn: str, families: int) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(SEED.replace("$1", str(int(families))))
        await conn.execute("ANALYZE")
        row = await conn.fetchrow(COUNTS)
        return int(row[0]), int(row[1])
    finally:
        await conn.close()


async def count(dsn: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        row = await conn.fetchrow(COUNTS)
        return int(row[0]), int(row[1])
    finally:
        await conn.close()


def authserver(*args: str, env: dict[str, str], cwd: Path) -> str:
    executable = Path(sys.executable).with_name("authserver")
    done = subprocess.run(
        [str(executable), *args], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"authserver {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", type=int, default=300_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    if args.families < 5:
        raise SystemExit("--families: at least 5")
    postgres = Postgres(args.postgres)
    postgres.connect()
    drop_orphans(postgres)
    name = throwaway_name()
    postgres.create_database(name)
    try:
        with tempfile.TemporaryDirectory(prefix="authserver-bench-purge-") as home:
            env = {
                **os.environ,
                "AUTHSERVER_DATABASE_URL": sqlalchemy_url(args.postgres, name),
                "AUTHSERVER_LOG_FORMAT": "text",
            }
            authserver("db", "upgrade", env=env, cwd=Path(home))
            dsn = args.postgres.rsplit("/", 1)[0] + "/" + name
            started = time.perf_counter()
            families, tokens = asyncio.run(seed(dsn, args.families))
            log(
                f"seeded {families:,} families, {tokens:,} tokens in "
                f"{time.perf_counter() - started:.1f} s"
            )
            started = time.perf_counter()
            output = authserver("tokens", "purge", env=env, cwd=Path(home))
            elapsed = time.perf_counter() - started
            left = asyncio.run(count(dsn))
    finally:
        drop_database(postgres, name)
        postgres.close()
    live = args.families - args.families // 5 - (args.families + 4) // 5  # n % 5 == 0, == 1
    expected = (live, 2 * live)
    print(output.strip())
    print(
        f"tokens purge: {elapsed:.2f} s for {families - left[0]:,} families and "
        f"{tokens - left[1]:,} tokens; left {left[0]:,} families, {left[1]:,} tokens"
    )
    if left != expected:
        print(f"WRONG: expected {expected[0]:,} families and {expected[1]:,} tokens left")
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        log(str(exc))
        sys.exit(2)
