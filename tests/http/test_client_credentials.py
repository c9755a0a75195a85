"""grant_type=client_credentials (RFC 6749 §4.4): confidential clients only, no refresh token,
`sub` is the client_id and there is no `sid`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from authserver.services import Services
from tests.conftest import Clock, RegisteredClient
from tests.helpers import assert_uncached_oauth_error, insert_client, jwt_parts

MakeClient = Callable[..., Awaitable[RegisteredClient]]

CC = {"grant_type": "client_credentials"}


async def service_client(make_client: MakeClient, **kwargs: object) -> RegisteredClient:
    client = await make_client("service", grants=("client_credentials",), **kwargs)
    assert client.secret is not None
    return client


async def test_confidential_client_gets_an_access_token_and_no_refresh_token(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await service_client(make_client)
    response = await http.post("/token", data=CC, auth=client.basic)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["scope"] == "read write"


async def test_access_token_subject_is_the_client_and_has_no_sid(
    http: httpx.AsyncClient, make_client: MakeClient, clock: Clock
) -> None:
    client = await service_client(make_client)
    response = await http.post("/token", data=CC, auth=client.basic)
    assert response.status_code == 200, response.text
    header, claims = jwt_parts(response.json()["access_token"])
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "RS256"
    assert claims["sub"] == client.client_id
    assert claims["client_id"] == client.client_id
    assert "sid" not in claims
    assert claims["scope"] == "read write"
    assert claims["aud"] == "https://as.example"
    assert claims["iat"] == int(clock.now.timestamp())
    assert claims["exp"] - claims["iat"] == 900


async def test_client_secret_post_works_for_client_credentials(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await service_client(make_client)
    assert client.secret is not None
    response = await http.post(
        "/token", data={**CC, "client_id": client.client_id, "client_secret": client.secret}
    )
    assert response.status_code == 200, response.text
    assert jwt_parts(response.json()["access_token"])[1]["sub"] == client.client_id


async def test_each_request_gets_a_new_token(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await service_client(make_client)
    first = await http.post("/token", data=CC, auth=client.basic)
    second = await http.post("/token", data=CC, auth=client.basic)
    assert first.status_code == second.status_code == 200
    first_claims = jwt_parts(first.json()["access_token"])[1]
    second_claims = jwt_parts(second.json()["access_token"])[1]
    assert first_claims["jti"] != second_claims["jti"]


async def test_client_audience_and_ttl_apply(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await service_client(
        make_client, audiences=("https://api.example",), access_token_ttl=120
    )
    response = await http.post("/token", data=CC, auth=client.basic)
    assert response.status_code == 200, response.text
    assert response.json()["expires_in"] == 120
    claims = jwt_parts(response.json()["access_token"])[1]
    assert claims["aud"] == "https://api.example"
    assert claims["exp"] - claims["iat"] == 120


async def test_user_credentials_in_the_request_are_ignored(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    """client_credentials never acts for a user, whatever else the body says."""
    client = await service_client(make_client)
    response = await http.post(
        "/token",
        data={**CC, "username": "alice", "password": "whatever1", "refresh_token": "x"},
        auth=client.basic,
    )
    assert response.status_code == 200, response.text
    claims = jwt_parts(response.json()["access_token"])[1]
    assert claims["sub"] == client.client_id
    assert "refresh_token" not in response.json()


# --- who may use it ----------------------------------------------------------------------------


async def test_public_client_is_unauthorized_client(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await make_client("spa", public=True, grants=("password", "refresh_token"))
    response = await http.post("/token", data={**CC, "client_id": client.client_id})
    assert_uncached_oauth_error(response, 400, "unauthorized_client")


async def test_public_client_registered_with_client_credentials_is_still_refused(
    http: httpx.AsyncClient, services: Services
) -> None:
    """The admin layer refuses this registration; the grant refuses it again at runtime."""
    client = await insert_client(services, secret=None, grants=("client_credentials",))
    response = await http.post("/token", data={**CC, "client_id": client.client_id})
    assert_uncached_oauth_error(response, 400, "unauthorized_client")
    assert "access_token" not in response.text


async def test_client_without_the_grant_is_unauthorized_client(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await make_client()  # default grants: password, refresh_token
    response = await http.post("/token", data=CC, auth=client.basic)
    assert_uncached_oauth_error(response, 400, "unauthorized_client")


async def test_unauthenticated_client_credentials_request_is_invalid_client(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await service_client(make_client)
    response = await http.post("/token", data={**CC, "client_id": client.client_id})
    assert_uncached_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"] == 'Basic realm="authserver"'


# --- scope -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "granted"),
    [(None, "read write"), ("read", "read"), ("write", "write"), ("", "read write")],
)
async def test_scope_defaults_to_all_and_may_be_narrowed(
    http: httpx.AsyncClient, make_client: MakeClient, requested: str | None, granted: str
) -> None:
    client = await service_client(make_client)
    data = CC if requested is None else {**CC, "scope": requested}
    response = await http.post("/token", data=data, auth=client.basic)
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == granted
    assert jwt_parts(response.json()["access_token"])[1]["scope"] == granted


@pytest.mark.parametrize("requested", ["admin", "read admin", "Read"])
async def test_scope_wider_than_the_clients_is_invalid_scope(
    http: httpx.AsyncClient, make_client: MakeClient, requested: str
) -> None:
    client = await service_client(make_client)
    response = await http.post("/token", data={**CC, "scope": requested}, auth=client.basic)
    assert_uncached_oauth_error(response, 400, "invalid_scope")


@pytest.mark.parametrize("requested", ["read  write", " read", 'read"', "read\\", "ré"])
async def test_malformed_scope_is_invalid_scope(
    http: httpx.AsyncClient, make_client: MakeClient, requested: str
) -> None:
    client = await service_client(make_client)
    response = await http.post("/token", data={**CC, "scope": requested}, auth=client.basic)
    assert_uncached_oauth_error(response, 400, "invalid_scope")


@pytest.mark.parametrize("settings_overrides", [{"scopes": ["read", "write"]}])
async def test_scopes_setting_limits_client_credentials_scopes(
    http: httpx.AsyncClient, services: Services
) -> None:
    client = await insert_client(
        services, secret="service secret", grants=("client_credentials",), scopes=("read", "ops")
    )
    response = await http.post("/token", data=CC, auth=client.basic)
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "read"
    refused = await http.post("/token", data={**CC, "scope": "ops"}, auth=client.basic)
    assert_uncached_oauth_error(refused, 400, "invalid_scope")
