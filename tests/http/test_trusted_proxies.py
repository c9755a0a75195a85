"""The per-IP login limit behind a reverse proxy (TRUSTED_PROXIES). The test client's TCP peer
address is 203.0.113.7 (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from tests.conftest import PASSWORD, RegisteredClient
from tests.helpers import assert_uncached_oauth_error

MakeClient = Callable[..., Awaitable[RegisteredClient]]
MakeUser = Callable[..., Awaitable[str]]
PEER = "203.0.113.7"


async def login(
    http: httpx.AsyncClient, client: RegisteredClient, username: str, password: str, xff: str
) -> httpx.Response:
    data = {"grant_type": "password", "username": username, "password": password}
    return await http.post("/token", data=data, auth=client.basic, headers={"X-Forwarded-For": xff})


async def exhaust_ip_budget(
    http: httpx.AsyncClient, client: RegisteredClient, xff: str, failures: int
) -> None:
    for i in range(failures):
        response = await login(http, client, f"user{i}", "wrong", xff)
        assert response.status_code == 400, response.text


@pytest.mark.parametrize("settings_overrides", [{"login_ip_max_failures": 3}])
async def test_without_trusted_proxies_a_forged_header_does_not_buy_a_fresh_budget(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    await exhaust_ip_budget(http, client, "198.51.100.1", 3)
    blocked = await login(http, client, "alice", PASSWORD, "198.51.100.2")
    assert_uncached_oauth_error(blocked, 429, "invalid_request")


@pytest.mark.parametrize(
    "settings_overrides", [{"login_ip_max_failures": 3, "trusted_proxies": [f"{PEER}/32"]}]
)
async def test_behind_a_trusted_proxy_each_client_address_has_its_own_budget(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    await exhaust_ip_budget(http, client, "198.51.100.1", 3)

    blocked = await login(http, client, "alice", PASSWORD, "198.51.100.1")
    assert_uncached_oauth_error(blocked, 429, "invalid_request")
    other = await login(http, client, "alice", PASSWORD, "198.51.100.2")
    assert other.status_code == 200, other.text


@pytest.mark.parametrize(
    "settings_overrides", [{"login_ip_max_failures": 3, "trusted_proxies": [PEER]}]
)
async def test_behind_a_trusted_proxy_a_client_cannot_escape_by_prepending_addresses(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    """The attacker sends its own X-Forwarded-For; the proxy appends the real address."""
    client = await make_client()
    await make_user()
    for i in range(3):
        response = await login(http, client, f"user{i}", "wrong", f"192.0.2.{i}, 198.51.100.1")
        assert response.status_code == 400, response.text
    blocked = await login(http, client, "alice", PASSWORD, "192.0.2.200, 198.51.100.1")
    assert_uncached_oauth_error(blocked, 429, "invalid_request")
