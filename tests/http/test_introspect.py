"""POST /introspect (RFC 7662; SPEC "/introspect", "Details that tests rely on").

Who may ask (confidential clients registered with --introspect; others 403, strangers 401), what
an active answer carries for each token kind, and that every token not currently valid —
expired, revoked, rotated, of a disabled user, forged, malformed — is exactly {"active": false}.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jwt as jose_jwt
from joserfc.jwk import RSAKey
from sqlalchemy import update

from authserver import admin
from authserver.keys.kek import open_private_key
from authserver.keys.ring import load_key_ring
from authserver.services import Services
from authserver.store import keys as key_store
from authserver.store.tables import signing_keys
from tests.conftest import ISSUER, Clock, RegisteredClient
from tests.helpers import (
    assert_uncached_oauth_error,
    insert_client,
    jwt_parts,
    login,
    refresh,
    refreshed,
)
from tests.revocation_helpers import INACTIVE, introspect, revoked

MakeClient = Callable[..., Awaitable[RegisteredClient]]
MakeUser = Callable[..., Awaitable[str]]

ACTIVE_USER_KEYS = {
    "active",
    "scope",
    "client_id",
    "username",
    "sub",
    "aud",
    "iss",
    "exp",
    "iat",
    "token_type",
}
NEW_PASSWORD = "a completely different passphrase"


@pytest.fixture
async def auditor(make_client: MakeClient) -> RegisteredClient:
    """A resource server's client, allowed to introspect."""
    return await make_client("auditor", grants=("client_credentials",), introspect=True)


@pytest.fixture
async def app_client(make_client: MakeClient, make_user: MakeUser) -> RegisteredClient:
    """The client users log in with (and alice, the user)."""
    await make_user("alice")
    return await make_client("web", scopes=("read", "write"))


async def assert_inactive(http: httpx.AsyncClient, auditor: RegisteredClient, token: str) -> None:
    for hint in (None, "access_token", "refresh_token"):
        extra = {} if hint is None else {"token_type_hint": hint}
        assert await introspect(http, auditor, token, **extra) == INACTIVE


def sign(key: RSAKey, claims: dict[str, Any], **header: Any) -> str:
    return jose_jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": key.kid, **header}, claims, key)


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# --- active tokens ------------------------------------------------------------------------------


