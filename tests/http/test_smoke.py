from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from tests.conftest import RegisteredClient
from tests.helpers import jwt_parts, password_login, refresh


async def test_password_login_then_refresh_rotates(
    http: httpx.AsyncClient,
    make_client: Callable[..., Awaitable[RegisteredClient]],
    make_user: Callable[..., Awaitable[str]],
) -> None:
    client = await make_client()
    user_id = await make_user()
    login = await password_login(http, client)
    assert login.status_code == 200, login.text
    header, claims = jwt_parts(login.json()["access_token"])
    assert header["typ"] == "at+jwt"
    assert claims["sub"] == user_id
    renewed = await refresh(http, client, login.json()["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["refresh_token"] != login.json()["refresh_token"]
