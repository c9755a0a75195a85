"""The refresh_token grant over HTTP (SPEC "Refresh tokens", RFC 6749 §6, RFC 9700 §4.14.2).

Rotation, reuse detection that revokes the whole family, cross-client presentation, expiry and the
family's absolute age limit, scope narrowing, and the failures that must not use a token up.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable

import httpx
import pytest

from authserver import admin
from authserver.services import Services
from authserver.store.clients import ClientUpdate
from tests.conftest import PASSWORD, Clock, RegisteredClient
from tests.helpers import (
    assert_oauth_error,
    jwt_parts,
    login,
    metric_value,
    password_login,
    refresh,
    refreshed,
)

MakeClient = Callable[..., Awaitable[RegisteredClient]]
MakeUser = Callable[..., Awaitable[str]]

REUSE_METRIC = "authserver_refresh_reuse_detected_total"
SHORT_LIVED = {"refresh_token_ttl": 100, "refresh_family_max_age": 250}
NEW_PASSWORD = "a completely different passphrase"


async def assert_refused(http: httpx.AsyncClient, client: RegisteredClient, token: str) -> None:
    assert_oauth_error(await refresh(http, client, token), 400, "invalid_grant")


# --- rotation -----------------------------------------------------------------------------------


async def test_every_refresh_returns_a_new_refresh_token_and_a_fresh_access_token(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    user_id = await make_user()
    first = await login(http, client)
    seen_refresh = {first["refresh_token"]}
    seen_access = {first["access_token"]}
    token = first["refresh_token"]
    for _ in range(3):
        response = await refresh(http, client, token)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["pragma"] == "no-cache"
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 900
        assert body["scope"] == "read write"
        assert body["refresh_token"] not in seen_refresh
        assert body["access_token"] not in seen_access
        assert jwt_parts(body["access_token"])[1]["sub"] == user_id
        seen_refresh.add(body["refresh_token"])
        seen_access.add(body["access_token"])
        token = body["refresh_token"]


async def test_refresh_token_is_opaque_and_carries_at_least_256_bits(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    token = (await login(http, client))["refresh_token"]
    assert token.count(".") == 0  # not a JWT: nothing for a client to decode
    assert len(token) >= 43  # 256 bits in URL-safe base64 need at least 43 characters
    assert token != (await refreshed(http, client, token))["refresh_token"]


async def test_presented_refresh_token_stops_working_after_rotation(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    original = (await login(http, client))["refresh_token"]
    await refreshed(http, client, original)
    await assert_refused(http, client, original)


# --- reuse detection ----------------------------------------------------------------------------


@pytest.mark.parametrize("replayed", [0, 1], ids=["oldest_token", "immediate_predecessor"])
async def test_reuse_of_a_rotated_token_is_refused_and_revokes_the_newest_token(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, replayed: int
) -> None:
    client = await make_client()
    await make_user()
    chain = [(await login(http, client))["refresh_token"]]
    for _ in range(2):
        chain.append((await refreshed(http, client, chain[-1]))["refresh_token"])
    newest = chain[-1]  # never presented: only the family revocation can kill it

    await assert_refused(http, client, chain[replayed])
    await assert_refused(http, client, newest)


async def test_reuse_revokes_only_that_login_not_the_users_other_sessions(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    stolen = (await login(http, client))["refresh_token"]
    other_session = (await login(http, client))["refresh_token"]
    successor = (await refreshed(http, client, stolen))["refresh_token"]

    await assert_refused(http, client, stolen)

    await assert_refused(http, client, successor)
    await refreshed(http, client, other_session)


async def test_reuse_with_a_wider_scope_still_counts_as_reuse(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    """An attacker replaying a stolen, rotated token must not escape reuse detection by making
    the request fail scope validation first."""
    client = await make_client(scopes=("read", "write", "admin"))
    await make_user()
    stolen = (await login(http, client, scope="read"))["refresh_token"]
    successor = (await refreshed(http, client, stolen))["refresh_token"]

    response = await refresh(http, client, stolen, scope="read admin")
    assert_oauth_error(response, 400, "invalid_grant")

    await assert_refused(http, client, successor)


async def test_reuse_increments_the_reuse_detected_metric(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    original = (await login(http, client))["refresh_token"]
    await refreshed(http, client, original)
    before = await metric_value(http, REUSE_METRIC)

    await assert_refused(http, client, original)

    assert await metric_value(http, REUSE_METRIC) == before + 1


async def test_refused_tokens_that_were_never_rotated_do_not_count_as_reuse(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    owner = await make_client("owner")
    other = await make_client("other")
    await make_user()
    token = (await login(http, owner))["refresh_token"]

    await assert_refused(http, other, token)
    await assert_refused(http, owner, "asrt_" + secrets.token_urlsafe(32))

    assert await metric_value(http, REUSE_METRIC) == 0


# --- another client's token ---------------------------------------------------------------------


async def test_token_of_another_client_is_refused_and_revokes_nothing(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    owner = await make_client("owner")
    intruder = await make_client("intruder")
    await make_user()
    token = (await login(http, owner))["refresh_token"]

    await assert_refused(http, intruder, token)

    await refreshed(http, owner, token)


async def test_another_client_replaying_a_rotated_token_cannot_revoke_the_owners_session(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    """Reuse detection belongs to the owner: a foreign client presenting an old token of the
    owner's family must not be able to end the owner's login (a denial of service)."""
    owner = await make_client("owner")
    intruder = await make_client("intruder")
    await make_user()
    old = (await login(http, owner))["refresh_token"]
    current = (await refreshed(http, owner, old))["refresh_token"]

    await assert_refused(http, intruder, old)

    await refreshed(http, owner, current)


async def test_token_of_another_client_with_a_wider_scope_answers_invalid_grant(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    """The intruder learns nothing about the token's scope: invalid_grant, not invalid_scope."""
    owner = await make_client("owner", scopes=("read",))
    intruder = await make_client("intruder", scopes=("read", "write"))
    await make_user()
    token = (await login(http, owner))["refresh_token"]

    response = await refresh(http, intruder, token, scope="read write")
    assert_oauth_error(response, 400, "invalid_grant")

    await refreshed(http, owner, token)