async def test_active_access_token_of_a_user_has_every_spec_member(
    http: httpx.AsyncClient,
    app_client: RegisteredClient,
    auditor: RegisteredClient,
    services: Services,
) -> None:
    tokens = await login(http, app_client, scope="read")
    claims = jwt_parts(tokens["access_token"])[1]

    response = await http.post(
        "/introspect", data={"token": tokens["access_token"]}, auth=auditor.basic
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert response.json() == {
        "active": True,
        "scope": "read",
        "client_id": app_client.client_id,
        "username": "alice",
        "sub": claims["sub"],
        "aud": ISSUER,
        "iss": ISSUER,
        "exp": claims["exp"],
        "iat": claims["iat"],
        "token_type": "access_token",
    }


async def test_active_client_credentials_token_has_no_username(
    http: httpx.AsyncClient, make_client: MakeClient, auditor: RegisteredClient
) -> None:
    service = await make_client(
        "service", grants=("client_credentials",), audiences=("api-a", "api-b")
    )
    response = await http.post(
        "/token", data={"grant_type": "client_credentials"}, auth=service.basic
    )
    access_token = response.json()["access_token"]
    claims = jwt_parts(access_token)[1]

    body = await introspect(http, auditor, access_token)

    assert body == {
        "active": True,
        "scope": "read write",
        "client_id": service.client_id,
        "sub": service.client_id,
        "aud": ["api-a", "api-b"],
        "iss": ISSUER,
        "exp": claims["exp"],
        "iat": claims["iat"],
        "token_type": "access_token",
    }


@pytest.mark.parametrize(
    "settings_overrides",
    [{"refresh_token_ttl": 3600, "refresh_family_max_age": 7200}],
    indirect=True,
)
async def test_active_refresh_token_reports_its_own_iat_and_the_aud_of_its_access_tokens(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    make_user: MakeUser,
    auditor: RegisteredClient,
    clock: Clock,
) -> None:
    client = await make_client("web", audiences=("orders-api",))
    user_id = await make_user()
    first = await login(http, client)
    clock.advance(100)
    second = await refreshed(http, client, first["refresh_token"], scope="read")
    issued = int(clock().timestamp())

    body = await introspect(http, auditor, second["refresh_token"])

    assert body == {
        "active": True,
        "scope": "read write",  # the login's scope, though this refresh narrowed its access token
        "client_id": client.client_id,
        "username": "alice",
        "sub": user_id,
        "aud": "orders-api",
        "iss": ISSUER,
        "exp": issued + 3600,
        "iat": issued,
        "token_type": "refresh_token",
    }
    assert jwt_parts(second["access_token"])[1]["aud"] == body["aud"]


async def test_refresh_token_of_a_client_without_audience_reports_the_default_audience(
    http: httpx.AsyncClient, app_client: RegisteredClient, auditor: RegisteredClient
) -> None:
    body = await introspect(http, auditor, (await login(http, app_client))["refresh_token"])
    assert set(body) == ACTIVE_USER_KEYS
    assert body["aud"] == ISSUER


@pytest.mark.parametrize("hint", ["access_token", "refresh_token", "unknown_kind"])
async def test_a_wrong_or_unknown_hint_still_finds_the_token(
    http: httpx.AsyncClient, app_client: RegisteredClient, auditor: RegisteredClient, hint: str
) -> None:
    tokens = await login(http, app_client)
    for kind in ("access_token", "refresh_token"):
        body = await introspect(http, auditor, tokens[kind], token_type_hint=hint)
        assert body["active"] is True
        assert body["token_type"] == kind


async def test_introspection_accepts_client_secret_post(
    http: httpx.AsyncClient, app_client: RegisteredClient, auditor: RegisteredClient
) -> None:
    tokens = await login(http, app_client)
    assert auditor.secret is not None
    response = await http.post(
        "/introspect",
        data={
            "token": tokens["access_token"],
            "client_id": auditor.client_id,
            "client_secret": auditor.secret,
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["active"] is True


async def test_access_token_signed_by_the_published_next_key_is_active(
    http: httpx.AsyncClient,
    app_client: RegisteredClient,
    auditor: RegisteredClient,
    services: Services,
) -> None:
    """Any key in our JWKS counts (so retired-but-published keys do too), not only the current."""
    claims = jwt_parts((await login(http, app_client))["access_token"])[1]
    [next_record] = [r for r in await key_store.list_keys(services.db) if r.state == "next"]
    next_key = RSAKey.import_key(open_private_key(services.keks, next_record)[0])
    next_key.ensure_kid()

    body = await introspect(http, auditor, sign(next_key, claims))

    assert body["active"] is True


# --- access tokens that are no longer valid -----------------------------------------------------


async def test_expired_access_token_is_inactive(
    http: httpx.AsyncClient, app_client: RegisteredClient, auditor: RegisteredClient, clock: Clock
) -> None:
    access_token = (await login(http, app_client))["access_token"]
    clock.advance(899)
    assert (await introspect(http, auditor, access_token))["active"] is True
    clock.advance(1)
    await assert_inactive(http, auditor, access_token)


async def test_access_token_of_a_revoked_family_is_inactive(
    http: httpx.AsyncClient, app_client: RegisteredClient, auditor: RegisteredClient
) -> None:
    tokens = await login(http, app_client)
    await revoked(http, app_client, tokens["refresh_token"])
    await assert_inactive(http, auditor, tokens["access_token"])


async def test_access_token_of_a_family_revoked_for_reuse_is_inactive(
    http: httpx.AsyncClient, app_client: RegisteredClient, auditor: RegisteredClient
) -> None:
    first = await login(http, app_client)
    second = await refreshed(http, app_client, first["refresh_token"])
    assert (await refresh(http, app_client, first["refresh_token"])).status_code == 400  # reuse

    for body in (first, second):
        await assert_inactive(http, auditor, body["access_token"])
        await assert_inactive(http, auditor, body["refresh_token"])


async def test_tokens_of_a_disabled_user_are_inactive(
    http: httpx.AsyncClient,
    app_client: RegisteredClient,
    auditor: RegisteredClient,
    services: Services,
    clock: Clock,
    make_user: MakeUser,
) -> None:
    await make_user("bob")
    alice = await login(http, app_client)
    bob = await login(http, app_client, "bob")

    await admin.disable_user(services.db, "alice", clock())

    await assert_inactive(http, auditor, alice["access_token"])
    await assert_inactive(http, auditor, alice["refresh_token"])
    assert (await introspect(http, auditor, bob["access_token"]))["active"] is True
    assert (await introspect(http, auditor, bob["refresh_token"]))["active"] is True


async def test_tokens_are_inactive_after_a_password_change(
    http: httpx.AsyncClient,
    app_client: RegisteredClient,
    auditor: RegisteredClient,
    services: Services,
    clock: Clock,
) -> None:
    before = await login(http, app_client)

    await admin.set_password(services.db, services.passwords, "alice", NEW_PASSWORD, clock())

    await assert_inactive(http, auditor, before["access_token"])
    await assert_inactive(http, auditor, before["refresh_token"])
    after = await login(http, app_client, password=NEW_PASSWORD)
    assert (await introspect(http, auditor, after["access_token"]))["active"] is True


async def test_tokens_of_a_deleted_client_are_inactive(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    app_client: RegisteredClient,
    auditor: RegisteredClient,
    services: Services,
) -> None:
    service = await make_client("service", grants=("client_credentials",))
    service_token = (
        await http.post("/token", data={"grant_type": "client_credentials"}, auth=service.basic)
    ).json()["access_token"]
    user_tokens = await login(http, app_client)

    await admin.delete_client(services.db, service.client_id)
    await admin.delete_client(services.db, app_client.client_id)

    await assert_inactive(http, auditor, service_token)
    for kind in ("access_token", "refresh_token"):
        await assert_inactive(http, auditor, user_tokens[kind])


async def test_forged_and_altered_access_tokens_are_inactive(
    http: httpx.AsyncClient,
    app_client: RegisteredClient,
    auditor: RegisteredClient,
    services: Services,
) -> None:
    access_token = (await login(http, app_client))["access_token"]
    header, claims = jwt_parts(access_token)
    ours = services.keys.signing_key
    stranger = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True)
    _h, payload, signature = access_token.split(".")
    widened = b64({**claims, "scope": "read write admin"})
    forgeries = {
        "foreign key": sign(stranger, claims),
        "foreign key, our kid": sign(stranger, claims, kid=header["kid"]),
        "altered claims": f"{_h}.{widened}.{signature}",
        "alg none": f"{b64({'alg': 'none', 'typ': 'at+jwt', 'kid': header['kid']})}.{payload}.",
        "typ JWT": sign(ours, claims, typ="JWT"),
        "no typ": jose_jwt.encode({"alg": "RS256", "kid": ours.kid}, claims, ours),
        "no kid": jose_jwt.encode({"alg": "RS256", "typ": "at+jwt"}, claims, ours),
        "another issuer": sign(ours, {**claims, "iss": "https://evil.example"}),
        "no exp": sign(ours, {k: v for k, v in claims.items() if k != "exp"}),
        "exp as string": sign(ours, {**claims, "exp": str(claims["exp"])}),
        "sid not a uuid": sign(ours, {**claims, "sid": "not-a-uuid"}),
        "sid of no family": sign(ours, {**claims, "sid": "00000000-0000-4000-8000-000000000000"}),
        "another user's sub": sign(ours, {**claims, "sub": "00000000-0000-4000-8000-000000000001"}),
        "another client": sign(ours, {**claims, "client_id": auditor.client_id}),
        "jti too long": sign(ours, {**claims, "jti": "j" * 65}),
        "truncated": access_token[:-10],
    }
    for name, forged in forgeries.items():
        body = await introspect(http, auditor, forged)
        assert body == INACTIVE, name
    assert (await introspect(http, auditor, access_token))["active"] is True


async def test_access_token_signed_by_a_revoked_key_is_inactive(
    http: httpx.AsyncClient,
    app_client: RegisteredClient,
    auditor: RegisteredClient,
    services: Services,
    clock: Clock,
) -> None:
    """A compromised key leaves the published set at once, and with it every token it signed."""
    access_token = (await login(http, app_client))["access_token"]
    kid = jwt_parts(access_token)[0]["kid"]
    [next_record] = [r for r in await key_store.list_keys(services.db) if r.state == "next"]
    async with services.db.transaction() as conn:
        await conn.execute(
            update(signing_keys).where(signing_keys.c.kid == kid).values(state="revoked")
        )
        await conn.execute(
            update(signing_keys)
            .where(signing_keys.c.kid == next_record.kid)
            .values(state="current", activated_at=datetime.now(UTC))
        )
    services.keys = await load_key_ring(services.db, services.settings, services.keks, clock())

    await assert_inactive(http, auditor, access_token)


# --- refresh tokens that are no longer valid ----------------------------------------------------


@pytest.mark.parametrize(
    "settings_overrides", [{"refresh_token_ttl": 100, "refresh_family_max_age": 250}], indirect=True
)
async def test_expired_refresh_token_is_inactive(
    http: httpx.AsyncClient, app_client: RegisteredClient, auditor: RegisteredClient, clock: Clock
) -> None:
    token = (await login(http, app_client))["refresh_token"]
    clock.advance(99)
    assert (await introspect(http, auditor, token))["active"] is True
    clock.advance(1)
    await assert_inactive(http, auditor, token)


async def test_rotated_refresh_token_is_inactive_and_its_successor_active(
    http: httpx.AsyncClient, app_client: RegisteredClient, auditor: RegisteredClient
) -> None:
    first = await login(http, app_client)
    second = await refreshed(http, app_client, first["refresh_token"])

    await assert_inactive(http, auditor, first["refresh_token"])
    assert (await introspect(http, auditor, second["refresh_token"]))["active"] is True
    # Introspecting a rotated token is not reuse: the family lives on.
    await refreshed(http, app_client, second["refresh_token"])


async def test_introspection_does_not_use_a_refresh_token_up(
    http: httpx.AsyncClient, app_client: RegisteredClient, auditor: RegisteredClient
) -> None:
    token = (await login(http, app_client))["refresh_token"]
    for _ in range(3):
        assert (await introspect(http, auditor, token))["active"] is True
    await refreshed(http, app_client, token)


async def test_revoked_refresh_token_is_inactive(
    http: httpx.AsyncClient, app_client: RegisteredClient, auditor: RegisteredClient
) -> None:
    tokens = await login(http, app_client)
    await revoked(http, app_client, tokens["refresh_token"])
    await assert_inactive(http, auditor, tokens["refresh_token"])


# --- garbage ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "x",
        "asrt_",
        "asrt_" + "A" * 43,
        "a.b.c",
        "..",
        "e30.e30.",
        "ey.ey.ey",
        "\u00e9" * 50,
        "a" * 8000,
    ],
)
async def test_malformed_tokens_are_inactive(
    http: httpx.AsyncClient, auditor: RegisteredClient, token: str
) -> None:
    assert await introspect(http, auditor, token) == INACTIVE


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    token=st.one_of(
        st.text(
            # codec: lone surrogates cannot be encoded into a request at all (not a server case)
            alphabet=st.characters(min_codepoint=0x20, exclude_characters="\x7f", codec="utf-8"),
            min_size=1,
        ),
        st.lists(st.text("abcdeyJ0-_=.", min_size=0, max_size=40), min_size=3, max_size=3).map(
            ".".join
        ),
    )
)
async def test_any_printable_token_is_inactive_never_an_error(
    http: httpx.AsyncClient, auditor: RegisteredClient, token: str
) -> None:
    assert await introspect(http, auditor, token) == INACTIVE


