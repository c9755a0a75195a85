"""The rotation grace window (SPEC "Grace window", REFRESH_REUSE_GRACE > 0), on SQLite and
PostgreSQL.

A client whose network lost the response to a refresh presents the same token again. Within the
window, and only while the successor it never received is unused, it gets a new pair and that
successor is revoked. Everything else that presents a rotated or revoked token is reuse and
revokes the family, as with strict rotation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from authserver.services import Services
from authserver.store.tables import refresh_families, refresh_tokens
from authserver.tokens.opaque import token_digest
from tests.conftest import Clock, RegisteredClient
from tests.helpers import assert_oauth_error, jwt_parts, metric_value, password_login, refresh

MakeClient = Callable[..., Awaitable[RegisteredClient]]
MakeUser = Callable[..., Awaitable[str]]

GRACE = 30
BLOCKED_WAIT = 90  # seconds: generous, the machine may be busy


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """REFRESH_REUSE_GRACE = GRACE unless a test passes another value (indirect). REQUEST_TIMEOUT
    is raised past the collision tests' bounded wait (BLOCKED_WAIT): held on a row lock until
    both requests are seen waiting, a request must not be cancelled by the app's own 10 s
    timeout first (seen on a busy machine: the second request reached the lock after the first
    had been cancelled, and the wait failed)."""
    return {
        "refresh_reuse_grace": getattr(request, "param", GRACE),
        "request_timeout": BLOCKED_WAIT + 30,
    }


async def login(http: httpx.AsyncClient, client: RegisteredClient) -> str:
    response = await password_login(http, client)
    assert response.status_code == 200, response.text
    token: str = response.json()["refresh_token"]
    return token


async def refreshed(http: httpx.AsyncClient, client: RegisteredClient, token: str) -> str:
    response = await refresh(http, client, token)
    assert response.status_code == 200, response.text
    new: str = response.json()["refresh_token"]
    return new


async def live_hashes(services: Services, token: str) -> tuple[bool, set[bytes]]:
    """(is the token's family revoked, hashes of its tokens that are neither used nor revoked)."""
    async with services.db.statement() as conn:
        family_id = (
            await conn.execute(
                select(refresh_tokens.c.family_id).where(
                    refresh_tokens.c.token_hash == token_digest(token)
                )
            )
        ).scalar_one()
        revoked_at = (
            await conn.execute(
                select(refresh_families.c.revoked_at).where(refresh_families.c.id == family_id)
            )
        ).scalar_one()
        rows = await conn.execute(
            select(refresh_tokens.c.token_hash).where(
                refresh_tokens.c.family_id == family_id,
                refresh_tokens.c.rotated_at.is_(None),
                refresh_tokens.c.revoked_at.is_(None),
            )
        )
        return revoked_at is not None, {bytes(row[0]) for row in rows}


async def test_replay_within_the_window_gets_a_new_pair_and_the_unused_successor_is_revoked(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    client = await make_client()
    await make_user()
    first = await login(http, client)
    lost = await refreshed(http, client, first)  # the response the client never received

    clock.advance(GRACE - 1)
    replay = await refresh(http, client, first)

    assert replay.status_code == 200, replay.text
    body = replay.json()
    assert body["refresh_token"] not in (first, lost)
    assert jwt_parts(body["access_token"])[1]["sid"]
    assert await refreshed(http, client, body["refresh_token"])  # the new pair works
    assert await metric_value(http, "authserver_refresh_reuse_detected_total") == 0


async def test_presenting_the_successor_a_replay_revoked_is_reuse_and_revokes_the_family(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    """The revoked successor reached somebody after all: two holders of one login."""
    client = await make_client()
    await make_user()
    first = await login(http, client)
    superseded = await refreshed(http, client, first)
    clock.advance(1)
    replacement = await refreshed(http, client, first)

    assert_oauth_error(await refresh(http, client, superseded), 400, "invalid_grant")
    assert_oauth_error(await refresh(http, client, replacement), 400, "invalid_grant")
    assert await metric_value(http, "authserver_refresh_reuse_detected_total") == 1


async def test_replays_may_repeat_within_the_window_which_they_never_extend(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    """The window counts from the presented token's first rotation, not from the last replay."""
    client = await make_client()
    await make_user()
    first = await login(http, client)
    issued = [first, await refreshed(http, client, first)]
    for _ in range(3):
        clock.advance(GRACE / 4)
        issued.append(await refreshed(http, client, first))
    assert len(set(issued)) == len(issued)

    clock.advance(GRACE / 4)  # exactly GRACE seconds after the rotation: the window has closed
    assert_oauth_error(await refresh(http, client, first), 400, "invalid_grant")
    assert_oauth_error(await refresh(http, client, issued[-1]), 400, "invalid_grant")
    assert await metric_value(http, "authserver_refresh_reuse_detected_total") == 1


async def test_replay_after_the_window_is_reuse_and_revokes_the_family(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    client = await make_client()
    await make_user()
    first = await login(http, client)
    successor = await refreshed(http, client, first)

    clock.advance(GRACE + 1)
    assert_oauth_error(await refresh(http, client, first), 400, "invalid_grant")
    assert_oauth_error(await refresh(http, client, successor), 400, "invalid_grant")
    assert await metric_value(http, "authserver_refresh_reuse_detected_total") == 1


async def test_replay_after_the_successor_was_used_is_reuse_and_revokes_the_family(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    """Django OAuth Toolkit #1617: its grace period let a refresh token several rotations old
    mint new tokens. Here a token two rotations old (its successor already used), presented well
    inside the window, is reuse: refused, and the whole family is revoked."""
    client = await make_client()
    await make_user()
    first = await login(http, client)
    second = await refreshed(http, client, first)
    third = await refreshed(http, client, second)
    clock.advance(1)

    assert_oauth_error(await refresh(http, client, first), 400, "invalid_grant")
    assert_oauth_error(await refresh(http, client, third), 400, "invalid_grant")
    assert await metric_value(http, "authserver_refresh_reuse_detected_total") == 1


async def test_a_token_three_rotations_old_is_reuse_even_when_replays_are_allowed(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    """Django OAuth Toolkit #1617 again, one generation further back, after the immediately
    previous token has itself been replayed once within its window."""
    client = await make_client()
    await make_user()
    tokens = [await login(http, client)]
    for _ in range(3):
        tokens.append(await refreshed(http, client, tokens[-1]))
    newest = await refreshed(http, client, tokens[-2])  # a legitimate replay of the previous one

    assert_oauth_error(await refresh(http, client, tokens[0]), 400, "invalid_grant")
    assert_oauth_error(await refresh(http, client, newest), 400, "invalid_grant")


async def test_a_replay_never_hands_out_a_token_that_was_already_issued(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    make_user: MakeUser,
    clock: Clock,
    services: Services,
) -> None:
    """Django OAuth Toolkit #702: within its grace period a replay answered with the *old*
    refresh token, so the token a client had just used came back as "new". Here every refresh
    token and access token ever handed out is distinct, and each replay leaves exactly one
    usable refresh token in the family: the one it just returned."""
    client = await make_client()
    await make_user()
    first = await login(http, client)
    refresh_tokens_seen = [first]
    access_ids: list[str] = []
    for _ in range(4):
        clock.advance(1)
        response = await refresh(http, client, first)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        refresh_tokens_seen.append(body["refresh_token"])
        access_ids.append(jwt_parts(body["access_token"])[1]["jti"])
        revoked, live = await live_hashes(services, first)
        assert not revoked
        assert live == {token_digest(body["refresh_token"])}

    assert len(set(refresh_tokens_seen)) == len(refresh_tokens_seen)
    assert len(set(access_ids)) == len(access_ids)


async def test_replay_with_a_wider_scope_is_invalid_scope_and_uses_nothing_up(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client(scopes=("read", "write", "admin"))
    await make_user()
    response = await password_login(http, client, scope="read")
    assert response.status_code == 200, response.text
    first = response.json()["refresh_token"]
    successor = await refreshed(http, client, first)

    assert_oauth_error(await refresh(http, client, first, scope="read admin"), 400, "invalid_scope")
    narrowed = await refresh(http, client, first, scope="read")
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["scope"] == "read"
    assert_oauth_error(await refresh(http, client, successor), 400, "invalid_grant")


async def test_a_wider_scope_on_a_token_two_rotations_old_is_reuse_not_invalid_scope(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    """Security review finding 5 (issue 15): the narrowing check ran for any token rotated
    within the window, so a dead token with a wider scope answered invalid_scope and revoked
    nothing. Only a token the rotation would accept gets its scope checked."""
    client = await make_client(scopes=("read", "write", "admin"))
    await make_user()
    response = await password_login(http, client, scope="read")
    assert response.status_code == 200, response.text
    first = response.json()["refresh_token"]
    second = await refreshed(http, client, first)
    third = await refreshed(http, client, second)  # first's successor is used: first is dead
    clock.advance(1)

    assert_oauth_error(await refresh(http, client, first, scope="read admin"), 400, "invalid_grant")
    assert await metric_value(http, "authserver_refresh_reuse_detected_total") == 1
    assert_oauth_error(await refresh(http, client, third), 400, "invalid_grant")


async def test_a_wider_scope_on_the_successor_a_replay_revoked_is_reuse_not_invalid_scope(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    client = await make_client(scopes=("read", "write", "admin"))
    await make_user()
    response = await password_login(http, client, scope="read")
    assert response.status_code == 200, response.text
    first = response.json()["refresh_token"]
    superseded = await refreshed(http, client, first)
    clock.advance(1)
    replacement = await refreshed(http, client, first)  # revokes `superseded`

    assert_oauth_error(
        await refresh(http, client, superseded, scope="read admin"), 400, "invalid_grant"
    )
    assert await metric_value(http, "authserver_refresh_reuse_detected_total") == 1
    assert_oauth_error(await refresh(http, client, replacement), 400, "invalid_grant")


@pytest.mark.parametrize("settings_overrides", [0], indirect=True)
async def test_a_wider_scope_on_a_used_token_without_a_window_is_reuse(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client(scopes=("read", "admin"))
    await make_user()
    response = await password_login(http, client, scope="read")
    assert response.status_code == 200, response.text
    first = response.json()["refresh_token"]
    successor = await refreshed(http, client, first)

    assert_oauth_error(await refresh(http, client, first, scope="admin"), 400, "invalid_grant")
    assert_oauth_error(await refresh(http, client, successor), 400, "invalid_grant")


async def test_replay_by_another_client_is_refused_and_revokes_nothing(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client("app")
    thief = await make_client("other")
    await make_user()
    first = await login(http, client)
    successor = await refreshed(http, client, first)

    assert_oauth_error(await refresh(http, thief, first), 400, "invalid_grant")
    assert await refreshed(http, client, successor)


async def test_replay_of_a_disabled_users_token_is_refused(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, services: Services
) -> None:
    from datetime import UTC, datetime

    from authserver import admin

    client = await make_client()
    await make_user()
    first = await login(http, client)
    await refreshed(http, client, first)
    await admin.disable_user(services.db, "alice", datetime.now(UTC))

    assert_oauth_error(await refresh(http, client, first), 400, "invalid_grant")


async def test_concurrent_replays_leave_exactly_one_usable_pair_and_the_family_alive(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    make_user: MakeUser,
    clock: Clock,
    services: Services,
) -> None:
    """Ten retries of the same lost refresh at once. Each is decided atomically: a replay that
    runs after another one committed supersedes it, one that collides with another on the same
    successor loses (invalid_grant, nothing revoked). Whatever the interleaving: at least one
    succeeds, no token is handed out twice, the family survives, and exactly one of the handed-out
    refresh tokens is usable."""
    client = await make_client()
    await make_user()
    first = await login(http, client)
    await refreshed(http, client, first)
    clock.advance(1)

    responses = await asyncio.gather(*(refresh(http, client, first) for _ in range(10)))

    assert not [r.text for r in responses if r.status_code not in (200, 400)]
    for response in responses:
        if response.status_code == 400:
            assert_oauth_error(response, 400, "invalid_grant")
    winners = [r.json()["refresh_token"] for r in responses if r.status_code == 200]
    assert winners
    assert len(set(winners)) == len(winners)
    revoked, live = await live_hashes(services, first)
    assert not revoked
    usable = [token for token in winners if token_digest(token) in live]
    assert len(usable) == 1
    assert await refreshed(http, client, usable[0])
    assert await metric_value(http, "authserver_refresh_reuse_detected_total") == 0


async def test_a_replay_racing_the_successors_own_use_revokes_the_family_either_way(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    make_user: MakeUser,
    clock: Clock,
    services: Services,
) -> None:
    """The old token and its successor presented at the same moment means two parties hold one
    login. Exactly one request wins the successor's row; the other is reuse (after the
    successor was used, or of the successor the replay revoked), so the family is revoked."""
    client = await make_client()
    await make_user()
    first = await login(http, client)
    successor = await refreshed(http, client, first)
    clock.advance(1)

    responses = await asyncio.gather(refresh(http, client, first), refresh(http, client, successor))

    assert sorted(r.status_code for r in responses) == [200, 400], [r.text for r in responses]
    revoked, _live = await live_hashes(services, first)
    assert revoked
    winner = next(r for r in responses if r.status_code == 200).json()["refresh_token"]
    assert_oauth_error(await refresh(http, client, winner), 400, "invalid_grant")


@pytest.mark.parametrize("settings_overrides", [0], indirect=True)
async def test_without_a_window_every_replay_is_reuse(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    first = await login(http, client)
    successor = await refreshed(http, client, first)

    assert_oauth_error(await refresh(http, client, first), 400, "invalid_grant")
    assert_oauth_error(await refresh(http, client, successor), 400, "invalid_grant")


async def _blocked_on_locks(conn: Any, count: int) -> None:
    """Wait until `count` other backends of this database are waiting for a row lock.

    `conn` is inside a transaction, where PostgreSQL answers pg_stat_activity from a snapshot
    taken at its first use: cleared before each look, or a backend that connects later (the
    hot path opens its connections on demand) is never seen."""
    deadline = asyncio.get_running_loop().time() + BLOCKED_WAIT
    while asyncio.get_running_loop().time() < deadline:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        if waiting >= count:
            return
        await asyncio.sleep(0.01)
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    activity = await conn.fetch(
        "SELECT state, wait_event_type, wait_event, left(query, 80) AS query "
        "FROM pg_stat_activity WHERE datname = current_database()"
    )
    raise AssertionError(
        f"fewer than {count} requests blocked on the successor's row lock: "
        f"{[dict(row) for row in activity]}"
    )


async def _race_on_the_successors_row(
    database_url: str, successor: str, *requests: Awaitable[httpx.Response]
) -> list[httpx.Response]:
    """Hold the successor's row lock, start `requests`, wait until each is blocked on that
    lock, then let go: they collide for real, not one after the other."""
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(database_url).set(drivername="postgresql")
    conn = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute(
            "SELECT 1 FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
            token_digest(successor),
        )
        tasks = [asyncio.ensure_future(request) for request in requests]
        await _blocked_on_locks(conn, len(tasks))
        await transaction.rollback()
        return list(await asyncio.gather(*tasks))
    finally:
        await conn.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_replays_colliding_on_postgresql_have_one_winner_and_the_family_survives(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    make_user: MakeUser,
    clock: Clock,
    services: Services,
    database_url: str,
) -> None:
    client = await make_client()
    await make_user()
    first = await login(http, client)
    successor = await refreshed(http, client, first)
    clock.advance(1)

    responses = await _race_on_the_successors_row(
        database_url, successor, refresh(http, client, first), refresh(http, client, first)
    )

    assert sorted(r.status_code for r in responses) == [200, 400], [r.text for r in responses]
    loser = next(r for r in responses if r.status_code == 400)
    assert_oauth_error(loser, 400, "invalid_grant")
    winner = next(r for r in responses if r.status_code == 200).json()["refresh_token"]
    revoked, live = await live_hashes(services, first)
    assert not revoked
    assert live == {token_digest(winner)}
    assert await refreshed(http, client, winner)
    assert await metric_value(http, "authserver_refresh_reuse_detected_total") == 0


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_replay_colliding_with_the_successors_use_on_postgresql_revokes_the_family(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    make_user: MakeUser,
    clock: Clock,
    services: Services,
    database_url: str,
) -> None:
    client = await make_client()
    await make_user()
    first = await login(http, client)
    successor = await refreshed(http, client, first)
    clock.advance(1)

    responses = await _race_on_the_successors_row(
        database_url, successor, refresh(http, client, first), refresh(http, client, successor)
    )

    assert sorted(r.status_code for r in responses) == [200, 400], [r.text for r in responses]
    revoked, _live = await live_hashes(services, first)
    assert revoked
    assert await metric_value(http, "authserver_refresh_reuse_detected_total") == 1
