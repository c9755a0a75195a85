"""Concurrent refreshes (SPEC "Refresh tokens": two concurrent requests with the same token,
exactly one succeeds). Runs on SQLite and PostgreSQL through the fixtures' parametrisation."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

import httpx

from tests.conftest import RegisteredClient
from tests.helpers import assert_oauth_error, jwt_parts, metric_value, password_login, refresh

MakeClient = Callable[..., Awaitable[RegisteredClient]]
MakeUser = Callable[..., Awaitable[str]]

RACERS = 20
CHAINS = 10


async def login_token(http: httpx.AsyncClient, client: RegisteredClient) -> str:
    response = await password_login(http, client)
    assert response.status_code == 200, response.text
    token: str = response.json()["refresh_token"]
    return token


async def test_twenty_concurrent_refreshes_of_one_token_exactly_one_succeeds(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    token = await login_token(http, client)

    responses = await asyncio.gather(*(refresh(http, client, token) for _ in range(RACERS)))

    statuses = Counter(response.status_code for response in responses)
    assert not [r.text for r in responses if r.status_code >= 500]
    assert statuses == {200: 1, 400: RACERS - 1}, statuses
    for response in responses:
        if response.status_code == 400:
            assert_oauth_error(response, 400, "invalid_grant")
    winners = [response.json() for response in responses if response.status_code == 200]
    assert winners[0]["refresh_token"] != token


async def test_losing_a_refresh_race_is_treated_as_reuse_and_revokes_the_family(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    """Strict rotation (REFRESH_REUSE_GRACE = 0): the server cannot tell a client that sent the
    same token twice at once from an attacker racing the legitimate client with a stolen copy.
    Every loser presented a token that had just been rotated, which is reuse, so the family is
    revoked: even the winner's new refresh token stops working, and each loser is counted."""
    client = await make_client()
    await make_user()
    token = await login_token(http, client)
    other_login = await login_token(http, client)

    responses = await asyncio.gather(*(refresh(http, client, token) for _ in range(RACERS)))

    winners = [response.json() for response in responses if response.status_code == 200]
    assert len(winners) == 1
    assert_oauth_error(
        await refresh(http, client, winners[0]["refresh_token"]), 400, "invalid_grant"
    )
    assert await metric_value(http, "authserver_refresh_reuse_detected_total") == RACERS - 1
    assert (await refresh(http, client, other_login)).status_code == 200  # only that family


async def test_independent_chains_refreshing_concurrently_all_succeed(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    """No false reuse detection: different families never interfere, round after round."""
    client = await make_client()
    await make_user()
    tokens = [await login_token(http, client) for _ in range(CHAINS)]
    sids: set[str] = set()

    for _ in range(3):
        responses = await asyncio.gather(*(refresh(http, client, token) for token in tokens))
        assert [r.status_code for r in responses] == [200] * CHAINS, [r.text for r in responses]
        tokens = [response.json()["refresh_token"] for response in responses]
        sids = {jwt_parts(r.json()["access_token"])[1]["sid"] for r in responses}
        assert len(sids) == CHAINS

    assert len(set(tokens)) == CHAINS
    assert await metric_value(http, "authserver_refresh_reuse_detected_total") == 0


async def test_concurrent_chains_of_different_users_and_clients_all_succeed(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    clients = [await make_client(f"app-{i}", public=i % 2 == 1) for i in range(4)]
    users = [f"user{i}" for i in range(3)]
    subjects = {username: await make_user(username) for username in users}
    logins: list[tuple[RegisteredClient, str, str]] = []
    for client in clients:
        for username in users:
            response = await password_login(http, client, username)
            assert response.status_code == 200, response.text
            logins.append((client, username, response.json()["refresh_token"]))

    responses = await asyncio.gather(*(refresh(http, c, token) for c, _u, token in logins))

    for (client, username, _token), response in zip(logins, responses, strict=True):
        assert response.status_code == 200, response.text
        claims = jwt_parts(response.json()["access_token"])[1]
        assert claims["sub"] == subjects[username]
        assert claims["client_id"] == client.client_id