# --- who may introspect -------------------------------------------------------------------------


async def test_client_not_registered_to_introspect_gets_403_unauthorized_client(
    http: httpx.AsyncClient, app_client: RegisteredClient
) -> None:
    tokens = await login(http, app_client)
    response = await http.post(
        "/introspect", data={"token": tokens["access_token"]}, auth=app_client.basic
    )
    assert_uncached_oauth_error(response, 403, "unauthorized_client")
    assert "www-authenticate" not in response.headers
    assert "active" not in response.json()


async def test_unauthenticated_introspection_is_401_invalid_client(
    http: httpx.AsyncClient,
    app_client: RegisteredClient,
    auditor: RegisteredClient,
    services: Services,
) -> None:
    tokens = await login(http, app_client)
    public_auditor = await insert_client(services, secret=None, grants=("password",))
    responses = [
        await http.post("/introspect", data={"token": tokens["access_token"]}),
        await http.post(
            "/introspect", data={"token": tokens["access_token"]}, auth=(auditor.client_id, "no")
        ),
        await http.post(
            "/introspect",
            data={"token": tokens["access_token"], "client_id": auditor.client_id},
        ),
        await http.post(
            "/introspect",
            data={"token": tokens["access_token"], "client_id": public_auditor.client_id},
        ),
    ]
    for response in responses:
        assert_uncached_oauth_error(response, 401, "invalid_client")
        assert response.headers["www-authenticate"] == 'Basic realm="authserver"'


