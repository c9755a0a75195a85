"""The Starlette integration over HTTP: 401 invalid_token with an RFC 6750 challenge, 403
insufficient_scope, 503 when the keys cannot be had, 200 with the claims on the request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authserver.verify.starlette import BearerAuthMiddleware, access_token, requires_scope
from tests.verify.helpers import (
    JWKSServer,
    ManualClock,
    assert_challenge,
    bearer,
    claims,
    header,
    sign_rs256,
    unsigned,
)


@requires_scope("profile:read")
async def profile(request: Request) -> Response:
    token = access_token(request)
    return JSONResponse({"sub": token.sub, "client_id": token.client_id, "scope": token.scope})


@requires_scope("orders", "profile:read")
def orders(request: Request) -> Response:  # a sync endpoint: Starlette runs it in a thread
    return JSONResponse({"client_id": access_token(request).client_id})


class Admin(HTTPEndpoint):
    @requires_scope("admin")
    async def get(self, request: Request) -> Response:
        return JSONResponse({"sub": access_token(request).sub})


async def health(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def anyone(request: Request) -> Response:
    return JSONResponse({"auth": None if request.auth is None else request.auth.sub})


def make_app(jwks_server: JWKSServer, clock: ManualClock, **options: Any) -> Starlette:
    verifier = jwks_server.verifier(clock)
    return Starlette(
        routes=[
            Route("/profile", profile),
            Route("/orders", orders),
            Route("/admin", Admin),
            Route("/health", health),
            Route("/anyone", anyone),
        ],
        middleware=[Middleware(BearerAuthMiddleware, verifier=verifier, **options)],
    )


@pytest.fixture
async def http(
    jwks_server: JWKSServer, manual_clock: ManualClock
) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(jwks_server, manual_clock, realm="example", exempt_paths=["/health"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client


async def test_a_valid_token_with_the_scope_gets_200_and_its_claims(
    http: httpx.AsyncClient, issuer_key: RSAKey
) -> None:
    response = await http.get(
        "/profile", headers=bearer(sign_rs256(issuer_key, header(issuer_key), claims()))
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "sub": "024da017-7e9c-432b-a8dc-5e1727c1af8c",
        "client_id": "WtP3XUucKxbRVmCJ9EyBaw",
        "scope": "profile:read orders",
    }
    assert "www-authenticate" not in response.headers


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
    ],
    ids=["no header", "basic", "bearer without token", "bearer and a space"],
)
async def test_a_missing_token_gets_401_invalid_token(
    headers: dict[str, str], http: httpx.AsyncClient
) -> None:
    response = await http.get("/profile", headers=headers)
    assert_challenge(response, 401, "invalid_token")


async def test_bad_tokens_get_401_with_a_reason_but_never_the_token(
    http: httpx.AsyncClient, issuer_key: RSAKey, foreign_key: RSAKey, manual_clock: ManualClock
) -> None:
    cases = {
        "expired": sign_rs256(issuer_key, header(issuer_key), claims(exp=manual_clock.now - 60)),
        "alg none": unsigned(header(issuer_key, alg="none"), claims()),
        "foreign key": sign_rs256(foreign_key, header(issuer_key), claims()),
        "garbage": "not-a-jwt",
        "with a space": "abc def",
    }
    descriptions = set()
    for token in cases.values():
        response = await http.get("/profile", headers=bearer(token))
        description = assert_challenge(response, 401, "invalid_token")
        assert token not in response.text
        assert token not in response.headers["www-authenticate"]
        descriptions.add(description)
    assert "The access token has expired." in descriptions
    assert len(descriptions) >= 4  # the description says which check failed


async def test_two_authorization_headers_get_401(
    http: httpx.AsyncClient, issuer_key: RSAKey
) -> None:
    token = sign_rs256(issuer_key, header(issuer_key), claims())
    response = await http.get(
        "/profile",
        headers=[("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")],
    )
    assert_challenge(response, 401, "invalid_token")


async def test_a_token_without_the_scope_gets_403_insufficient_scope(
    http: httpx.AsyncClient, issuer_key: RSAKey
) -> None:
    token = sign_rs256(issuer_key, header(issuer_key), claims(scope="orders"))
    response = await http.get("/profile", headers=bearer(token))
    assert_challenge(response, 403, "insufficient_scope", scope="profile:read")
    assert response.json()["scope"] == "profile:read"


async def test_every_required_scope_is_needed_sync_endpoints_and_http_endpoints_too(
    http: httpx.AsyncClient, issuer_key: RSAKey
) -> None:
    only_orders = sign_rs256(issuer_key, header(issuer_key), claims(scope="orders"))
    both = sign_rs256(issuer_key, header(issuer_key), claims())
    assert_challenge(
        await http.get("/orders", headers=bearer(only_orders)),
        403,
        "insufficient_scope",
        scope="orders profile:read",
    )
    assert (await http.get("/orders", headers=bearer(both))).status_code == 200
    assert_challenge(
        await http.get("/admin", headers=bearer(both)), 403, "insufficient_scope", scope="admin"
    )
    admin = sign_rs256(issuer_key, header(issuer_key), claims(scope="admin"))
    assert (await http.get("/admin", headers=bearer(admin))).status_code == 200


async def test_exempt_paths_need_no_token(http: httpx.AsyncClient) -> None:
    assert (await http.get("/health")).json() == {"status": "ok"}


async def test_unavailable_keys_get_503_not_401(
    http: httpx.AsyncClient, jwks_server: JWKSServer, issuer_key: RSAKey
) -> None:
    jwks_server.down = True
    response = await http.get(
        "/profile", headers=bearer(sign_rs256(issuer_key, header(issuer_key), claims()))
    )
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert int(response.headers["retry-after"]) > 0


async def test_optional_authentication_lets_anonymous_requests_through_but_not_bad_tokens(
    jwks_server: JWKSServer, manual_clock: ManualClock, issuer_key: RSAKey
) -> None:
    app = make_app(jwks_server, manual_clock, realm="example", required=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        assert (await client.get("/anyone")).json() == {"auth": None}
        good = sign_rs256(issuer_key, header(issuer_key), claims())
        assert (await client.get("/anyone", headers=bearer(good))).json()["auth"]
        assert_challenge(await client.get("/anyone", headers=bearer("bad")), 401, "invalid_token")
        # requires_scope still insists on a token where there is none
        assert_challenge(await client.get("/profile"), 401, "invalid_token")


def test_a_realm_that_would_break_the_header_is_refused(jwks_server: JWKSServer) -> None:
    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError

    with pytest.raises(ValueError, match="realm"):
        BearerAuthMiddleware(app, jwks_server.verifier(), realm='x", error="none')
    with pytest.raises(ValueError, match="scope"):
        requires_scope('profile"read')
