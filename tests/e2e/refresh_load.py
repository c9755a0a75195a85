"""Refresh-token chains hammering real `serve` processes, for the shutdown and multi-process
tests: set-up with the real CLI, the chains, and checks on the families in PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from tests.e2e.conftest import Invocation, assert_ok, run_authserver, run_concurrently

PASSWORD = "e2e-load-password-1"


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str

    @property
    def basic(self) -> httpx.BasicAuth:
        return httpx.BasicAuth(self.client_id, self.client_secret)


def prepare(path: Path, env: dict[str, str]) -> Credentials:
    """`db upgrade`, then user alice and a confidential client, made by the real CLI."""
    assert_ok(run_authserver(["db", "upgrade"], path, env=env))
    user, client = run_concurrently(
        Invocation(["users", "create", "alice", "--password-stdin"], path, env, PASSWORD),
        Invocation(["clients", "create", "web", "--json"], path, env),
    )
    assert_ok(user)
    assert_ok(client)
    created = json.loads(client.stdout)
    return Credentials(created["client_id"], created["client_secret"])


@dataclass
class Chain:
    """One login whose refresh token is rotated over and over."""

    index: int
    token: str  # the last refresh token received: the only one that may work
    previous: str | None = None  # the one before it (already rotated)
    successes: int = 0
    successes_after_event: int = 0
    in_flight_to: str | None = None  # base URL of the request under way, if any
    unanswered: list[tuple[str, str]] = field(default_factory=list)  # (url, error) per failure
    failure: str | None = None  # an answer that must never happen

    def rotated(self, new_token: str, after_event: bool) -> None:
        self.previous, self.token = self.token, new_token
        self.successes += 1
        if after_event:
            self.successes_after_event += 1


async def login(http: httpx.AsyncClient, base_url: str, credentials: Credentials) -> str:
    data = {"grant_type": "password", "username": "alice", "password": PASSWORD}
    response = await http.post(f"{base_url}/token", data=data, auth=credentials.basic)
    assert response.status_code == 200, response.text
    token: str = response.json()["refresh_token"]
    return token


async def refresh(
    http: httpx.AsyncClient, base_url: str, credentials: Credentials, token: str
) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": token}
    return await http.post(f"{base_url}/token", data=data, auth=credentials.basic)


def new_client() -> httpx.AsyncClient:
    """One per chain: its own keep-alive connections, no retries of its own."""
    return httpx.AsyncClient(timeout=httpx.Timeout(20.0, connect=2.0))


@dataclass(frozen=True)
class FamilyReport:
    families: int
    revoked: dict[str, str | None]  # family id -> revoked_reason
    live_tokens_per_family: dict[str, int]  # unrotated, unrevoked tokens of live families
    forks: int  # tokens with more than one successor: a token handed out twice


async def family_report(database_url: str) -> FamilyReport:
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        families = await conn.fetch(
            "SELECT id::text, revoked_at, revoked_reason FROM refresh_families"
        )
        live = await conn.fetch(
            """SELECT t.family_id::text AS family, count(*) AS n FROM refresh_tokens t
               JOIN refresh_families f ON f.id = t.family_id
               WHERE f.revoked_at IS NULL AND t.rotated_at IS NULL AND t.revoked_at IS NULL
               GROUP BY t.family_id"""
        )
        forks = await conn.fetchval(
            """SELECT count(*) FROM (SELECT parent_id FROM refresh_tokens
               WHERE parent_id IS NOT NULL GROUP BY parent_id HAVING count(*) > 1) AS f"""
        )
    finally:
        await conn.close()
    return FamilyReport(
        families=len(families),
        revoked={row["id"]: row["revoked_reason"] for row in families if row["revoked_at"]},
        live_tokens_per_family={row["family"]: row["n"] for row in live},
        forks=forks,
    )
