"""REQUEST_TIMEOUT: a request still running after it is answered 503 temporarily_unavailable
with Retry-After, and the cancelled work leaves the database as it was (on SQLite and
PostgreSQL): the transaction it was in is rolled back, never half committed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from authserver.services import Services
from authserver.store import login_failures
from authserver.store.tables import login_ip_failures, login_user_failures
from tests.conftest import PASSWORD, RegisteredClient
from tests.helpers import assert_uncached_oauth_error, password_login

MakeClient = Callable[..., Awaitable[RegisteredClient]]
MakeUser = Callable[..., Awaitable[str]]
TIMEOUT = 0.5


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"request_timeout": TIMEOUT}


async def counter_rows(services: Services) -> int:
    async with services.db.statement() as conn:
        users = (await conn.execute(select(func.count()).select_from(login_user_failures))).scalar()
        ips = (await conn.execute(select(func.count()).select_from(login_ip_failures))).scalar()
    return int(users or 0) + int(ips or 0)


def assert_timed_out(response: httpx.Response, elapsed: float) -> None:
    assert_uncached_oauth_error(response, 503, "temporarily_unavailable")
    assert response.headers["retry-after"].isdigit()
    # The lower bound is the point; the upper one only catches a hang (the handlers sleep 30 s
    # or answer 200), with room for a busy machine.
    assert TIMEOUT <= elapsed < TIMEOUT + 10, elapsed


async def test_a_request_cancelled_inside_a_transaction_changes_nothing_and_answers_503(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    make_user: MakeUser,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The login-limit transaction has written the username's and the IP's counter rows when it
    stalls (a lock held elsewhere, a database that stopped answering); the timeout cancels it."""
    client = await make_client()
    await make_user()
    original = login_failures._locked_ip

    async def stalled(*args: Any) -> Any:
        result = await original(*args)
        await asyncio.sleep(30)
        return result

    monkeypatch.setattr(login_failures, "_locked_ip", stalled)
    started = time.monotonic()
    response = await password_login(http, client)
    assert_timed_out(response, time.monotonic() - started)
    assert await counter_rows(services) == 0  # both inserts were rolled back

    monkeypatch.setattr(login_failures, "_locked_ip", original)
    for _ in range(3):  # the connection the cancelled request held is usable again
        ok = await password_login(http, client)
        assert ok.status_code == 200, ok.text


async def test_a_body_trickling_in_slower_than_the_timeout_answers_503(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()

    async def trickle() -> AsyncIterator[bytes]:
        yield b"grant_type=password&username=alice"
        await asyncio.sleep(TIMEOUT * 4)
        yield f"&password={PASSWORD}".encode()

    started = time.monotonic()
    response = await http.post(
        "/token",
        content=trickle(),
        auth=client.basic,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_timed_out(response, time.monotonic() - started)


async def test_requests_within_the_timeout_are_untouched(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    response = await password_login(http, client)
    assert response.status_code == 200, response.text
    health = await http.get("/healthz")
    assert health.status_code == 200
