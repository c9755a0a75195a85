"""grant_type=password (RFC 6749 §4.3): response shape, credential failures, scope, and the
login limits of SPEC "Login limits in detail"."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest

from authserver import admin
from authserver.services import Services
from tests.conftest import PASSWORD, Clock, RegisteredClient
from tests.helpers import (
    assert_uncached_oauth_error,
    insert_client,
    jwt_parts,
    password_login,
    refresh,
)

MakeClient = Callable[..., Awaitable[RegisteredClient]]
MakeUser = Callable[..., Awaitable[str]]

WRONG = "not the password"


def retry_after(response: httpx.Response) -> int:
    """429 with `invalid_request` and a Retry-After of whole seconds (SPEC)."""
    assert_uncached_oauth_error(response, 429, "invalid_request")
    value = response.headers["retry-after"]
    assert value.isdigit(), value
    return int(value)


async def fail(
    http: httpx.AsyncClient, client: RegisteredClient, username: str = "alice", times: int = 1
) -> None:
    """`times` wrong-password attempts, each answered invalid_grant."""
    for attempt in range(times):
        response = await password_login(http, client, username, WRONG)
        assert response.status_code == 400, (attempt, response.text)
        assert response.json()["error"] == "invalid_grant", (attempt, response.text)


# --- success -----------------------------------------------------------------------------------


async def test_success_response_has_exactly_the_rfc_6749_fields(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    response = await password_login(http, client)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert isinstance(body["expires_in"], int)
    assert body["scope"] == "read write"
    assert isinstance(body["refresh_token"], str)
    assert len(body["refresh_token"]) >= 43  # 256 bits, base64url
    assert body["refresh_token"] != body["access_token"]


async def test_access_token_describes_the_user_and_the_login(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    client = await make_client()
    user_id = await make_user()
    response = await password_login(http, client, scope="read")
    assert response.status_code == 200, response.text
    header, claims = jwt_parts(response.json()["access_token"])
    assert header["alg"] == "RS256"
    assert header["typ"] == "at+jwt"
    assert claims["sub"] == user_id
    assert claims["client_id"] == client.client_id
    assert claims["scope"] == "read"
    assert claims["iss"] == "https://as.example"
    assert claims["iat"] == int(clock.now.timestamp())
    assert claims["exp"] - claims["iat"] == 900
    assert isinstance(claims["sid"], str)
    assert claims["sid"]
    assert isinstance(claims["jti"], str)


async def test_client_without_refresh_token_grant_gets_no_refresh_token(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client(grants=("password",))
    await make_user()
    response = await password_login(http, client)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"access_token", "token_type", "expires_in", "scope"}


async def test_client_access_token_ttl_sets_expires_in(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client(access_token_ttl=60)
    await make_user()
    response = await password_login(http, client)
    assert response.status_code == 200, response.text
    assert response.json()["expires_in"] == 60
    _, claims = jwt_parts(response.json()["access_token"])
    assert claims["exp"] - claims["iat"] == 60


async def test_each_login_starts_a_new_family_with_fresh_tokens(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    first = (await password_login(http, client)).json()
    second = (await password_login(http, client)).json()
    assert first["refresh_token"] != second["refresh_token"]
    assert jwt_parts(first["access_token"])[1]["sid"] != jwt_parts(second["access_token"])[1]["sid"]
    assert jwt_parts(first["access_token"])[1]["jti"] != jwt_parts(second["access_token"])[1]["jti"]


async def test_non_ascii_password_round_trips_through_the_form(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user("zoë", "pässwörd ☃ + & = %")
    response = await password_login(http, client, "zoë", "pässwörd ☃ + & = %")
    assert response.status_code == 200, response.text


# --- missing and malformed parameters -----------------------------------------------------------


@pytest.mark.parametrize("missing", ["username", "password"])
async def test_missing_credential_is_invalid_request(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, missing: str
) -> None:
    client = await make_client()
    await make_user()
    data = {"grant_type": "password", "username": "alice", "password": PASSWORD}
    del data[missing]
    response = await http.post("/token", data=data, auth=client.basic)
    assert_uncached_oauth_error(response, 400, "invalid_request")


async def test_overlong_username_is_invalid_request(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await make_client()
    response = await password_login(http, client, "a" * 256, PASSWORD)
    assert_uncached_oauth_error(response, 400, "invalid_request")


async def test_very_long_wrong_password_is_invalid_grant(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    response = await password_login(http, client, "alice", "x" * 8000)
    assert_uncached_oauth_error(response, 400, "invalid_grant")


# --- bad credentials ---------------------------------------------------------------------------


async def test_wrong_password_unknown_user_and_disabled_user_get_identical_answers(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, services: Services
) -> None:
    client = await make_client()
    await make_user("alice")
    await make_user("bob")
    await admin.disable_user(services.db, "bob", datetime.now(UTC))
    wrong_password = await password_login(http, client, "alice", WRONG)
    unknown_user = await password_login(http, client, "nobody", PASSWORD)
    disabled_user = await password_login(http, client, "bob", PASSWORD)
    for response in (wrong_password, unknown_user, disabled_user):
        assert_uncached_oauth_error(response, 400, "invalid_grant")
        assert "www-authenticate" not in response.headers
    assert wrong_password.content == unknown_user.content == disabled_user.content
    # Same headers too, apart from each request's own X-Request-ID.
    headers = [
        {name: value for name, value in response.headers.items() if name != "x-request-id"}
        for response in (wrong_password, unknown_user, disabled_user)
    ]
    assert headers[0] == headers[1] == headers[2]


async def test_disabling_a_user_stops_logins_and_their_refresh_tokens(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, services: Services
) -> None:
    client = await make_client()
    await make_user()
    login = await password_login(http, client)
    assert login.status_code == 200, login.text
    await admin.disable_user(services.db, "alice", datetime.now(UTC))
    assert_uncached_oauth_error(await password_login(http, client), 400, "invalid_grant")
    renewed = await refresh(http, client, login.json()["refresh_token"])
    assert_uncached_oauth_error(renewed, 400, "invalid_grant")


async def test_set_password_makes_the_old_password_fail_and_the_new_one_work(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, services: Services
) -> None:
    client = await make_client()
    await make_user()
    before = await password_login(http, client)
    assert before.status_code == 200, before.text
    new_password = "a brand new passphrase"
    await admin.set_password(
        services.db, services.passwords, "alice", new_password, datetime.now(UTC)
    )
    assert_uncached_oauth_error(await password_login(http, client), 400, "invalid_grant")
    after = await password_login(http, client, "alice", new_password)
    assert after.status_code == 200, after.text
    stale = await refresh(http, client, before.json()["refresh_token"])
    assert_uncached_oauth_error(stale, 400, "invalid_grant")


async def test_username_is_matched_exactly(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    for username in ("Alice", "ALICE", " alice", "alice ", "alice%", "al_ce", "al%ce"):
        response = await password_login(http, client, username, PASSWORD)
        assert_uncached_oauth_error(response, 400, "invalid_grant")


# --- scope -------------------------------------------------------------------------------------


async def test_scope_defaults_to_all_of_the_clients_scopes(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client(scopes=("read", "write", "profile:read"))
    await make_user()
    response = await password_login(http, client)
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "read write profile:read"
    assert jwt_parts(response.json()["access_token"])[1]["scope"] == "read write profile:read"


@pytest.mark.parametrize(
    ("requested", "granted"),
    [("read", "read"), ("write", "write"), ("write read", "write read"), ("read read", "read")],
)
async def test_a_subset_of_the_clients_scopes_is_granted(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    make_user: MakeUser,
    requested: str,
    granted: str,
) -> None:
    client = await make_client(scopes=("read", "write"))
    await make_user()
    response = await password_login(http, client, scope=requested)
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == granted
    assert jwt_parts(response.json()["access_token"])[1]["scope"] == granted


@pytest.mark.parametrize("requested", ["admin", "read admin", "read write admin", "READ"])
async def test_scope_wider_than_the_clients_is_invalid_scope(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, requested: str
) -> None:
    client = await make_client(scopes=("read", "write"))
    await make_user()
    response = await password_login(http, client, scope=requested)
    assert_uncached_oauth_error(response, 400, "invalid_scope")


@pytest.mark.parametrize(
    "requested",
    ["read  write", " read", "read ", 'read"', "re\\ad", "réad", "read\twrite", "read+write"],
)
async def test_malformed_scope_is_invalid_scope(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, requested: str
) -> None:
    """RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), separated by one space.

    (A tab is a control character, refused by the form parser as invalid_request.)
    """
    client = await make_client(scopes=("read", "write", "read+write"))
    await make_user()
    response = await password_login(http, client, scope=requested)
    if requested == "read+write":  # a legal token, and this client has it
        assert response.status_code == 200, response.text
        assert response.json()["scope"] == "read+write"
        return
    expected = "invalid_request" if "\t" in requested else "invalid_scope"
    assert_uncached_oauth_error(response, 400, expected)


async def test_bad_scope_with_bad_credentials_does_not_reveal_the_credentials_check(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    """The scope is checked before the password: a wrong password and an unknown user answer
    the same invalid_scope, so it reveals nothing about the credentials."""
    client = await make_client(scopes=("read",))
    await make_user()
    wrong = await password_login(http, client, "alice", WRONG, scope="admin")
    unknown = await password_login(http, client, "nobody", WRONG, scope="admin")
    assert_uncached_oauth_error(wrong, 400, "invalid_scope")
    assert wrong.content == unknown.content


@pytest.mark.parametrize("settings_overrides", [{"scopes": ["read", "write"]}])
async def test_scopes_setting_limits_what_a_client_is_granted(
    http: httpx.AsyncClient, make_user: MakeUser, services: Services
) -> None:
    """A client registered with a scope the server no longer declares never gets it."""
    client = await insert_client(
        services, secret="a client secret", grants=("password",), scopes=("read", "admin")
    )
    await make_user()
    default = await password_login(http, client)
    assert default.status_code == 200, default.text
    assert default.json()["scope"] == "read"
    assert_uncached_oauth_error(
        await password_login(http, client, scope="admin"), 400, "invalid_scope"
    )
    assert_uncached_oauth_error(
        await password_login(http, client, scope="read admin"), 400, "invalid_scope"
    )
    narrowed = await password_login(http, client, scope="read")
    assert narrowed.status_code == 200, narrowed.text


@pytest.mark.parametrize("settings_overrides", [{"scopes": ["read", "write"]}])
async def test_scopes_setting_does_not_widen_a_client(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client(scopes=("read",))
    await make_user()
    assert (await password_login(http, client)).json()["scope"] == "read"
    assert_uncached_oauth_error(
        await password_login(http, client, scope="write"), 400, "invalid_scope"
    )


# --- login limits (SPEC "Login limits in detail") ---------------------------------------------


async def test_tenth_failure_is_invalid_grant_and_eleventh_attempt_with_right_password_is_429(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    await fail(http, client, times=10)
    locked = await password_login(http, client)
    assert 55 <= retry_after(locked) <= 60
    assert "access_token" not in locked.text


async def test_nine_failures_do_not_lock(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    await fail(http, client, times=9)
    response = await password_login(http, client)
    assert response.status_code == 200, response.text


async def test_locked_username_answers_429_to_wrong_and_right_passwords_alike(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    await fail(http, client, times=10)
    right = await password_login(http, client)
    wrong = await password_login(http, client, "alice", WRONG)
    assert retry_after(right) == retry_after(wrong)
    assert right.content == wrong.content


async def test_retry_after_counts_down_and_attempts_during_the_lock_do_not_extend_it(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    client = await make_client()
    await make_user()
    await fail(http, client, times=10)
    assert retry_after(await password_login(http, client, "alice", WRONG)) == 60
    clock.advance(30)
    for _ in range(5):
        assert retry_after(await password_login(http, client, "alice", WRONG)) == 30
    clock.advance(29.5)
    assert retry_after(await password_login(http, client)) == 1
    clock.advance(1)
    response = await password_login(http, client)
    assert response.status_code == 200, response.text


async def test_after_the_lock_the_right_password_works_and_resets_the_count(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    client = await make_client()
    await make_user()
    await fail(http, client, times=10)
    retry_after(await password_login(http, client))
    clock.advance(61)
    response = await password_login(http, client)
    assert response.status_code == 200, response.text
    # Reset: a single failure no longer locks (it would lock for 120 s right after a lock) ...
    await fail(http, client)
    again = await password_login(http, client)
    assert again.status_code == 200, again.text
    # ... and it takes ten fresh consecutive failures to lock again, for 60 s.
    await fail(http, client, times=10)
    assert retry_after(await password_login(http, client)) == 60


async def test_failure_right_after_a_lock_locks_again_for_twice_as_long_capped_at_15_minutes(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    client = await make_client()
    await make_user()
    await fail(http, client, times=10)
    assert retry_after(await password_login(http, client)) == 60
    observed = []
    for _ in range(6):
        clock.advance(901)  # past any lock
        await fail(http, client)  # the failure itself still answers invalid_grant
        observed.append(retry_after(await password_login(http, client)))
    assert observed == [120, 240, 480, 900, 900, 900]


async def test_failure_right_after_a_lock_ends_relocks_for_about_120_seconds(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    client = await make_client()
    await make_user()
    await fail(http, client, times=10)
    clock.advance(61)
    await fail(http, client)
    wait = retry_after(await password_login(http, client))
    assert 115 <= wait <= 120
    clock.advance(wait + 1)
    response = await password_login(http, client)
    assert response.status_code == 200, response.text


async def test_unknown_usernames_are_limited_alike(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    await fail(http, client, "alice", times=10)
    await fail(http, client, "mallory", times=10)
    known = await password_login(http, client, "alice", WRONG)
    unknown = await password_login(http, client, "mallory", WRONG)
    assert retry_after(known) == retry_after(unknown) == 60
    assert known.content == unknown.content


async def test_lock_of_one_username_does_not_affect_another(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user("alice")
    await make_user("bob")
    await fail(http, client, "alice", times=10)
    retry_after(await password_login(http, client, "alice", PASSWORD))
    response = await password_login(http, client, "bob", PASSWORD)
    assert response.status_code == 200, response.text


async def test_lock_applies_across_clients(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    first = await make_client("first")
    second = await make_client("second", public=True)
    await make_user()
    await fail(http, first, times=10)
    retry_after(await password_login(http, second))


@pytest.mark.parametrize(
    "settings_overrides",
    [{"login_max_failures": 3, "login_lock_seconds": 10, "login_lock_max_seconds": 25}],
)
async def test_username_limits_are_configurable(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    client = await make_client()
    await make_user()
    await fail(http, client, times=3)
    assert retry_after(await password_login(http, client)) == 10
    clock.advance(11)
    await fail(http, client)
    assert retry_after(await password_login(http, client)) == 20
    clock.advance(21)
    await fail(http, client)
    assert retry_after(await password_login(http, client)) == 25


@pytest.mark.parametrize("settings_overrides", [{"login_ip_max_failures": 3}])
async def test_per_ip_limit_blocks_every_username_from_that_ip(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    client = await make_client()
    await make_user()
    for username in ("u1", "u2", "u3"):
        await fail(http, client, username)
    blocked = await password_login(http, client, "alice", PASSWORD)
    wait = retry_after(blocked)
    assert 1 <= wait <= 900
    assert retry_after(await password_login(http, client, "u4", WRONG)) == wait
    clock.advance(wait + 1)
    response = await password_login(http, client, "alice", PASSWORD)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("settings_overrides", [{"login_ip_max_failures": 3}])
async def test_per_ip_limit_counts_within_its_window_only(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    client = await make_client()
    await make_user()
    await fail(http, client, "u1")
    await fail(http, client, "u2")
    clock.advance(901)  # the 15-minute window ends
    await fail(http, client, "u3")
    response = await password_login(http, client, "alice", PASSWORD)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "settings_overrides", [{"login_max_failures": 2, "login_ip_max_failures": 2}]
)
async def test_failed_refreshes_do_not_count_towards_login_limits(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    login = await password_login(http, client)
    assert login.status_code == 200, login.text
    token = login.json()["refresh_token"]
    assert (await refresh(http, client, token)).status_code == 200
    for bogus in ("x" * 43, "y" * 43, "z", token, token):  # unknown, and reuse of a rotated one
        response = await refresh(http, client, bogus)
        assert_uncached_oauth_error(response, 400, "invalid_grant")
    await fail(http, client)  # one failure: below both limits
    response = await password_login(http, client)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("settings_overrides", [{"login_max_failures": 2}])
async def test_rejected_requests_that_never_check_a_password_do_not_count(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    """invalid_scope, a missing password or a bad client are not failed logins."""
    client = await make_client(scopes=("read",))
    await make_user()
    for _ in range(3):
        assert_uncached_oauth_error(
            await password_login(http, client, "alice", WRONG, scope="admin"), 400, "invalid_scope"
        )
        missing = await http.post(
            "/token", data={"grant_type": "password", "username": "alice"}, auth=client.basic
        )
        assert_uncached_oauth_error(missing, 400, "invalid_request")
        bad_client = await http.post(
            "/token",
            data={"grant_type": "password", "username": "alice", "password": WRONG},
            auth=(client.client_id, "wrong"),
        )
        assert_uncached_oauth_error(bad_client, 401, "invalid_client")
    response = await password_login(http, client)
    assert response.status_code == 200, response.text


async def test_disabled_user_failures_count_like_any_other(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, services: Services
) -> None:
    client = await make_client()
    await make_user()
    await admin.disable_user(services.db, "alice", datetime.now(UTC))
    for _ in range(10):
        assert_uncached_oauth_error(await password_login(http, client), 400, "invalid_grant")
    retry_after(await password_login(http, client))


async def test_concurrent_guesses_cannot_exceed_the_username_limit(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    """An attacker who sends a burst of guesses at once gets no more password checks than one
    who sends them in turn: at most ten are answered invalid_grant, the rest 429."""
    client = await make_client()
    await make_user()
    responses = await asyncio.gather(
        *(password_login(http, client, "alice", f"guess number {i}") for i in range(30))
    )
    statuses = sorted(response.status_code for response in responses)
    assert set(statuses) <= {400, 429}, statuses
    assert statuses.count(400) <= 10, statuses
    retry_after(await password_login(http, client))


@pytest.mark.parametrize("settings_overrides", [{"login_ip_max_failures": 3}])
async def test_per_ip_limit_ignores_forwarded_headers(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    """The client IP is the connection's peer: X-Forwarded-For from the request cannot reset it."""
    client = await make_client()
    await make_user()
    for i in range(3):
        spoofed = {"x-forwarded-for": f"198.51.100.{i}", "x-real-ip": f"198.51.100.{i}"}
        response = await http.post(
            "/token",
            data={"grant_type": "password", "username": f"u{i}", "password": WRONG},
            auth=client.basic,
            headers=spoofed,
        )
        assert_uncached_oauth_error(response, 400, "invalid_grant")
    spoofed = {"x-forwarded-for": "198.51.100.99", "forwarded": "for=198.51.100.99"}
    response = await http.post(
        "/token",
        data={"grant_type": "password", "username": "alice", "password": PASSWORD},
        auth=client.basic,
        headers=spoofed,
    )
    retry_after(response)


async def test_a_username_locked_weeks_ago_is_not_locked_again_by_one_failure(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    """Review finding 3: lock escalation decays. Weeks after a lock, one failure (a mistyped
    password, or an attacker's single request) is an ordinary failure, not a 15-minute lock."""
    client = await make_client()
    await make_user()
    await fail(http, client, times=10)
    for _ in range(5):  # escalate to the cap: each failure right after the lock ends
        clock.advance(retry_after(await password_login(http, client)) + 1)
        await fail(http, client)
    assert retry_after(await password_login(http, client)) == 900
    clock.advance(21 * 86400)
    await fail(http, client)
    response = await password_login(http, client)
    assert response.status_code == 200, response.text


async def test_a_failure_an_hour_after_a_lock_ended_locks_for_the_first_length(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    client = await make_client()
    await make_user()
    await fail(http, client, times=10)
    clock.advance(retry_after(await password_login(http, client)) + 1)
    await fail(http, client)  # right after the lock: doubles
    assert retry_after(await password_login(http, client)) == 120
    clock.advance(120 + 3600)
    await fail(http, client)
    assert retry_after(await password_login(http, client)) == 60
