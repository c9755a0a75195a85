"""POST /revoke (RFC 7009; SPEC "/revoke", "Details that tests rely on").

A refresh token takes its whole family with it; an access token is recorded by `jti` until it
expires and shows in introspection, without touching its family; another client's or an
unknown token gets the same 200 and changes nothing.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable

import httpx
import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import RSAKey
from sqlalchemy import select

from authserver.services import Services
from authserver.store.tables import refresh_families, revoked_access_tokens
from tests.conftest import ISSUER, Clock, RegisteredClient
from tests.helpers import assert_uncached_oauth_error, jwt_parts, login, refresh, refreshed
from tests.revocation_helpers import INACTIVE, introspect, refresh_refused, revoke, revoked

MakeClient = Callable[..., Awaitable[RegisteredClient]]
MakeUser = Callable[..., Awaitable[str]]


@pytest.fixture
async def auditor(make_client: MakeClient) -> RegisteredClient:
    """A resource server's client, allowed to introspect."""
    return await make_client("auditor", grants=("client_credentials",), introspect=True)


# --- refresh tokens -----------------------------------------------------------------------------


async def test_revoking_a_refresh_token_revokes_every_token_of_its_family(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    make_user: MakeUser,
    auditor: RegisteredClient,
) -> None:
    client = await make_client()
    await make_user()
    first = await login(http, client)
    second = await refreshed(http, client, first["refresh_token"])
    third = await refreshed(http, client, second["refresh_token"])
    other_login = await login(http, client)

    await revoked(http, client, third["refresh_token"])

    for body in (first, second, third):
        assert await refresh_refused(http, client, body["refresh_token"])
        assert await introspect(http, auditor, body["refresh_token"]) == INACTIVE
        assert await introspect(http, auditor, body["access_token"]) == INACTIVE
    # Another login of the same user is another family: untouched.
    await refreshed(http, client, other_login["refresh_token"])


