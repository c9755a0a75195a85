"""Small helpers for tests: posting token requests, reading JWTs without verifying them."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

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


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    """An RFC 6749 §5.2 error: status, JSON body with `error`, never cached."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error, body
    assert isinstance(body.get("error_description", ""), str)
    assert "Traceback" not in response.text
