"""Small helpers for tests: posting token requests, reading JWTs without verifying them."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import httpx

from authserver.clients.authentication import new_client_id
from authserver.models import Client
from authserver.services import Services
from authserver.store import clients as client_store
from authserver.tokens.opaque import token_digest
from tests.conftest import PASSWORD, RegisteredClient


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a compact JWS, unverified: for asserting on what was issued."""
    header, payload, _signature = token.split(".")

    def decode(part: str) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        return value

    return decode(header), decode(payload)


async def password_login(
    http: httpx.AsyncClient,
    client: RegisteredClient,
    username: str = "alice",
    password: str = PASSWORD,
    **extra: str,
) -> httpx.Response:
    data = {"grant_type": "password", "username": username, "password": password, **extra}
    if client.secret is None:
        return await http.post("/token", data={**data, "client_id": client.client_id})
    return await http.post("/token", data=data, auth=client.basic)


async def refresh(
    http: httpx.AsyncClient, client: RegisteredClient, refresh_token: str, **extra: str
) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    if client.secret is None:
        return await http.post("/token", data={**data, "client_id": client.client_id})
    return await http.post("/token", data=data, auth=client.basic)


async def login(
    http: httpx.AsyncClient, client: RegisteredClient, username: str = "alice", **extra: str
) -> dict[str, Any]:
    """A password login, insisting on success; the token response."""
    response = await password_login(http, client, username, **extra)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refreshed(
    http: httpx.AsyncClient, client: RegisteredClient, token: str, **extra: str
) -> dict[str, Any]:
    """Refresh, insisting on success; the new token pair."""
    response = await refresh(http, client, token, **extra)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    """An RFC 6749 §5.2 error: status, JSON body with `error`, never cached."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error, body
    assert isinstance(body.get("error_description", ""), str)
    assert "Traceback" not in response.text


async def metric_value(
    http: httpx.AsyncClient, sample: str, labels: dict[str, str] | None = None
) -> float:
    """The sum of the /metrics samples named `sample` whose labels include `labels` (0 if none).

    `sample` is the exposed sample name, e.g. `authserver_refresh_reuse_detected_total`.
    """
    from prometheus_client.parser import text_string_to_metric_families

    response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    wanted = labels or {}
    return sum(
        s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in wanted.items())
    )


async def insert_client(
    services: Services,
    *,
    secret: str | None,
    grants: tuple[str, ...],
    scopes: tuple[str, ...] = ("read", "write"),
    client_id: str | None = None,
    introspect: bool = False,
    redirect_uris: tuple[str, ...] = (),
) -> RegisteredClient:
    """Register a client straight through the store, bypassing the admin layer's checks.

    For states the CLI refuses to create but the server must still handle safely: a public
    client with client_credentials or allowed to introspect, scopes outside SCOPES, a secret
    with reserved characters.
    """
    client_id = client_id or new_client_id()
    await client_store.create_client(
        services.db,
        Client(
            client_id=client_id,
            name="inserted",
            secret_hash=None if secret is None else token_digest(secret),
            grant_types=frozenset(grants),
            scopes=scopes,
            audiences=(),
            can_introspect=introspect,
            access_token_ttl=None,
            created_at=datetime.now(UTC),
            redirect_uris=redirect_uris,
        ),
    )
    return RegisteredClient(client_id, secret)


def assert_uncached_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    """assert_oauth_error, plus: `Cache-Control: no-store`, and no keys beyond RFC 6749 §5.2's."""
    assert_oauth_error(response, status, error)
    assert response.headers.get("cache-control") == "no-store", response.headers
    assert set(response.json()) <= {"error", "error_description", "error_uri"}