async def test_public_client_cannot_use_a_confidential_clients_token(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    owner = await make_client("owner")
    spa = await make_client("spa", public=True)
    await make_user()
    token = (await login(http, owner))["refresh_token"]

    await assert_refused(http, spa, token)

    await refreshed(http, owner, token)


# --- malformed and unknown tokens ---------------------------------------------------------------


@pytest.mark.parametrize(
    "presented",
    [
        "garbage",
        "asrt_" + secrets.token_urlsafe(32),
        secrets.token_urlsafe(32),
        "x" * 8000,
        "ünïcödé-token",
        "' OR 1=1 --",
    ],
    ids=["garbage", "well_formed_unknown", "no_prefix", "long", "unicode", "sql"],
)
async def test_unknown_refresh_token_is_invalid_grant(
    http: httpx.AsyncClient, make_client: MakeClient, presented: str
) -> None:
    client = await make_client()
    await assert_refused(http, client, presented)


async def test_missing_refresh_token_is_invalid_request(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await make_client()
    response = await http.post("/token", data={"grant_type": "refresh_token"}, auth=client.basic)
    assert_oauth_error(response, 400, "invalid_request")


async def test_empty_refresh_token_is_invalid_request(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await make_client()
    response = await http.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": ""}, auth=client.basic
    )
    assert_oauth_error(response, 400, "invalid_request")


async def test_repeated_refresh_token_parameter_is_invalid_request_and_uses_nothing_up(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    token = (await login(http, client))["refresh_token"]
    response = await http.post(
        "/token",
        content=f"grant_type=refresh_token&refresh_token={token}&refresh_token={token}",
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=client.basic,
    )
    assert_oauth_error(response, 400, "invalid_request")

    await refreshed(http, client, token)


# --- lifetimes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [SHORT_LIVED], indirect=True)
async def test_refresh_token_expires_after_refresh_token_ttl(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    client = await make_client()
    await make_user()
    early = (await login(http, client))["refresh_token"]
    clock.advance(50)
    late = (await login(http, client))["refresh_token"]
    clock.advance(51)  # `early` is 101 s old, `late` 51 s

    await assert_refused(http, client, early)
    await refreshed(http, client, late)


@pytest.mark.parametrize("settings_overrides", [SHORT_LIVED], indirect=True)
async def test_refresh_token_still_works_just_before_its_ttl(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    client = await make_client()
    await make_user()
    token = (await login(http, client))["refresh_token"]
    clock.advance(99)
    await refreshed(http, client, token)


@pytest.mark.parametrize("settings_overrides", [SHORT_LIVED], indirect=True)
async def test_expired_token_is_refused_without_revoking_the_family_successor(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    """An expired token that was never used is not reuse: the answer is just invalid_grant."""
    client = await make_client()
    await make_user()
    token = (await login(http, client))["refresh_token"]
    clock.advance(101)
    await assert_refused(http, client, token)
    assert await metric_value(http, REUSE_METRIC) == 0


@pytest.mark.parametrize("settings_overrides", [SHORT_LIVED], indirect=True)
async def test_rotation_renews_the_token_ttl(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    client = await make_client()
    await make_user()
    token = (await login(http, client))["refresh_token"]
    clock.advance(90)
    token = (await refreshed(http, client, token))["refresh_token"]
    clock.advance(90)  # 180 s after the login: past the first token's TTL, not this one's
    await refreshed(http, client, token)


@pytest.mark.parametrize("settings_overrides", [SHORT_LIVED], indirect=True)
async def test_refreshing_every_90_seconds_dies_at_the_family_max_age(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    """TTL 100 s, family max age 250 s: refreshes at 90 s and 180 s succeed; the token issued at
    180 s is only 90 s old at 270 s (inside its own TTL) but the login is 270 s old."""
    client = await make_client()
    await make_user()
    token = (await login(http, client))["refresh_token"]
    for _ in range(2):
        clock.advance(90)
        token = (await refreshed(http, client, token))["refresh_token"]
    clock.advance(90)

    await assert_refused(http, client, token)

    fresh = (await login(http, client))["refresh_token"]  # a new login starts a new family
    await refreshed(http, client, fresh)


@pytest.mark.parametrize("settings_overrides", [SHORT_LIVED], indirect=True)
async def test_token_rotated_near_the_family_limit_dies_with_the_family(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    client = await make_client()
    await make_user()
    token = (await login(http, client))["refresh_token"]
    for _ in range(2):
        clock.advance(90)
        token = (await refreshed(http, client, token))["refresh_token"]
    clock.advance(60)  # 240 s: still inside the family's 250 s
    token = (await refreshed(http, client, token))["refresh_token"]
    clock.advance(11)  # 251 s: the new token is 11 s old, the family is over

    await assert_refused(http, client, token)


# --- scope --------------------------------------------------------------------------------------


async def test_narrower_scope_narrows_the_access_token_only(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    first = await login(http, client)
    assert first["scope"] == "read write"

    narrowed = await refreshed(http, client, first["refresh_token"], scope="read")
    assert narrowed["scope"] == "read"
    assert jwt_parts(narrowed["access_token"])[1]["scope"] == "read"

    widened_again = await refreshed(http, client, narrowed["refresh_token"], scope="read write")
    assert widened_again["scope"] == "read write"
    assert jwt_parts(widened_again["access_token"])[1]["scope"] == "read write"

    default = await refreshed(http, client, widened_again["refresh_token"])
    assert default["scope"] == "read write"


async def test_refresh_drops_a_scope_since_removed_from_the_client(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    """Security review finding 6 (issue 15): a refresh kept issuing a scope the operator had
    removed from the client. Every refresh grants the login's scope as far as the client may
    still have it; the login keeps its scope, so putting the scope back restores it."""
    client = await make_client(scopes=("read", "write"))
    await make_user()
    token = (await login(http, client))["refresh_token"]
    await admin.update_client(
        services.db, services.settings, client.client_id, ClientUpdate(scopes=("read",))
    )

    body = await refreshed(http, client, token)
    assert body["scope"] == "read"
    assert jwt_parts(body["access_token"])[1]["scope"] == "read"
    asked = await refresh(http, client, body["refresh_token"], scope="read write")
    assert_oauth_error(asked, 400, "invalid_scope")  # SPEC: a scope not allowed
    token = (await refreshed(http, client, body["refresh_token"]))["refresh_token"]  # not used up

    await admin.update_client(
        services.db, services.settings, client.client_id, ClientUpdate(scopes=("read", "write"))
    )
    assert (await refreshed(http, client, token))["scope"] == "read write"


async def test_refresh_drops_a_scope_since_removed_from_scopes(
    http: httpx.AsyncClient,
    services: Services,
    make_client: MakeClient,
    make_user: MakeUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = await make_client(scopes=("read", "write"))
    await make_user()
    token = (await login(http, client))["refresh_token"]
    # The operator restarts the server with SCOPES no longer listing "write".
    restarted = services.settings.model_copy(update={"scopes": ["read"]})
    monkeypatch.setattr(services, "settings", restarted)

    body = await refreshed(http, client, token)
    assert body["scope"] == "read"
    assert jwt_parts(body["access_token"])[1]["scope"] == "read"
    asked = await refresh(http, client, body["refresh_token"], scope="write")
    assert_oauth_error(asked, 400, "invalid_scope")


async def test_refresh_when_none_of_the_logins_scopes_is_left_grants_an_empty_scope(
    http: httpx.AsyncClient,
    services: Services,
    make_client: MakeClient,
    make_user: MakeUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As the password grant does for a client with no scope left: a token that grants nothing
    (and says so), not an error; the login stays, for when a scope comes back."""
    client = await make_client(scopes=("read", "write"))
    await make_user()
    token = (await login(http, client, scope="write"))["refresh_token"]
    restarted = services.settings.model_copy(update={"scopes": ["read"]})
    monkeypatch.setattr(services, "settings", restarted)

    body = await refreshed(http, client, token)
    assert body["scope"] == ""
    assert jwt_parts(body["access_token"])[1]["scope"] == ""
    assert (await login(http, client))["scope"] == "read"  # the password grant agrees


async def test_refresh_without_scope_keeps_the_scope_of_the_login(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client(scopes=("read", "write", "admin"))
    await make_user()
    token = (await login(http, client, scope="write"))["refresh_token"]
    body = await refreshed(http, client, token)
    assert body["scope"] == "write"
    assert jwt_parts(body["access_token"])[1]["scope"] == "write"


@pytest.mark.parametrize(
    "requested",
    ["read write", "write", "admin", "read admin"],
    ids=["granted_plus_registered", "registered_not_granted", "unregistered", "plus_unregistered"],
)
async def test_wider_scope_is_invalid_scope_and_leaves_the_token_usable(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, requested: str
) -> None:
    client = await make_client()
    await make_user()
    token = (await login(http, client, scope="read"))["refresh_token"]

    assert_oauth_error(await refresh(http, client, token, scope=requested), 400, "invalid_scope")

    body = await refreshed(http, client, token)
    assert body["scope"] == "read"


# --- client authentication ----------------------------------------------------------------------


async def test_wrong_client_secret_is_invalid_client_and_leaves_the_token_usable(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    token = (await login(http, client))["refresh_token"]

    response = await http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": token},
        auth=httpx.BasicAuth(client.client_id, "not-the-secret"),
    )
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"] == 'Basic realm="authserver"'

    await refreshed(http, client, token)


async def test_confidential_client_without_its_secret_is_invalid_client_and_uses_nothing_up(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    token = (await login(http, client))["refresh_token"]

    response = await http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": token, "client_id": client.client_id},
    )
    assert_oauth_error(response, 401, "invalid_client")

    await refreshed(http, client, token)


async def test_refresh_with_client_secret_post_works(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    token = (await login(http, client))["refresh_token"]
    assert client.secret is not None
    response = await http.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": token,
            "client_id": client.client_id,
            "client_secret": client.secret,
        },
    )
    assert response.status_code == 200, response.text


async def test_public_client_refreshes_with_its_client_id_only(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    spa = await make_client("spa", public=True)
    user_id = await make_user()
    token = (await login(http, spa))["refresh_token"]

    body = await refreshed(http, spa, token)
    assert jwt_parts(body["access_token"])[1]["sub"] == user_id
    await refreshed(http, spa, body["refresh_token"])


async def test_public_client_refresh_without_client_id_is_invalid_client(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    spa = await make_client("spa", public=True)
    await make_user()
    token = (await login(http, spa))["refresh_token"]

    response = await http.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": token}
    )
    assert_oauth_error(response, 401, "invalid_client")

    await refreshed(http, spa, token)


# --- user changes -------------------------------------------------------------------------------


async def test_disabling_the_user_revokes_every_refresh_token_of_that_user(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    make_user: MakeUser,
    services: Services,
    clock: Clock,
) -> None:
    web = await make_client("web")
    mobile = await make_client("mobile", public=True)
    await make_user("alice")
    await make_user("bob")
    alice_tokens = [
        (await login(http, web))["refresh_token"],
        (await login(http, mobile))["refresh_token"],
    ]
    rotated = (await refreshed(http, web, alice_tokens[0]))["refresh_token"]
    alice_tokens[0] = rotated
    bob_token = (await login(http, web, "bob"))["refresh_token"]

    await admin.disable_user(services.db, "alice", clock())

    await assert_refused(http, web, alice_tokens[0])
    await assert_refused(http, mobile, alice_tokens[1])
    assert_oauth_error(await password_login(http, web), 400, "invalid_grant")
    await refreshed(http, web, bob_token)


async def test_changing_the_password_revokes_every_refresh_token_of_that_user(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    make_user: MakeUser,
    services: Services,
    clock: Clock,
) -> None:
    client = await make_client()
    await make_user("alice")
    await make_user("bob")
    alice_tokens = [(await login(http, client))["refresh_token"] for _ in range(2)]
    bob_token = (await login(http, client, "bob"))["refresh_token"]

    await admin.set_password(services.db, services.passwords, "alice", NEW_PASSWORD, clock())

    for token in alice_tokens:
        await assert_refused(http, client, token)
    await refreshed(http, client, bob_token)
    assert_oauth_error(await password_login(http, client, password=PASSWORD), 400, "invalid_grant")
    fresh = await password_login(http, client, password=NEW_PASSWORD)
    assert fresh.status_code == 200, fresh.text
    await refreshed(http, client, fresh.json()["refresh_token"])


# --- sid ----------------------------------------------------------------------------------------


async def test_sid_is_stable_across_rotations_and_differs_between_logins(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    first = await login(http, client)
    sid = jwt_parts(first["access_token"])[1]["sid"]
    uuid.UUID(sid)
    token = first["refresh_token"]
    for _ in range(3):
        body = await refreshed(http, client, token)
        assert jwt_parts(body["access_token"])[1]["sid"] == sid
        token = body["refresh_token"]

    second = await login(http, client)
    assert jwt_parts(second["access_token"])[1]["sid"] != sid


# --- grant permission ---------------------------------------------------------------------------


async def test_client_without_the_refresh_grant_gets_no_refresh_token_and_cannot_refresh(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    password_only = await make_client("password-only", grants=("password",))
    full = await make_client("full")
    await make_user()
    body = await login(http, password_only)
    assert "refresh_token" not in body
    token = (await login(http, full))["refresh_token"]

    response = await refresh(http, password_only, token)
    assert_oauth_error(response, 400, "unauthorized_client")

    await refreshed(http, full, token)
