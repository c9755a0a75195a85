"""What the operator commands of issue 15 (guard rail 5) do to a serving app, on both databases:
the admin and store functions the CLI calls, observed through the token endpoint.

`users unlock` lifts a lock at once; `users delete` ends the user's logins and forgets the
addresses that skipped their lock; `users enable` lets a disabled user in again; `clients
rotate-secret` makes the old secret useless at once and keeps the client's refresh tokens live
(a refresh needs the new secret) unless asked to revoke them; `clients update` changes only the
fields given and checks them as `create` does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import Table, func, select

from authserver import admin
from authserver.services import Services
from authserver.store import login_locks
from authserver.store.clients import ClientUpdate
from authserver.store.tables import login_known_ips, login_user_failures, login_user_ip_failures
from tests.conftest import RegisteredClient
from tests.helpers import assert_oauth_error, login, password_login, refresh, refreshed

MakeClient = Callable[..., Awaitable[RegisteredClient]]
MakeUser = Callable[..., Awaitable[str]]


async def fail(http: httpx.AsyncClient, client: RegisteredClient, times: int) -> None:
    for _ in range(times):
        response = await password_login(http, client, "alice", "wrong password")
        assert response.status_code == 400, response.text


async def rows(services: Services, table: Table, username: str) -> int:
    async with services.db.read() as conn:
        query = select(func.count()).select_from(table).where(table.c.username == username)
        return int((await conn.execute(query)).scalar_one())


# --- users unlock ---------------------------------------------------------------------------------


async def test_unlock_lifts_a_username_lock_at_once(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    await fail(http, client, 10)
    assert (await password_login(http, client)).status_code == 429
    state = await login_locks.lock_state(services.db, "alice", datetime.now(UTC))
    assert state.locked_until is not None

    assert await login_locks.unlock(services.db, "alice") == 1

    await login(http, client)
    state = await login_locks.lock_state(services.db, "alice", datetime.now(UTC))
    assert state.locked_until is None


async def test_unlock_lifts_the_locks_at_the_users_known_addresses_too(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    await login(http, client)  # the test client's address is now known for alice
    await fail(http, client, 10)
    assert (await password_login(http, client)).status_code == 429
    assert (await login_locks.lock_state(services.db, "alice", datetime.now(UTC))) == (
        login_locks.LockState(None, 1)
    )

    # The pair's counter, and the username's (reset to 0 by the first login, kept as a row).
    assert await login_locks.unlock(services.db, "alice") == 2

    await login(http, client)
    assert await rows(services, login_known_ips, "alice") == 1  # still a known address


# --- users delete and enable ----------------------------------------------------------------------


async def test_delete_ends_the_users_logins_and_forgets_their_addresses(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    tokens = await login(http, client)
    await fail(http, client, 3)
    assert await rows(services, login_known_ips, "alice") == 1

    deleted = await admin.delete_user(services.db, "alice")
    assert deleted.username == "alice"

    assert_oauth_error(await refresh(http, client, tokens["refresh_token"]), 400, "invalid_grant")
    for table in (login_known_ips, login_user_failures, login_user_ip_failures):
        assert await rows(services, table, "alice") == 0
    with pytest.raises(admin.NotFound):
        await admin.delete_user(services.db, "alice")


async def test_a_user_recreated_under_a_deleted_name_inherits_nothing(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    first = await make_user()
    await login(http, client)
    await admin.delete_user(services.db, "alice")
    second = await make_user()
    assert second != first
    assert await rows(services, login_known_ips, "alice") == 0


async def test_enable_lets_a_disabled_user_log_in_again(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    tokens = await login(http, client)
    await admin.disable_user(services.db, "alice", datetime.now(UTC))
    assert_oauth_error(await password_login(http, client), 400, "invalid_grant")

    enabled = await admin.enable_user(services.db, "alice")
    assert enabled.disabled is False

    await login(http, client)
    # The logins that ended when the user was disabled stay ended.
    assert_oauth_error(await refresh(http, client, tokens["refresh_token"]), 400, "invalid_grant")


# --- clients rotate-secret ------------------------------------------------------------------------


async def test_rotate_secret_stops_the_old_secret_and_keeps_refresh_tokens_for_the_new_one(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    tokens = await login(http, client)

    secret, revoked = await admin.rotate_client_secret(
        services.db, client.client_id, revoke_sessions=False, now=datetime.now(UTC)
    )
    assert revoked == 0
    rotated = RegisteredClient(client.client_id, secret)

    assert_oauth_error(await refresh(http, client, tokens["refresh_token"]), 401, "invalid_client")
    assert_oauth_error(await password_login(http, client), 401, "invalid_client")
    await refreshed(http, rotated, tokens["refresh_token"])  # the same login, the new secret
    await login(http, rotated)


async def test_rotate_secret_with_revoke_sessions_ends_the_clients_logins(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    other = await make_client("other")
    await make_user()
    tokens = await login(http, client)
    elsewhere = await login(http, other)

    secret, revoked = await admin.rotate_client_secret(
        services.db, client.client_id, revoke_sessions=True, now=datetime.now(UTC)
    )
    assert revoked == 1
    rotated = RegisteredClient(client.client_id, secret)
    assert_oauth_error(await refresh(http, rotated, tokens["refresh_token"]), 400, "invalid_grant")
    await refreshed(http, other, elsewhere["refresh_token"])  # another client's: untouched


async def test_a_public_client_has_no_secret_to_rotate(
    services: Services, make_client: MakeClient
) -> None:
    client = await make_client(public=True)
    with pytest.raises(admin.AdminError, match="public"):
        await admin.rotate_client_secret(
            services.db, client.client_id, revoke_sessions=False, now=datetime.now(UTC)
        )
    with pytest.raises(admin.NotFound):
        await admin.rotate_client_secret(
            services.db, "no-such-client", revoke_sessions=False, now=datetime.now(UTC)
        )


# --- clients update -------------------------------------------------------------------------------


async def test_update_changes_only_the_fields_given(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client(scopes=("read", "write"))
    await make_user()
    updated = await admin.update_client(
        services.db, services.settings, client.client_id, ClientUpdate(scopes=("read",))
    )
    assert updated.scopes == ("read",)
    assert updated.grant_types == frozenset({"password", "refresh_token"})
    assert (await login(http, client))["scope"] == "read"


@pytest.mark.parametrize(
    ("public", "change", "message"),
    [
        (True, ClientUpdate(grant_types=frozenset({"client_credentials"})), "client_credentials"),
        (True, ClientUpdate(can_introspect=True), "introspect"),
        (False, ClientUpdate(scopes=("a b",)), "scope"),
        (False, ClientUpdate(access_token_ttl=100_000), "ACCESS_TOKEN_TTL"),
        (False, ClientUpdate(name=""), "name"),
        (False, ClientUpdate(grant_types=frozenset({"authorization_code"})), "redirect-uri"),
        (False, ClientUpdate(redirect_uris=("https://app.example/cb",)), "authorization_code"),
        (False, ClientUpdate(consent=True), "authorization_code"),
        (
            False,
            ClientUpdate(
                grant_types=frozenset({"authorization_code"}),
                redirect_uris=("http://localhost:3000/cb",),
            ),
            "localhost",
        ),
    ],
)
async def test_update_checks_what_create_checks(
    services: Services, make_client: MakeClient, public: bool, change: ClientUpdate, message: str
) -> None:
    client = await make_client(public=public)
    with pytest.raises(admin.AdminError, match=message):
        await admin.update_client(services.db, services.settings, client.client_id, change)
    unchanged = await admin.get_client(services.db, client.client_id)
    assert unchanged.scopes == ("read", "write")


async def test_update_can_move_a_client_to_sign_in_at_authorize(
    services: Services, make_client: MakeClient
) -> None:
    client = await make_client(public=True)
    change = ClientUpdate(
        grant_types=frozenset({"authorization_code", "refresh_token"}),
        redirect_uris=("https://app.example/callback",),
        consent=True,
    )
    updated = await admin.update_client(services.db, services.settings, client.client_id, change)
    assert updated.grant_types == frozenset({"authorization_code", "refresh_token"})
    assert (updated.redirect_uris, updated.consent) == (("https://app.example/callback",), True)
    # Its redirect URIs cannot then be taken away while it has the grant.
    with pytest.raises(admin.AdminError, match="redirect-uri"):
        await admin.update_client(
            services.db, services.settings, client.client_id, ClientUpdate(redirect_uris=())
        )
