"""The one reader of access tokens against the server (issue 14): what authserver issues,
read_access_token reads from the JWKS authserver publishes, to the claims /introspect reports.
Black-box over HTTP, so that it holds whichever server module does the issuing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from authserver.verify import (
    ACCESS_TOKEN_TYPE,
    ALG,
    AccessTokenClaims,
    ExpiredToken,
    parse_jwks,
    read_access_token,
)
from tests.conftest import ISSUER, Clock, RegisteredClient
from tests.helpers import jwt_parts, login
from tests.revocation_helpers import introspect

MakeClient = Callable[..., Awaitable[RegisteredClient]]
MakeUser = Callable[..., Awaitable[str]]


async def read(http: httpx.AsyncClient, clock: Clock, token: str) -> AccessTokenClaims:
    jwks = await http.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    return read_access_token(
        token, parse_jwks(jwks.content), issuer=ISSUER, now=clock.now.timestamp()
    )


def as_introspected(claims: AccessTokenClaims) -> dict[str, Any]:
    """The fields introspection shares with the token, from the reader's claims."""
    return {
        "scope": claims.scope,
        "client_id": claims.client_id,
        "sub": claims.sub,
        "aud": claims.aud[0] if len(claims.aud) == 1 else list(claims.aud),
        "iss": claims.iss,
        "exp": claims.exp,
        "iat": claims.iat,
    }


async def test_a_users_access_token_reads_as_introspection_reports_it(
    http: httpx.AsyncClient, clock: Clock, make_client: MakeClient, make_user: MakeUser
) -> None:
    sub = await make_user("alice")
    web = await make_client("web", scopes=("read", "write"), audiences=("api-a", "api-b"))
    auditor = await make_client("auditor", grants=("client_credentials",), introspect=True)
    token = (await login(http, web, scope="read"))["access_token"]

    head, _ = jwt_parts(token)
    assert (head["alg"], head["typ"]) == (ALG, ACCESS_TOKEN_TYPE)
    claims = await read(http, clock, token)
    assert claims.sub == sub
    assert claims.aud == ("api-a", "api-b")
    assert claims.scopes == {"read"}
    assert claims.sid is not None
    reported = await introspect(http, auditor, token)
    assert reported["active"] is True
    assert {name: reported[name] for name in as_introspected(claims)} == as_introspected(claims)


async def test_a_client_credentials_token_reads_without_a_sid(
    http: httpx.AsyncClient, clock: Clock, make_client: MakeClient
) -> None:
    service = await make_client("service", grants=("client_credentials",), introspect=True)
    response = await http.post(
        "/token", data={"grant_type": "client_credentials"}, auth=service.basic
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    claims = await read(http, clock, token)
    assert claims.sid is None
    assert claims.client_id == service.client_id
    reported = await introspect(http, service, token)
    assert {name: reported[name] for name in as_introspected(claims)} == as_introspected(claims)


@pytest.mark.parametrize("seconds", [0, 1])
async def test_the_reader_and_introspection_agree_on_when_a_token_expires(
    seconds: int,
    http: httpx.AsyncClient,
    clock: Clock,
    make_client: MakeClient,
) -> None:
    service = await make_client("service", grants=("client_credentials",), introspect=True)
    response = await http.post(
        "/token", data={"grant_type": "client_credentials"}, auth=service.basic
    )
    token = response.json()["access_token"]
    exp = jwt_parts(token)[1]["exp"]
    clock.advance(exp - clock.now.timestamp() - 1 + seconds)  # one second before exp, or at it
    active = (await introspect(http, service, token))["active"]
    if seconds == 0:
        assert active is True
        assert (await read(http, clock, token)).exp == exp
    else:
        assert active is False
        with pytest.raises(ExpiredToken):
            await read(http, clock, token)