async def test_revoking_an_already_rotated_refresh_token_ends_the_login_too(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    """Logout with a stale token still logs out: the family, not the one token, is revoked."""
    client = await make_client()
    await make_user()
    first = await login(http, client)
    latest = await refreshed(http, client, first["refresh_token"])

    await revoked(http, client, first["refresh_token"])

    assert await refresh_refused(http, client, latest["refresh_token"])


async def test_a_revoked_family_cannot_be_refreshed_even_by_a_rotation_in_flight(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    """Revocation racing a refresh of the same token: whichever commits first, nothing of the
    family works afterwards (a successor minted by the race is in a revoked family)."""
    client = await make_client()
    await make_user()
    for _ in range(5):
        token = (await login(http, client))["refresh_token"]
        refreshing, revoking = await asyncio.gather(
            refresh(http, client, token), revoke(http, client, token)
        )
        assert revoking.status_code == 200, revoking.text
        assert refreshing.status_code in (200, 400), refreshing.text
        if refreshing.status_code == 200:
            assert await refresh_refused(http, client, refreshing.json()["refresh_token"])
        assert await refresh_refused(http, client, token)


async def test_refresh_token_of_another_client_is_not_revoked(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    owner = await make_client("owner")
    stranger = await make_client("stranger")
    public_stranger = await make_client("public-stranger", public=True)
    await make_user()
    token = (await login(http, owner))["refresh_token"]

    await revoked(http, stranger, token)
    await revoked(http, public_stranger, token)

    await refreshed(http, owner, token)


async def test_public_client_revokes_its_own_refresh_token_with_its_client_id(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    mobile = await make_client("mobile", public=True)
    await make_user()
    token = (await login(http, mobile))["refresh_token"]

    await revoked(http, mobile, token)

    assert await refresh_refused(http, mobile, token)


@pytest.mark.parametrize("hint", ["refresh_token", "access_token", "something_else"])
async def test_token_type_hint_never_prevents_revocation(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, hint: str
) -> None:
    """RFC 7009 §2.1: a wrong hint extends the search; an unknown one may be ignored."""
    client = await make_client()
    await make_user()
    tokens = await login(http, client)

    await revoked(http, client, tokens["refresh_token"], token_type_hint=hint)

    assert await refresh_refused(http, client, tokens["refresh_token"])


async def test_revoking_twice_answers_200_both_times(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, services: Services
) -> None:
    client = await make_client()
    await make_user()
    tokens = await login(http, client)
    await revoked(http, client, tokens["refresh_token"])
    async with services.db.statement() as conn:
        first_revoked_at = (await conn.execute(select(refresh_families.c.revoked_at))).scalar()

    await revoked(http, client, tokens["refresh_token"])
    await revoked(http, client, tokens["access_token"])
    await revoked(http, client, tokens["access_token"])

    async with services.db.statement() as conn:
        families = (
            await conn.execute(
                select(refresh_families.c.revoked_at, refresh_families.c.revoked_reason)
            )
        ).all()
    assert families == [(first_revoked_at, "client_revoked")]


# --- access tokens ------------------------------------------------------------------------------


async def test_revoked_access_token_is_inactive_but_its_family_lives_on(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    make_user: MakeUser,
    auditor: RegisteredClient,
) -> None:
    client = await make_client()
    await make_user()
    tokens = await login(http, client)
    assert (await introspect(http, auditor, tokens["access_token"]))["active"] is True

    await revoked(http, client, tokens["access_token"], token_type_hint="access_token")

    assert await introspect(http, auditor, tokens["access_token"]) == INACTIVE
    assert (await introspect(http, auditor, tokens["refresh_token"]))["active"] is True
    fresh = await refreshed(http, client, tokens["refresh_token"])
    assert (await introspect(http, auditor, fresh["access_token"]))["active"] is True


async def test_revoked_access_token_is_remembered_until_it_expires(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    make_user: MakeUser,
    services: Services,
) -> None:
    client = await make_client(access_token_ttl=120)
    await make_user()
    access_token = (await login(http, client))["access_token"]
    claims = jwt_parts(access_token)[1]

    await revoked(http, client, access_token)

    async with services.db.statement() as conn:
        rows = (await conn.execute(select(revoked_access_tokens))).all()
    assert len(rows) == 1
    assert rows[0].jti == claims["jti"]
    assert rows[0].client_id == client.client_id
    assert int(rows[0].expires_at.timestamp()) == claims["exp"] == claims["iat"] + 120


async def test_client_credentials_access_token_can_be_revoked(
    http: httpx.AsyncClient, make_client: MakeClient, auditor: RegisteredClient
) -> None:
    service = await make_client("service", grants=("client_credentials",))
    response = await http.post(
        "/token", data={"grant_type": "client_credentials"}, auth=service.basic
    )
    access_token = response.json()["access_token"]

    await revoked(http, service, access_token)

    assert await introspect(http, auditor, access_token) == INACTIVE


async def test_access_token_of_another_client_is_not_revoked(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    make_user: MakeUser,
    auditor: RegisteredClient,
    services: Services,
) -> None:
    owner = await make_client("owner")
    stranger = await make_client("stranger")
    await make_user()
    access_token = (await login(http, owner))["access_token"]

    await revoked(http, stranger, access_token)
    await revoked(http, auditor, access_token)  # even a client allowed to introspect

    assert (await introspect(http, auditor, access_token))["active"] is True
    async with services.db.statement() as conn:
        assert (await conn.execute(select(revoked_access_tokens))).all() == []


async def test_expired_access_token_is_not_recorded(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    make_user: MakeUser,
    services: Services,
    clock: Clock,
) -> None:
    client = await make_client()
    await make_user()
    access_token = (await login(http, client))["access_token"]
    clock.advance(901)

    await revoked(http, client, access_token)

    async with services.db.statement() as conn:
        assert (await conn.execute(select(revoked_access_tokens))).all() == []


# --- unknown, foreign, malformed: 200 and no effect ---------------------------------------------


def foreign_access_token(claims: dict[str, object]) -> str:
    """Our claims, signed by a key this server never published."""
    key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True)
    return jose_jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": key.kid}, claims, key)


async def test_unknown_and_malformed_tokens_get_the_same_200_as_a_real_one(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    make_user: MakeUser,
    auditor: RegisteredClient,
) -> None:
    """RFC 7009 §2.2: the answer never tells whether the token existed."""
    client = await make_client()
    await make_user()
    tokens = await login(http, client)
    claims = jwt_parts(tokens["access_token"])[1]
    header, payload, signature = tokens["access_token"].split(".")
    bogus = [
        "asrt_" + secrets.token_urlsafe(32),
        secrets.token_urlsafe(32),
        "x",
        "a.b.c",
        f"{header}.{payload}.{signature[:-4]}AAAA",
        foreign_access_token(claims),
        "é" * 40,
        "." * 200,
    ]
    responses = [await revoke(http, client, token) for token in bogus]
    real = await revoke(http, client, tokens["refresh_token"])

    for response in [*responses, real]:
        assert response.status_code == 200, response.text
        assert response.content == real.content
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["pragma"] == "no-cache"
        assert response.headers["content-type"] == "application/json"
    assert await refresh_refused(http, client, tokens["refresh_token"])


async def test_foreign_token_with_our_claims_revokes_nothing(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    make_user: MakeUser,
    auditor: RegisteredClient,
) -> None:
    client = await make_client()
    await make_user()
    tokens = await login(http, client)
    forged = foreign_access_token(jwt_parts(tokens["access_token"])[1])

    await revoked(http, client, forged)

    assert (await introspect(http, auditor, tokens["access_token"]))["active"] is True


# --- request errors -----------------------------------------------------------------------------


async def test_revoke_without_client_authentication_is_invalid_client(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    token = (await login(http, client))["refresh_token"]

    responses = [
        await http.post("/revoke", data={"token": token}),
        await http.post("/revoke", data={"token": token}, auth=(client.client_id, "wrong")),
        await http.post("/revoke", data={"token": token, "client_id": client.client_id}),
        await http.post("/revoke", data={"token": token}, auth=("nobody", "secret")),
    ]

    for response in responses:
        assert_uncached_oauth_error(response, 401, "invalid_client")
        assert response.headers["www-authenticate"] == 'Basic realm="authserver"'
    await refreshed(http, client, token)


async def test_revoke_accepts_client_secret_post(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    token = (await login(http, client))["refresh_token"]
    assert client.secret is not None

    response = await http.post(
        "/revoke",
        data={"token": token, "client_id": client.client_id, "client_secret": client.secret},
    )

    assert response.status_code == 200, response.text
    assert await refresh_refused(http, client, token)


async def test_revoke_without_a_token_is_invalid_request(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await make_client()
    for data in ({}, {"token": ""}, {"token_type_hint": "refresh_token"}):
        response = await http.post("/revoke", data=data, auth=client.basic)
        assert_uncached_oauth_error(response, 400, "invalid_request")


async def test_revoke_has_the_token_endpoints_strict_form_rules(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    token = (await login(http, client))["refresh_token"]

    as_json = await http.post("/revoke", json={"token": token}, auth=client.basic)
    repeated = await http.post(
        "/revoke",
        content=f"token={token}&token=other",
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=client.basic,
    )
    control = await http.post("/revoke", data={"token": token + "\x00"}, auth=client.basic)
    too_big = await http.post("/revoke", data={"token": "a" * 70_000}, auth=client.basic)

    for response in (as_json, repeated, control):
        assert_uncached_oauth_error(response, 400, "invalid_request")
    assert_uncached_oauth_error(too_big, 413, "invalid_request")
    await refreshed(http, client, token)


async def test_revoke_only_answers_post(http: httpx.AsyncClient) -> None:
    response = await http.get("/revoke")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


async def test_issuer_of_the_metadata_document_names_the_revocation_endpoint(
    http: httpx.AsyncClient,
) -> None:
    document = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert document["revocation_endpoint"] == f"{ISSUER}/revoke"
