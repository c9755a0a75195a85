"""Password hashes follow the configured argon2 parameters; client secrets are digests only."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Literal

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from authserver.login.passwords import Passwords, make_passwords
from authserver.services import Services
from authserver.store import users as user_store
from authserver.store.tables import clients
from tests.conftest import PASSWORD, RegisteredClient
from tests.helpers import password_login


async def test_login_upgrades_a_hash_made_with_old_parameters(
    http: httpx.AsyncClient,
    services: Services,
    make_client: Callable[..., Awaitable[RegisteredClient]],
) -> None:
    old_parameters = services.settings.model_copy(update={"argon2_time_cost": 3})
    old_hash = await make_passwords(old_parameters).hash(PASSWORD)
    await user_store.create_user(services.db, "alice", old_hash, datetime.now(UTC))
    client = await make_client()

    response = await password_login(http, client)

    assert response.status_code == 200, response.text
    user = await user_store.get_user(services.db, "alice")
    assert user is not None
    assert user.password_hash != old_hash
    assert "t=1," in user.password_hash  # the configured time cost
    assert not services.passwords.needs_rehash(user.password_hash)
    assert (await password_login(http, client)).status_code == 200


async def test_unknown_user_still_costs_one_argon2_verification(services: Services) -> None:
    calls: list[str] = []

    class CountingHasher(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
            calls.append(str(hash))
            return super().verify(hash, password)

    hasher = CountingHasher(time_cost=1, memory_cost=8, parallelism=1)
    passwords = Passwords(hasher, hasher.hash("dummy"))
    assert await passwords.verify(None, PASSWORD) is False
    assert calls == [passwords.dummy_hash]


async def test_client_secret_is_stored_only_as_a_digest(
    services: Services, make_client: Callable[..., Awaitable[RegisteredClient]]
) -> None:
    client = await make_client()
    assert client.secret is not None
    assert len(client.secret) >= 43  # 256 bits, URL-safe base64
    async with services.db.statement() as conn:
        row = (await conn.execute(select(clients))).one()
    assert client.secret.encode() not in row.secret_hash
    assert client.secret not in repr(row._mapping)
    assert len(row.secret_hash) == 32


async def test_client_deleted_during_login_is_invalid_client_not_a_server_error(
    http: httpx.AsyncClient,
    services: Services,
    make_client: Callable[..., Awaitable[RegisteredClient]],
    make_user: Callable[..., Awaitable[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The client row is read, then deleted by an operator before the login is recorded."""
    from authserver import admin

    client = await make_client()
    await make_user()

    class DeletingPasswords(Passwords):
        async def verify(self, password_hash: str | None, password: str) -> bool:
            ok = await super().verify(password_hash, password)
            await admin.delete_client(services.db, client.client_id)
            return ok

    real = services.passwords
    monkeypatch.setattr(services, "passwords", DeletingPasswords(real.hasher, real.dummy_hash))
    response = await password_login(http, client)
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"


async def test_concurrent_right_password_logins_for_one_user_all_succeed(
    http: httpx.AsyncClient,
    make_client: Callable[..., Awaitable[RegisteredClient]],
    make_user: Callable[..., Awaitable[str]],
) -> None:
    """A success resets the username's counter while other attempts wait on its row lock.

    Attempts are counted before their password is checked, so a burst larger than the limit
    (10) may see a brief 429 for the attempts beyond it; never a 5xx, and no lasting lock.
    """
    client = await make_client()
    await make_user()
    within_limit = await asyncio.gather(*(password_login(http, client) for _ in range(10)))
    assert [response.status_code for response in within_limit] == [200] * 10

    burst = await asyncio.gather(*(password_login(http, client) for _ in range(14)))
    statuses = [response.status_code for response in burst]
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.count(200) >= 10
    assert (await password_login(http, client)).status_code == 200
