"""A login must not outlive a credential change that overlaps it (security review, finding 1).

The password grant reads the user, spends tens of milliseconds in argon2, then starts a family.
A password change or a disable that commits in between revokes only the families that exist when
it commits, so the login's family is inserted only if the user row still carries the hash that
was verified and is still enabled. The tests run the change from inside the password check, the
exact moment an attacker racing the owner would aim for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from sqlalchemy import func, select

from authserver import admin
from authserver.login.passwords import Passwords
from authserver.services import Services
from authserver.store import users as user_store
from authserver.store.tables import refresh_families
from tests.conftest import PASSWORD, RegisteredClient
from tests.helpers import assert_uncached_oauth_error, password_login

MakeClient = Callable[..., Awaitable[RegisteredClient]]
MakeUser = Callable[..., Awaitable[str]]
NEW_PASSWORD = "a brand new passphrase"


@dataclass(frozen=True)
class ChangeDuringCheck:
    """Passwords whose verify() lets `change` commit after the hash was read and checked."""

    real: Passwords
    change: Callable[[], Awaitable[None]]

    async def verify(self, password_hash: str | None, password: str) -> bool:
        valid = await self.real.verify(password_hash, password)
        await self.change()
        return valid

    async def hash(self, password: str) -> str:
        return await self.real.hash(password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self.real.needs_rehash(password_hash)


async def live_families(services: Services) -> int:
    query = select(func.count()).where(refresh_families.c.revoked_at.is_(None))
    async with services.db.statement() as conn:
        return int((await conn.execute(query)).scalar_one())


def change_once(change: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    done = False

    async def once() -> None:
        nonlocal done
        if not done:
            done = True
            await change()

    return once


async def test_login_that_overlaps_a_password_change_gets_no_session(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    real = services.passwords

    async def set_password() -> None:
        await admin.set_password(services.db, real, "alice", NEW_PASSWORD, datetime.now(UTC))

    services.passwords = ChangeDuringCheck(real, change_once(set_password))  # type: ignore[assignment]
    response = await password_login(http, client)  # the old password, right when it was read
    assert_uncached_oauth_error(response, 400, "invalid_grant")
    assert await live_families(services) == 0
    services.passwords = real
    assert (await password_login(http, client, password=NEW_PASSWORD)).status_code == 200


async def test_login_that_overlaps_disabling_the_user_gets_no_session(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    real = services.passwords

    async def disable() -> None:
        await admin.disable_user(services.db, "alice", datetime.now(UTC))

    services.passwords = ChangeDuringCheck(real, change_once(disable))  # type: ignore[assignment]
    response = await password_login(http, client)
    assert_uncached_oauth_error(response, 400, "invalid_grant")
    assert await live_families(services) == 0


async def test_login_that_overlaps_another_logins_rehash_of_the_same_password_succeeds(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    """A rehash (new argon2 parameters) stores a new hash of the same password: not a change.
    The login that lost the race re-checks the password against the new hash and goes on."""
    client = await make_client()
    await make_user()
    real = services.passwords

    async def rehash_by_another_login() -> None:
        user = await user_store.get_user(services.db, "alice")
        assert user is not None
        new_hash = await real.hash(PASSWORD)
        await user_store.rehash_password(services.db, user.id, user.password_hash, new_hash)

    services.passwords = ChangeDuringCheck(real, change_once(rehash_by_another_login))  # type: ignore[assignment]
    response = await password_login(http, client)
    assert response.status_code == 200, response.text
    assert await live_families(services) == 1


async def test_failed_login_after_an_overlapping_change_is_audited_with_its_reason(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    from authserver.store import audit as audit_store

    client = await make_client()
    await make_user()
    real = services.passwords

    async def set_password() -> None:
        await admin.set_password(services.db, real, "alice", NEW_PASSWORD, datetime.now(UTC))

    services.passwords = ChangeDuringCheck(real, change_once(set_password))  # type: ignore[assignment]
    await password_login(http, client)
    last = (await audit_store.latest(services.db, 1))[0]
    assert (last.event, last.outcome, last.detail.get("reason")) == (
        "login.failure",
        "failure",
        "credentials_changed",
    )