async def test_public_client_registered_to_introspect_is_still_refused(
    http: httpx.AsyncClient, services: Services, app_client: RegisteredClient
) -> None:
    """RFC 7662 §2.1: the caller must authenticate; a public client cannot. `clients create`
    refuses such a registration; a row made before that (or by hand) is refused here too."""
    public = await insert_client(
        services, secret=None, grants=("password", "refresh_token"), introspect=True
    )
    tokens = await login(http, app_client)
    response = await http.post(
        "/introspect", data={"token": tokens["access_token"], "client_id": public.client_id}
    )
    assert_uncached_oauth_error(response, 401, "invalid_client")


async def test_introspection_without_a_token_is_invalid_request(
    http: httpx.AsyncClient, auditor: RegisteredClient
) -> None:
    for data in ({}, {"token": ""}, {"token_type_hint": "access_token"}):
        response = await http.post("/introspect", data=data, auth=auditor.basic)
        assert_uncached_oauth_error(response, 400, "invalid_request")


async def test_introspection_has_the_token_endpoints_strict_form_rules(
    http: httpx.AsyncClient, auditor: RegisteredClient
) -> None:
    as_json = await http.post("/introspect", json={"token": "x"}, auth=auditor.basic)
    repeated = await http.post(
        "/introspect",
        content="token=a&token=b",
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=auditor.basic,
    )
    for response in (as_json, repeated):
        assert_uncached_oauth_error(response, 400, "invalid_request")
    response = await http.get("/introspect")
    assert response.status_code == 405


async def test_metadata_names_the_introspection_endpoint(http: httpx.AsyncClient) -> None:
    document = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert document["introspection_endpoint"] == f"{ISSUER}/introspect"
    assert "none" not in document["introspection_endpoint_auth_methods_supported"]
