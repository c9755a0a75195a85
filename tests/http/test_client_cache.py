"""The refresh grant's cached client rows (authserver/clients/cache.py), attacked: whatever
changes about a client while its row is cached (its secret, its grants, its audiences, its
existence, a hand-made UPDATE) the very next refresh is decided on the row as it now is, and a
refresh refused on those grounds uses nothing up. On SQLite, which has no row versions, every
request reads the client afresh; the same tests hold there."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from authserver import admin
from authserver.services import Services
from authserver.store import clients as client_store
from authserver.store.clients import ClientUpdate
from authserver.store.tables import clients
from authserver.tokens.opaque import token_digest
from tests.conftest import RegisteredClient
from tests.helpers import assert_oauth_error, jwt_parts, login, refresh, refreshed

MakeClient = Callable[..., Awaitable[RegisteredClient]]
MakeUser = Callable[..., Awaitable[str]]
GRANTS = ("password", "refresh_token")


async def cached_login(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> tuple[RegisteredClient, str]:
    """A client whose row the server has cached (one refresh done), and a usable token."""
    client = await make_client(grants=GRANTS)
    await make_user()
    first = await login(http, client)
    return client, (await refreshed(http, client, first["refresh_token"]))["refresh_token"]


async def test_rotated_secret_refuses_the_old_one_at_the_next_refresh(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    client, token = await cached_login(http, make_client, make_user)
    secret, _ = await admin.rotate_client_secret(
        services.db, client.client_id, revoke_sessions=False, now=datetime.now(UTC)
    )
    response = await refresh(http, client, token)
    assert_oauth_error(response, 401, "invalid_client")
    # The refusal used nothing up, and the new secret works at once.
    rotated = RegisteredClient(client.client_id, secret)
    await refreshed(http, rotated, token)


async def test_grant_removed_refuses_the_next_refresh_without_using_the_token(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    client, token = await cached_login(http, make_client, make_user)
    await admin.update_client(
        services.db,
        services.settings,
        client.client_id,
        ClientUpdate(grant_types=frozenset({"password"})),
    )
    assert_oauth_error(await refresh(http, client, token), 400, "unauthorized_client")
    # Given back, the grant works at once (the refusal was not cached), with the same token.
    await admin.update_client(
        services.db,
        services.settings,
        client.client_id,
        ClientUpdate(grant_types=frozenset(GRANTS)),
    )
    await refreshed(http, client, token)


async def test_deleted_client_is_refused_at_the_next_refresh(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    client, token = await cached_login(http, make_client, make_user)
    await admin.delete_client(services.db, client.client_id)
    assert_oauth_error(await refresh(http, client, token), 401, "invalid_client")


async def test_changed_audience_is_in_the_next_access_token(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    client, token = await cached_login(http, make_client, make_user)
    await admin.update_client(
        services.db,
        services.settings,
        client.client_id,
        ClientUpdate(audiences=("https://api.example.com",), access_token_ttl=120),
    )
    body = await refreshed(http, client, token)
    claims = jwt_parts(body["access_token"])[1]
    assert claims["aud"] == "https://api.example.com"
    assert body["expires_in"] == 120


async def test_secret_changed_by_hand_in_the_database_is_noticed(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    """Not only the CLI's changes: any UPDATE of the row (here, SQL by hand) is noticed."""
    client, token = await cached_login(http, make_client, make_user)
    async with services.db.transaction() as conn:
        await conn.execute(
            update(clients)
            .where(clients.c.client_id == client.client_id)
            .values(secret_hash=token_digest("set by hand"))
        )
    assert_oauth_error(await refresh(http, client, token), 401, "invalid_client")
    await refreshed(http, RegisteredClient(client.client_id, "set by hand"), token)


async def test_wrong_secret_is_refused_while_the_client_is_cached(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client, token = await cached_login(http, make_client, make_user)
    wrong = RegisteredClient(client.client_id, "not the secret")
    assert_oauth_error(await refresh(http, wrong, token), 401, "invalid_client")
    await refreshed(http, client, token)


async def test_a_cached_client_saves_its_lookup(
    http: httpx.AsyncClient,
    services: Services,
    make_client: MakeClient,
    make_user: MakeUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The point of the cache (PostgreSQL): a refresh reads the client row only when it is not
    cached; SQLite reads it every time."""
    reads: list[str] = []
    for name in ("get_client", "get_versioned_client"):
        original = getattr(client_store, name)

        async def counted(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            reads.append("read")
            return await _original(*args, **kwargs)

        monkeypatch.setattr(client_store, name, counted)
    client, token = await cached_login(http, make_client, make_user)
    reads.clear()
    for _ in range(3):
        token = (await refreshed(http, client, token))["refresh_token"]
    assert len(reads) == (0 if services.db.dialect.row_versions else 3)
