"""`authserver tokens revoke --user NAME | purge` as an operator runs them: the real console script,
next to a real `serve` (embedded SQLite) and on PostgreSQL after `db upgrade`."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from authserver.settings import Settings
from authserver.store.db import open_database
from authserver.store.tables import (
    login_ip_failures,
    login_user_failures,
    refresh_families,
    refresh_tokens,
    revoked_access_tokens,
    users,
)
from authserver.tokens.opaque import new_refresh_token, token_digest
from tests.e2e.conftest import (
    Cli,
    Invocation,
    ServeFactory,
    assert_ok,
    assert_one_line_error,
    run_concurrently,
)

pytestmark = pytest.mark.e2e

PASSWORD = "e2e-tokens-password-1"
PURGE_TABLES = [
    "refresh_tokens",
    "refresh_families",
    "revoked_access_tokens",
    "login_user_failures",
    "login_ip_failures",
    "login_user_ip_failures",
    "login_known_ips",
    "audit_events",
    "authorization_codes",
    "login_sessions",
    "authorization_requests",
]


def purge_counts(stdout: str) -> dict[str, int]:
    """`tokens purge` prints one `TABLE: N deleted` line per table, in a fixed order."""
    counts: dict[str, int] = {}
    for line in stdout.splitlines():
        table, _, rest = line.partition(": ")
        number, _, word = rest.partition(" ")
        assert word == "deleted", line
        counts[table] = int(number)
    assert list(counts) == PURGE_TABLES, stdout
    return counts


def create_client(cli: Cli, path: Path, *args: str) -> dict[str, Any]:
    result = cli("clients", "create", *args, "--json", cwd=path)
    assert_ok(result)
    client: dict[str, Any] = json.loads(result.stdout)
    return client


def token_request(base_url: str, client: dict[str, Any], **data: str) -> httpx.Response:
    auth = (client["client_id"], client["client_secret"])
    return httpx.post(f"{base_url}/token", data=data, auth=auth, timeout=10)


def login(base_url: str, client: dict[str, Any], username: str) -> dict[str, Any]:
    response = token_request(
        base_url, client, grant_type="password", username=username, password=PASSWORD
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refresh_status(base_url: str, client: dict[str, Any], token: str) -> int:
    return token_request(
        base_url, client, grant_type="refresh_token", refresh_token=token
    ).status_code


def introspect(base_url: str, client: dict[str, Any], token: str) -> dict[str, Any]:
    auth = (client["client_id"], client["client_secret"])
    response = httpx.post(f"{base_url}/introspect", data={"token": token}, auth=auth, timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- tokens revoke --user -----------------------------------------------------------------------


def test_tokens_revoke_logs_a_user_out_everywhere_while_the_server_runs(
    tmp_path: Path, cli: Cli, serve: ServeFactory
) -> None:
    assert_ok(cli("db", "upgrade"))
    for name in ("alice", "bob"):
        assert_ok(cli("users", "create", name, "--password-stdin", stdin=PASSWORD))
    web = create_client(cli, tmp_path, "web")
    mobile = create_client(cli, tmp_path, "mobile")
    resource_server = create_client(
        cli, tmp_path, "rs", "--grant", "client_credentials", "--introspect"
    )
    server = serve(tmp_path)
    alice_sessions = [login(server.base_url, web, "alice"), login(server.base_url, mobile, "alice")]
    bob = login(server.base_url, web, "bob")

    revoked = cli("tokens", "revoke", "--user", "alice")
    again = cli("tokens", "revoke", "--user", "alice")
    ghost = cli("tokens", "revoke", "--user", "ghost")
    no_user = cli("tokens", "revoke")

    assert_ok(revoked)
    assert revoked.stdout.strip() == "revoked 2 sessions of user alice"
    assert_ok(again)
    assert again.stdout.strip() == "revoked 0 sessions of user alice"
    assert_one_line_error(ghost, "ghost")
    assert no_user.returncode != 0
    assert "Traceback" not in no_user.output
    assert "--user" in no_user.stderr
    for session, client in zip(alice_sessions, (web, mobile), strict=True):
        assert refresh_status(server.base_url, client, session["refresh_token"]) == 400
        assert introspect(server.base_url, resource_server, session["access_token"]) == {
            "active": False
        }
    assert introspect(server.base_url, resource_server, bob["access_token"])["active"] is True
    assert refresh_status(server.base_url, web, bob["refresh_token"]) == 200
    # alice may log in again: revoking sessions is not disabling the user.
    login(server.base_url, web, "alice")

    # The audit trail has the one revocation that took effect (the second one ended nothing).
    audit = cli("audit", "tail", "--json", "-n", "100")
    assert_ok(audit)
    events = [json.loads(line) for line in audit.stdout.splitlines()]
    ended = [event for event in events if event["event"] == "tokens.user_revoked"]
    assert len(ended) == 1
    assert (ended[0]["subject"], ended[0]["detail"]) == ("alice", {"sessions": 2})
    assert ended[0]["actor"].startswith("cli:")


def test_tokens_purge_runs_next_to_the_server_and_keeps_live_tokens(
    tmp_path: Path, cli: Cli, serve: ServeFactory
) -> None:
    assert_ok(cli("db", "upgrade"))
    assert_ok(cli("users", "create", "alice", "--password-stdin", stdin=PASSWORD))
    web = create_client(cli, tmp_path, "web")
    server = serve(tmp_path)
    first = login(server.base_url, web, "alice")

    purges = run_concurrently(*(Invocation(["tokens", "purge"], tmp_path) for _ in range(2)))

    for result in purges:
        assert_ok(result)
        assert purge_counts(result.stdout)["refresh_tokens"] == 0
    assert refresh_status(server.base_url, web, first["refresh_token"]) == 200


def test_tokens_purge_rejects_a_bad_batch_size(cli: Cli) -> None:
    result = cli("tokens", "purge", "--batch-size", "0")
    assert result.returncode != 0
    assert "Traceback" not in result.output
    assert "batch-size" in result.stderr


# --- tokens purge on PostgreSQL -----------------------------------------------------------------

DEAD_FAMILIES = 300
TOKENS_PER_DEAD_FAMILY = 4
EXPIRED_JTIS = 1200


async def test_tokens_purge_on_postgresql_deletes_only_dead_rows_and_prints_counts(
    postgres_database_url: str, tmp_path: Path, cli: Cli
) -> None:
    env = {"AUTHSERVER_DATABASE_URL": postgres_database_url}
    assert_ok(cli("db", "upgrade", env=env))
    assert_ok(cli("users", "create", "alice", "--password-stdin", stdin=PASSWORD, env=env))
    client_id = json.loads(cli("clients", "create", "web", "--json", env=env).stdout)["client_id"]
    now = datetime.now(UTC)
    live_family, live_tokens = await _seed(postgres_database_url, client_id, now)

    first = cli("tokens", "purge", "--batch-size", "250", env=env)
    second = cli("tokens", "purge", env=env)

    assert_ok(first)
    assert purge_counts(first.stdout) == {
        "refresh_tokens": DEAD_FAMILIES * TOKENS_PER_DEAD_FAMILY + 1,
        "refresh_families": DEAD_FAMILIES,
        "revoked_access_tokens": EXPIRED_JTIS,
        "login_user_failures": 1,
        "login_ip_failures": 1,
        "login_user_ip_failures": 0,
        "login_known_ips": 0,
        "audit_events": 0,
        "authorization_codes": 0,
        "login_sessions": 0,
        "authorization_requests": 0,
    }
    assert_ok(second)
    assert set(purge_counts(second.stdout).values()) == {0}
    db = open_database(Settings(database_url=postgres_database_url))
    try:
        async with db.statement() as conn:
            families = set((await conn.execute(select(refresh_families.c.id))).scalars())
            tokens = set((await conn.execute(select(refresh_tokens.c.token_hash))).scalars())
            jtis = (await conn.execute(select(revoked_access_tokens.c.jti))).scalars().all()
            usernames = (await conn.execute(select(login_user_failures.c.username))).scalars()
            ips = (await conn.execute(select(login_ip_failures.c.ip))).scalars().all()
            assert set(usernames) == {"still-counting"}
    finally:
        await db.dispose()
    assert families == {live_family}
    assert tokens == {token_digest(token) for token in live_tokens}
    assert jtis == ["still-valid"]
    assert ips == ["192.0.2.2"]


async def _seed(url: str, client_id: str, now: datetime) -> tuple[uuid.UUID, list[str]]:
    """Bulk INSERTs: dead families and tokens, expired jtis, stale counters, and one live
    login whose rotated and current tokens must survive. Returns that family and its tokens."""
    db = open_database(Settings(database_url=url))
    try:
        async with db.transaction() as conn:
            user_id = (
                await conn.execute(select(users.c.id).where(users.c.username == "alice"))
            ).scalar_one()

            def family(revoked_ago: float | None) -> dict[str, Any]:
                return {
                    "id": uuid.uuid4(),
                    "user_id": user_id,
                    "client_id": client_id,
                    "scope": "",
                    "created_at": now - timedelta(days=40),
                    "expires_at": now + timedelta(days=1),
                    "revoked_at": None
                    if revoked_ago is None
                    else now - timedelta(seconds=revoked_ago),
                    "revoked_reason": None if revoked_ago is None else "reuse_detected",
                }

            def token(
                fam: dict[str, Any], expires_in: float, raw: str, rotated: bool
            ) -> dict[str, Any]:
                return {
                    "id": uuid.uuid4(),
                    "token_hash": token_digest(raw),
                    "family_id": fam["id"],
                    "parent_id": None,
                    "client_id": client_id,
                    "user_id": user_id,
                    "scope": "",
                    "issued_at": now - timedelta(minutes=5),
                    "expires_at": now + timedelta(seconds=expires_in),
                    "family_expires_at": fam["expires_at"],
                    "rotated_at": now - timedelta(minutes=1) if rotated else None,
                    "revoked_at": None,
                }

            dead = [family(revoked_ago=8 * 86400) for _ in range(DEAD_FAMILIES)]
            live = family(revoked_ago=None)
            live_tokens = [new_refresh_token(), new_refresh_token()]
            rows = [
                token(f, -60 + 60 * (i % 2), new_refresh_token(), rotated=i > 0)
                for f in dead
                for i in range(TOKENS_PER_DEAD_FAMILY)
            ]
            rows += [
                token(live, 600, live_tokens[0], rotated=True),
                token(live, 604800, live_tokens[1], rotated=False),
                token(live, -1, new_refresh_token(), rotated=True),
            ]
            await conn.execute(insert(refresh_families), [*dead, live])
            await conn.execute(insert(refresh_tokens), rows)
            jtis = [
                {
                    "jti": f"expired-{i}",
                    "client_id": client_id,
                    "revoked_at": now - timedelta(hours=1),
                    "expires_at": now - timedelta(seconds=1),
                }
                for i in range(EXPIRED_JTIS)
            ]
            jtis.append(
                {
                    "jti": "still-valid",
                    "client_id": client_id,
                    "revoked_at": now,
                    "expires_at": now + timedelta(minutes=10),
                }
            )
            await conn.execute(insert(revoked_access_tokens), jtis)
            await conn.execute(
                insert(login_user_failures),
                [
                    {
                        "username": "reset",
                        "failures": 0,
                        "last_failure_at": now,
                        "locked_until": None,
                        "lock_seconds": 0,
                    },
                    {
                        "username": "still-counting",
                        "failures": 2,
                        "last_failure_at": now - timedelta(hours=1),
                        "locked_until": None,
                        "lock_seconds": 0,
                    },
                ],
            )
            await conn.execute(
                insert(login_ip_failures),
                [
                    {
                        "ip": "192.0.2.1",
                        "window_started_at": now - timedelta(hours=1),
                        "failures": 100,
                    },
                    {
                        "ip": "192.0.2.2",
                        "window_started_at": now - timedelta(minutes=1),
                        "failures": 3,
                    },
                ],
            )
    finally:
        await db.dispose()
    return live["id"], live_tokens
