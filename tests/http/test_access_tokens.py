"""RFC 9068 access tokens as a resource server sees them: header, claims, and offline verification
with nothing but the JWKS document (joserfc and PyJWT), including the classic forgeries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

from authserver.services import Services
from tests.conftest import ISSUER, Clock, RegisteredClient
from tests.helpers import jwt_parts, password_login, refresh

MakeClient = Callable[..., Awaitable[RegisteredClient]]
MakeUser = Callable[..., Awaitable[str]]

USER_CLAIMS = {"iss", "sub", "aud", "client_id", "scope", "iat", "exp", "jti", "sid"}
CLIENT_CLAIMS = USER_CLAIMS - {"sid"}


# --- helpers ------------------------------------------------------------------------------------


async def user_tokens(
    http: httpx.AsyncClient, client: RegisteredClient, **extra: str
) -> dict[str, Any]:
    response = await password_login(http, client, **extra)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refreshed_tokens(
    http: httpx.AsyncClient, client: RegisteredClient, token: str
) -> dict[str, Any]:
    response = await refresh(http, client, token)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def client_tokens(http: httpx.AsyncClient, client: RegisteredClient) -> dict[str, Any]:
    response = await http.post(
        "/token", data={"grant_type": "client_credentials"}, auth=client.basic
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def fetch_jwks(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/.well-known/jwks.json")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def verify_with_joserfc(
    token: str, jwks: dict[str, Any], audience: str, subject: str
) -> dict[str, Any]:
    """What a resource server does with joserfc: the JWKS only, RS256 only, then the claims."""
    keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    decoded = jose_jwt.decode(token, keys, algorithms=["RS256"])
    registry = jose_jwt.JWTClaimsRegistry(
        leeway=30,
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": audience},
        sub={"essential": True, "value": subject},
        exp={"essential": True},
        iat={"essential": True},
        jti={"essential": True},
    )
    registry.validate(decoded.claims)
    return decoded.claims


def verify_with_pyjwt(
    token: str, jwks: dict[str, Any], audience: str, subject: str
) -> dict[str, Any]:
    """The same with PyJWT: pick the key by `kid` from the JWKS, RS256 only."""
    keys = pyjwt.PyJWKSet.from_dict(jwks)
    kid = pyjwt.get_unverified_header(token).get("kid")
    matching = [key for key in keys.keys if key.key_id == kid]
    if not matching:
        raise pyjwt.InvalidKeyError(f"unknown kid {kid!r}")
    claims: dict[str, Any] = pyjwt.decode(
        token,
        matching[0],
        algorithms=["RS256"],
        audience=audience,
        issuer=ISSUER,
        subject=subject,
        leeway=30,
        options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
    )
    return claims


def assert_rejected_by_resource_servers(
    token: str, jwks: dict[str, Any], audience: str, subject: str
) -> None:
    with pytest.raises(JoseError):
        verify_with_joserfc(token, jwks, audience, subject)
    with pytest.raises(pyjwt.PyJWTError):
        verify_with_pyjwt(token, jwks, audience, subject)


# --- header -------------------------------------------------------------------------------------


async def test_header_is_exactly_rs256_at_jwt_and_the_current_kid(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, services: Services
) -> None:
    client = await make_client(grants=("password", "refresh_token", "client_credentials"))
    await make_user()
    login = await user_tokens(http, client)
    tokens = [
        login["access_token"],
        (await refreshed_tokens(http, client, login["refresh_token"]))["access_token"],
        (await client_tokens(http, client))["access_token"],
    ]
    published = {key["kid"] for key in (await fetch_jwks(http))["keys"]}
    for token in tokens:
        header, _claims = jwt_parts(token)
        assert header == {"alg": "RS256", "typ": "at+jwt", "kid": services.keys.kid}
        assert header["kid"] in published


# --- claims -------------------------------------------------------------------------------------


async def test_password_grant_token_carries_the_rfc9068_claims(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    make_user: MakeUser,
    clock: Clock,
) -> None:
    client = await make_client()
    user_id = await make_user()
    body = await user_tokens(http, client)
    _header, claims = jwt_parts(body["access_token"])

    assert set(claims) == USER_CLAIMS
    assert claims["iss"] == ISSUER
    assert claims["sub"] == user_id
    assert str(uuid.UUID(claims["sub"])) == claims["sub"]
    assert claims["aud"] == ISSUER
    assert claims["client_id"] == client.client_id
    assert claims["scope"] == "read write" == body["scope"]
    assert claims["iat"] == int(clock.now.timestamp())
    assert body["expires_in"] == 900
    assert claims["exp"] == claims["iat"] + 900
    assert isinstance(claims["jti"], str)
    assert len(claims["jti"]) >= 16
    uuid.UUID(claims["sid"])


async def test_refresh_grant_token_has_the_same_subject_and_a_new_iat_and_jti(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    make_user: MakeUser,
    clock: Clock,
) -> None:
    client = await make_client()
    user_id = await make_user()
    login = await user_tokens(http, client)
    _h, first = jwt_parts(login["access_token"])
    clock.advance(60)
    body = await refreshed_tokens(http, client, login["refresh_token"])
    _h, claims = jwt_parts(body["access_token"])

    assert set(claims) == USER_CLAIMS
    assert claims["sub"] == user_id
    assert claims["iss"] == ISSUER
    assert claims["aud"] == ISSUER
    assert claims["client_id"] == client.client_id
    assert claims["sid"] == first["sid"]
    assert claims["jti"] != first["jti"]
    assert claims["iat"] == first["iat"] + 60 == int(clock.now.timestamp())
    assert claims["exp"] == claims["iat"] + body["expires_in"] == claims["iat"] + 900


async def test_client_credentials_token_has_the_client_as_subject_and_no_sid(
    http: httpx.AsyncClient, make_client: MakeClient, clock: Clock
) -> None:
    client = await make_client("service", grants=("client_credentials",), scopes=("reports",))
    body = await client_tokens(http, client)
    assert "refresh_token" not in body
    _header, claims = jwt_parts(body["access_token"])

    assert set(claims) == CLIENT_CLAIMS
    assert claims["sub"] == client.client_id
    assert claims["client_id"] == client.client_id
    assert claims["iss"] == ISSUER
    assert claims["aud"] == ISSUER
    assert claims["scope"] == "reports"
    assert claims["iat"] == int(clock.now.timestamp())
    assert claims["exp"] == claims["iat"] + body["expires_in"] == claims["iat"] + 900


async def test_jti_is_unique_across_tokens(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client(grants=("password", "refresh_token", "client_credentials"))
    await make_user()
    tokens: list[str] = []
    for _ in range(2):
        login = await user_tokens(http, client)
        tokens.append(login["access_token"])
        refresh_token = login["refresh_token"]
        for _ in range(3):
            body = await refreshed_tokens(http, client, refresh_token)
            tokens.append(body["access_token"])
            refresh_token = body["refresh_token"]
    for _ in range(3):
        tokens.append((await client_tokens(http, client))["access_token"])

    jtis = [jwt_parts(token)[1]["jti"] for token in tokens]
    assert len(set(jtis)) == len(jtis) == 11


# --- audience -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings_overrides", [{"default_audience": "https://api.example"}], indirect=True
)
async def test_default_audience_setting_is_the_aud_of_clients_without_their_own(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client(grants=("password", "client_credentials"))
    await make_user()
    for body in (await user_tokens(http, client), await client_tokens(http, client)):
        assert jwt_parts(body["access_token"])[1]["aud"] == "https://api.example"


async def test_one_configured_audience_is_a_string(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client(
        grants=("password", "refresh_token", "client_credentials"),
        audiences=("https://orders.example",),
    )
    await make_user()
    login = await user_tokens(http, client)
    bodies = [
        login,
        await refreshed_tokens(http, client, login["refresh_token"]),
        await client_tokens(http, client),
    ]
    for body in bodies:
        assert jwt_parts(body["access_token"])[1]["aud"] == "https://orders.example"


async def test_several_configured_audiences_are_an_array(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    audiences = ("https://orders.example", "https://billing.example")
    client = await make_client(
        grants=("password", "refresh_token", "client_credentials"), audiences=audiences
    )
    await make_user()
    login = await user_tokens(http, client)
    bodies = [
        login,
        await refreshed_tokens(http, client, login["refresh_token"]),
        await client_tokens(http, client),
    ]
    for body in bodies:
        assert jwt_parts(body["access_token"])[1]["aud"] == list(audiences)


# --- lifetime -----------------------------------------------------------------------------------


async def test_per_client_access_token_ttl_sets_expires_in_and_exp(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client(
        grants=("password", "refresh_token", "client_credentials"), access_token_ttl=60
    )
    other = await make_client("other")
    await make_user()
    login = await user_tokens(http, client)
    bodies = [
        login,
        await refreshed_tokens(http, client, login["refresh_token"]),
        await client_tokens(http, client),
    ]
    for body in bodies:
        assert body["expires_in"] == 60
        claims = jwt_parts(body["access_token"])[1]
        assert claims["exp"] == claims["iat"] + 60
    assert (await user_tokens(http, other))["expires_in"] == 900


@pytest.mark.parametrize("settings_overrides", [{"access_token_ttl": 300}], indirect=True)
async def test_access_token_ttl_setting_sets_expires_in_and_exp(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    login = await user_tokens(http, client)
    for body in (login, await refreshed_tokens(http, client, login["refresh_token"])):
        assert body["expires_in"] == 300
        claims = jwt_parts(body["access_token"])[1]
        assert claims["exp"] == claims["iat"] + 300


# --- offline verification with the JWKS alone ---------------------------------------------------


async def test_tokens_verify_with_joserfc_using_only_the_jwks(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client(grants=("password", "refresh_token", "client_credentials"))
    user_id = await make_user()
    jwks = await fetch_jwks(http)
    login = await user_tokens(http, client)
    renewed = await refreshed_tokens(http, client, login["refresh_token"])
    machine = await client_tokens(http, client)

    for body in (login, renewed):
        claims = verify_with_joserfc(body["access_token"], jwks, ISSUER, user_id)
        assert claims["client_id"] == client.client_id
    claims = verify_with_joserfc(machine["access_token"], jwks, ISSUER, client.client_id)
    assert "sid" not in claims


async def test_tokens_verify_with_pyjwt_using_only_the_jwks(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client(grants=("password", "refresh_token", "client_credentials"))
    user_id = await make_user()
    jwks = await fetch_jwks(http)
    login = await user_tokens(http, client)
    renewed = await refreshed_tokens(http, client, login["refresh_token"])
    machine = await client_tokens(http, client)

    for body in (login, renewed):
        claims = verify_with_pyjwt(body["access_token"], jwks, ISSUER, user_id)
        assert claims["scope"] == "read write"
    verify_with_pyjwt(machine["access_token"], jwks, ISSUER, client.client_id)


async def test_multi_audience_token_verifies_for_each_audience_and_not_for_others(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    audiences = ("https://orders.example", "https://billing.example")
    client = await make_client(audiences=audiences)
    user_id = await make_user()
    jwks = await fetch_jwks(http)
    token = (await user_tokens(http, client))["access_token"]

    for audience in audiences:
        verify_with_joserfc(token, jwks, audience, user_id)
        verify_with_pyjwt(token, jwks, audience, user_id)
    assert_rejected_by_resource_servers(token, jwks, "https://elsewhere.example", user_id)
    assert_rejected_by_resource_servers(token, jwks, ISSUER, user_id)


# --- forgeries ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"scope": "read write admin"},
        {"sub": str(uuid.uuid4())},
        {"exp": 4_102_444_800},
        {"client_id": "someone-else"},
    ],
    ids=["wider_scope", "other_subject", "later_expiry", "other_client"],
)
async def test_tampered_payload_fails_verification(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    make_user: MakeUser,
    change: dict[str, Any],
) -> None:
    client = await make_client()
    user_id = await make_user()
    jwks = await fetch_jwks(http)
    header, payload, signature = (await user_tokens(http, client))["access_token"].split(".")
    claims = {**jwt_parts(f"{header}.{payload}.{signature}")[1], **change}
    forged = f"{header}.{b64url_json(claims)}.{signature}"

    assert_rejected_by_resource_servers(forged, jwks, ISSUER, claims["sub"])
    verify_with_joserfc(f"{header}.{payload}.{signature}", jwks, ISSUER, user_id)


async def test_signature_of_another_token_does_not_verify(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    user_id = await make_user()
    jwks = await fetch_jwks(http)
    first = (await user_tokens(http, client))["access_token"].split(".")
    second = (await user_tokens(http, client))["access_token"].split(".")
    spliced = f"{first[0]}.{first[1]}.{second[2]}"

    assert_rejected_by_resource_servers(spliced, jwks, ISSUER, user_id)


@pytest.mark.parametrize("kid_source", ["server_kid", "own_kid"])
async def test_token_resigned_with_a_foreign_rsa_key_fails(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    make_user: MakeUser,
    services: Services,
    kid_source: str,
) -> None:
    client = await make_client()
    user_id = await make_user()
    jwks = await fetch_jwks(http)
    _header, claims = jwt_parts((await user_tokens(http, client))["access_token"])
    foreign = RSAKey.generate_key(2048, auto_kid=True)
    kid = services.keys.kid if kid_source == "server_kid" else foreign.kid
    forged = jose_jwt.encode(
        {"alg": "RS256", "typ": "at+jwt", "kid": kid}, claims, foreign, algorithms=["RS256"]
    )

    assert_rejected_by_resource_servers(forged, jwks, ISSUER, user_id)


async def test_token_carrying_its_own_jwk_header_is_not_trusted(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, services: Services
) -> None:
    """The key must come from the JWKS, never from the token (CVE-2018-0114 style)."""
    client = await make_client()
    user_id = await make_user()
    jwks = await fetch_jwks(http)
    _header, claims = jwt_parts((await user_tokens(http, client))["access_token"])
    foreign = RSAKey.generate_key(2048, auto_kid=True)
    header = {
        "alg": "RS256",
        "typ": "at+jwt",
        "kid": services.keys.kid,
        "jwk": foreign.as_dict(private=False),
    }
    forged = jose_jwt.encode(header, claims, foreign, algorithms=["RS256"])

    assert_rejected_by_resource_servers(forged, jwks, ISSUER, user_id)


@pytest.mark.parametrize("signature", ["", "AAAA"], ids=["empty_signature", "junk_signature"])
async def test_alg_none_version_of_a_token_fails(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    make_user: MakeUser,
    services: Services,
    signature: str,
) -> None:
    client = await make_client()
    user_id = await make_user()
    jwks = await fetch_jwks(http)
    _h, payload, _s = (await user_tokens(http, client))["access_token"].split(".")
    header = b64url_json({"alg": "none", "typ": "at+jwt", "kid": services.keys.kid})
    forged = f"{header}.{payload}.{signature}"

    assert_rejected_by_resource_servers(forged, jwks, ISSUER, user_id)


async def test_hs256_signed_with_the_public_key_fails(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, services: Services
) -> None:
    """Algorithm confusion: an HMAC over the token keyed with the server's public key."""
    client = await make_client()
    user_id = await make_user()
    jwks = await fetch_jwks(http)
    _h, payload, _s = (await user_tokens(http, client))["access_token"].split(".")
    public = RSAKey.import_key(next(key for key in jwks["keys"] if key["kid"] == services.keys.kid))
    header = b64url_json({"alg": "HS256", "typ": "at+jwt", "kid": services.keys.kid})
    signing_input = f"{header}.{payload}".encode()
    for secret in (public.as_pem(private=False), json.dumps(public.as_dict()).encode()):
        mac = hmac.new(secret, signing_input, hashlib.sha256).digest()
        forged = f"{header}.{payload}.{b64url(mac)}"
        assert_rejected_by_resource_servers(forged, jwks, ISSUER, user_id)
