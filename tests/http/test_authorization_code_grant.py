"""grant_type=authorization_code at /token (RFC 6749 §4.1.3, RFC 7636 §4.6; SPEC "Codes"), over
HTTP on both backends: a code is swapped once, by its client, with its verifier and redirect URI,
within CODE_TTL, while its login session lives; a replay revokes the family it started."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from authserver import admin
from authserver.services import Services
from authserver.store import audit as audit_store
from authserver.store.tables import refresh_families
from tests.conftest import Clock
from tests.helpers import assert_uncached_oauth_error, jwt_parts, refresh
from tests.sign_in import (
    REDIRECT_URI,
    MakeClient,
    MakeUser,
    code_for,
    exchange,
    pkce,
    submit,
    tokens_for,
    web_client,
)


async def introspected(services: Services, http: httpx.AsyncClient, token: str) -> bool:
    reader = await admin.create_client(
        services.db,
        services.settings,
        name="rs",
        public=False,
        grant_types=("client_credentials",),
        scopes=(),
        audiences=(),
        can_introspect=True,
        access_token_ttl=None,
        now=services.clock(),
    )
    assert reader.secret is not None
    response = await http.post(
        "/introspect", data={"token": token}, auth=(reader.client.client_id, reader.secret)
    )
    active: bool = response.json()["active"]
    return active


async def test_a_code_gives_the_password_grants_answer_for_the_signed_in_user(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    user_id = await make_user()
    client = await web_client(make_client)
    challenge = pkce()
    code = await code_for(http, client, challenge, scope="read")
    response = await exchange(http, client, code, challenge.verifier)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert (body["token_type"], body["scope"]) == ("Bearer", "read")
    header, claims = jwt_parts(body["access_token"])
    assert header["typ"] == "at+jwt"
    assert (claims["sub"], claims["client_id"], claims["scope"]) == (
        user_id,
        client.client_id,
        "read",
    )
    assert "sid" in claims
    refreshed = await refresh(http, client, body["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert jwt_parts(refreshed.json()["access_token"])[1]["sid"] == claims["sid"]


async def test_the_familys_absolute_limit_counts_from_the_sign_in_not_the_exchange(
    http: httpx.AsyncClient,
    services: Services,
    make_client: MakeClient,
    make_user: MakeUser,
    clock: Clock,
) -> None:
    await make_user()
    client = await web_client(make_client)
    signed_in_at = clock.now
    await tokens_for(http, client)
    clock.advance(3600)  # an hour later, the same browser session, no password
    body = await tokens_for(http, client)
    sid = jwt_parts(body["access_token"])[1]["sid"]
    async with services.db.read() as conn:
        expires_at = (
            await conn.execute(
                select(refresh_families.c.expires_at).where(refresh_families.c.id == uuid.UUID(sid))
            )
        ).scalar_one()
    limit = timedelta(seconds=services.settings.refresh_family_max_age)
    assert abs(expires_at - (signed_in_at + limit)) < timedelta(seconds=1)


@pytest.mark.parametrize(
    "change",
    [
        {"code_verifier": "x" * 43},  # another verifier
        {"code_verifier": "short"},  # malformed
        {"redirect_uri": "https://app.example/other"},
        {"redirect_uri": None},  # the request carried one: /token must repeat it
    ],
)
async def test_a_wrong_verifier_or_redirect_uri_is_invalid_grant_and_burns_the_code(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    make_user: MakeUser,
    change: dict[str, str | None],
) -> None:
    await make_user()
    client = await web_client(make_client)
    challenge = pkce()
    code = await code_for(http, client, challenge)
    change = dict(change)  # the parameter is shared by both backends' runs
    verifier = change.pop("code_verifier", challenge.verifier)
    assert verifier is not None
    refused = await exchange(http, client, code, verifier, **change)
    assert_uncached_oauth_error(refused, 400, "invalid_grant")
    assert_uncached_oauth_error(
        await exchange(http, client, code, challenge.verifier), 400, "invalid_grant"
    )


async def test_a_redirect_uri_left_out_of_the_request_may_be_left_out_at_token(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    await make_user()
    client = await web_client(make_client)
    for sent in (None, REDIRECT_URI):
        challenge = pkce()
        code = await code_for(http, client, challenge, redirect_uri=None)
        response = await exchange(http, client, code, challenge.verifier, redirect_uri=sent)
        assert response.status_code == 200, response.text


async def test_another_clients_code_is_invalid_grant_and_stays_usable_by_its_own(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    await make_user()
    client = await web_client(make_client)
    thief = await web_client(make_client)
    challenge = pkce()
    code = await code_for(http, client, challenge)
    assert_uncached_oauth_error(
        await exchange(http, thief, code, challenge.verifier), 400, "invalid_grant"
    )
    assert (await exchange(http, client, code, challenge.verifier)).status_code == 200
    assert "code.replay_detected" not in [
        e.event for e in await audit_store.latest(services.db, 20)
    ]


async def test_an_expired_code_is_invalid_grant(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: Clock
) -> None:
    await make_user()
    client = await web_client(make_client)
    challenge = pkce()
    code = await code_for(http, client, challenge)
    clock.advance(60)  # CODE_TTL
    assert_uncached_oauth_error(
        await exchange(http, client, code, challenge.verifier), 400, "invalid_grant"
    )


async def test_a_code_presented_again_revokes_the_family_its_first_exchange_started(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    await make_user()
    client = await web_client(make_client)
    challenge = pkce()
    code = await code_for(http, client, challenge)
    first = (await exchange(http, client, code, challenge.verifier)).json()
    for _ in range(3):
        replay = await exchange(http, client, code, challenge.verifier)
        assert_uncached_oauth_error(replay, 400, "invalid_grant")
    assert_uncached_oauth_error(
        await refresh(http, client, first["refresh_token"]), 400, "invalid_grant"
    )
    assert not await introspected(services, http, first["access_token"])
    replays = [
        e for e in await audit_store.latest(services.db, 50) if e.event == "code.replay_detected"
    ]
    assert len(replays) == 1  # one row per code, however often it is replayed


async def test_two_exchanges_of_one_code_at_once_one_wins_and_its_family_is_revoked(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    """Issue 12 §8: exactly one exchange succeeds; the other is a replay, which revokes the
    winner's family (the winner's transaction linked it to the code before committing)."""
    await make_user()
    client = await web_client(make_client)
    for _ in range(3):
        challenge = pkce()
        code = await code_for(http, client, challenge)
        results = await asyncio.gather(
            *(exchange(http, client, code, challenge.verifier) for _ in range(2))
        )
        statuses = sorted(r.status_code for r in results)
        assert statuses == [200, 400], [r.text for r in results]
        [winner] = [r.json() for r in results if r.status_code == 200]
        revoked = await refresh(http, client, winner["refresh_token"])
        assert_uncached_oauth_error(revoked, 400, "invalid_grant")


@pytest.mark.parametrize("ending", ["logout", "set_password", "disable"])
async def test_a_code_of_a_session_that_ended_before_the_exchange_is_invalid_grant(
    http: httpx.AsyncClient,
    services: Services,
    make_client: MakeClient,
    make_user: MakeUser,
    ending: str,
) -> None:
    await make_user()
    client = await web_client(make_client)
    challenge = pkce()
    code = await code_for(http, client, challenge)
    if ending == "logout":
        await submit(http, await http.get("/logout"))
    elif ending == "set_password":
        await admin.set_password(
            services.db, services.passwords, "alice", "new passphrase here", services.clock()
        )
    else:
        await admin.disable_user(services.db, "alice", services.clock())
    assert_uncached_oauth_error(
        await exchange(http, client, code, challenge.verifier), 400, "invalid_grant"
    )


@pytest.mark.parametrize("missing", ["code", "code_verifier"])
async def test_a_missing_code_or_verifier_is_invalid_request(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, missing: str
) -> None:
    await make_user()
    client = await web_client(make_client)
    challenge = pkce()
    code = await code_for(http, client, challenge)
    form = {
        "grant_type": "authorization_code",
        "client_id": client.client_id,
        "code": code,
        "code_verifier": challenge.verifier,
        "redirect_uri": REDIRECT_URI,
    }
    del form[missing]
    response = await http.post("/token", data=form)
    assert_uncached_oauth_error(response, 400, "invalid_request")
    assert (await exchange(http, client, code, challenge.verifier)).status_code == 200  # unburnt


async def test_a_confidential_client_must_authenticate_and_a_client_without_refresh_gets_none(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    await make_user()
    confidential = await web_client(make_client, public=False)
    challenge = pkce()
    code = await code_for(http, confidential, challenge)
    anonymous = await http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "client_id": confidential.client_id,
            "code": code,
            "code_verifier": challenge.verifier,
            "redirect_uri": REDIRECT_URI,
        },
    )
    assert_uncached_oauth_error(anonymous, 401, "invalid_client")
    assert (await exchange(http, confidential, code, challenge.verifier)).status_code == 200
    no_refresh = await web_client(make_client, grants=("authorization_code",))
    body = await tokens_for(http, no_refresh)
    assert "refresh_token" not in body


async def test_an_unknown_code_is_invalid_grant(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await web_client(make_client)
    response = await exchange(http, client, "not-a-code", pkce().verifier)
    assert_uncached_oauth_error(response, 400, "invalid_grant")


async def test_a_client_not_registered_for_the_grant_is_unauthorized_client(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await make_client(public=True)
    response = await exchange(http, client, "any", pkce().verifier)
    assert_uncached_oauth_error(response, 400, "unauthorized_client")
