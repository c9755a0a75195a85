"""Helpers for the /revoke and /introspect tests (and the purge load test)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import RegisteredClient
from tests.helpers import refresh

INACTIVE = {"active": False}


async def revoke(
    http: httpx.AsyncClient, client: RegisteredClient, token: str, **extra: str
) -> httpx.Response:
    """POST /revoke as `client` (HTTP Basic, or client_id alone for a public client)."""
    data = {"token": token, **extra}
    if client.secret is None:
        return await http.post("/revoke", data={**data, "client_id": client.client_id})
    return await http.post("/revoke", data=data, auth=client.basic)


async def revoked(
    http: httpx.AsyncClient, client: RegisteredClient, token: str, **extra: str
) -> None:
    """Revoke, insisting on RFC 7009 §2.2's 200."""
    response = await revoke(http, client, token, **extra)
    assert response.status_code == 200, response.text
    assert response.json() == {}


async def introspect(
    http: httpx.AsyncClient, client: RegisteredClient, token: str, **extra: str
) -> dict[str, Any]:
    """POST /introspect as an allowed client, insisting on 200; the JSON body."""
    response = await http.post("/introspect", data={"token": token, **extra}, auth=client.basic)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


async def refresh_refused(http: httpx.AsyncClient, client: RegisteredClient, token: str) -> bool:
    """True if the refresh token is refused with invalid_grant."""
    response = await refresh(http, client, token)
    return response.status_code == 400 and response.json().get("error") == "invalid_grant"
