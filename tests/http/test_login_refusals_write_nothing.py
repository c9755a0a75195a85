"""Refused login attempts cost the server reads only (security review, finding 2).

While a username or an IP is locked, an attempt is answered 429 without an argon2 check; it must
not write either, or a client could grow `audit_events` and the counter tables at HTTP speed and,
on SQLite, hold the one writer lock that token requests need. A lock is recorded once, by the
failure that set it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest
from sqlalchemy import Table, func, select

from authserver.services import Services
from authserver.store import audit as audit_store
from authserver.store.tables import (
    audit_events,
    login_ip_failures,
    login_known_ips,
    login_user_failures,
    login_user_ip_failures,
)
from tests.conftest import PASSWORD, RegisteredClient
from tests.helpers import metric_value, password_login

MakeClient = Callable[..., Awaitable[RegisteredClient]]
MakeUser = Callable[..., Awaitable[str]]
WRONG = "not the password"
WRITTEN_BY_LOGINS = (
    audit_events,
    login_user_failures,
    login_ip_failures,
    login_user_ip_failures,
    login_known_ips,
)


async def snapshot(services: Services) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table a login attempt may write."""
    rows: dict[str, list[tuple[object, ...]]] = {}
    async with services.db.statement() as conn:
        for table in WRITTEN_BY_LOGINS:
            result = await conn.execute(select(table).order_by(*table.primary_key.columns))
            rows[table.name] = [tuple(row) for row in result]
    return rows


async def count(services: Services, table: Table) -> int:
    async with services.db.statement() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


@pytest.mark.parametrize("settings_overrides", [{"login_max_failures": 2}], indirect=True)
async def test_attempts_at_a_locked_username_write_nothing(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    await make_user()
    client = await make_client()
    for _ in range(2):
        await password_login(http, client, password=WRONG)
    before = await snapshot(services)
    for password in [WRONG] * 20 + [PASSWORD]:
        assert (await password_login(http, client, password=password)).status_code == 429
    assert await snapshot(services) == before
    assert await metric_value(http, "authserver_login_refused_total") == 21


@pytest.mark.parametrize("settings_overrides", [{"login_ip_max_failures": 3}], indirect=True)
async def test_attempts_from_a_blocked_ip_create_no_counter_rows(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient
) -> None:
    client = await make_client()
    for name in ("u1", "u2", "u3"):
        await password_login(http, client, name, WRONG)
    before = await snapshot(services)
    for i in range(30):  # fresh usernames: each would have created a counter row
        assert (await password_login(http, client, f"victim{i}", WRONG)).status_code == 429
    assert await snapshot(services) == before
    assert await count(services, login_user_failures) == 3


@pytest.mark.parametrize("settings_overrides", [{"login_max_failures": 2}], indirect=True)
async def test_the_failure_that_locks_a_username_records_the_lock_once(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    user_id = await make_user()
    client = await make_client()
    for _ in range(2):
        await password_login(http, client, password=WRONG)
    for _ in range(5):
        await password_login(http, client, password=WRONG)  # refused: no row each
    recorded = await audit_store.latest(services.db, 100)
    assert [(e.event, e.outcome) for e in recorded] == [
        ("login.failure", "failure"),
        ("login.failure", "failure"),
        ("login.locked", "denied"),
    ]
    lock = recorded[-1]
    assert (lock.actor, lock.subject, lock.client_id) == ("alice", user_id, client.client_id)
    assert lock.detail == {"locked": "username", "seconds": 60}


@pytest.mark.parametrize("settings_overrides", [{"login_ip_max_failures": 2}], indirect=True)
async def test_the_failure_that_blocks_an_ip_records_the_block_once(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient
) -> None:
    client = await make_client()
    await password_login(http, client, "u1", WRONG)
    await password_login(http, client, "u2", WRONG)
    await password_login(http, client, "u3", WRONG)  # refused
    locks = [e for e in await audit_store.latest(services.db, 100) if e.event == "login.locked"]
    # u2 names no user: its name is not kept (finding 7), the address and the lock are.
    assert [(e.actor, e.ip, e.detail["locked"]) for e in locks] == [(None, "203.0.113.7", "ip")]
    assert 0 < int(str(locks[0].detail["seconds"])) <= 900


@pytest.mark.parametrize("settings_overrides", [{"login_max_failures": 2}], indirect=True)
async def test_a_right_password_that_would_have_locked_records_no_lock(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    """Every attempt is counted before its password is checked; the pre-count of a right
    password is taken back, and so is the lock it would have set."""
    await make_user()
    client = await make_client()
    await password_login(http, client, password=WRONG)
    assert (await password_login(http, client)).status_code == 200
    events = [e.event for e in await audit_store.latest(services.db, 100)]
    assert events == ["login.failure", "login.success"]
