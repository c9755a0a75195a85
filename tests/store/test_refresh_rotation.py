"""The rotation statement is the security core: exactly one winner, and nothing dead rotates."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from authserver.store import refresh, rotation
from authserver.store import users as user_store
from authserver.store.db import Database
from authserver.store.tables import refresh_families, refresh_tokens, users
from authserver.tokens.opaque import new_refresh_token, token_digest
from tests.store.conftest import Login


async def rotate(db: Database, token: str, client_id: str = "app", **kwargs: object) -> object:
    now = kwargs.pop("now", datetime.now(UTC))
    assert isinstance(now, datetime)
    return await rotation.rotate(
        db,
        old_hash=token_digest(token),
        new_hash=token_digest(new_refresh_token()),
        client_id=client_id,
        now=now,
        token_ttl=3600,
    )


async def test_rotation_returns_the_login_and_uses_the_token_up(db: Database, login: Login) -> None:
    grant = await rotation.rotate(
        db,
        old_hash=token_digest(login.token),
        new_hash=token_digest("successor"),
        client_id="app",
        now=datetime.now(UTC),
        token_ttl=3600,
    )
    assert grant is not None
    assert (grant.user_id, grant.client_id, grant.scope) == (login.user_id, "app", "read write")
    assert await rotate(db, login.token) is None
    record = await refresh.find_token(db, token_digest("successor"))
    assert record is not None
    assert record.family_id == grant.family_id
    assert record.rotated_at is None


async def test_twenty_concurrent_rotations_of_one_token_have_one_winner(
    db: Database, login: Login
) -> None:
    results = await asyncio.gather(*(rotate(db, login.token) for _ in range(20)))
    assert sum(result is not None for result in results) == 1


async def test_token_of_another_client_does_not_rotate_and_stays_usable(
    db: Database, login: Login
) -> None:
    assert await rotate(db, login.token, client_id="other") is None
    assert await rotate(db, login.token) is not None


async def test_revoked_family_does_not_rotate(db: Database, login: Login) -> None:
    record = await refresh.find_token(db, token_digest(login.token))
    assert record is not None
    now = datetime.now(UTC)
    assert await refresh.revoke_family(db, record.family_id, reason="test", now=now) is True
    assert await refresh.revoke_family(db, record.family_id, reason="test", now=now) is False
    assert await rotate(db, login.token) is None


async def test_disabled_users_tokens_do_not_rotate(db: Database, login: Login) -> None:
    await user_store.disable_user(db, "alice", datetime.now(UTC))
    assert await rotate(db, login.token) is None


async def test_expired_token_does_not_rotate(db: Database, login: Login) -> None:
    later = datetime.now(UTC) + timedelta(seconds=3601)
    assert await rotate(db, login.token, now=later) is None


async def test_successor_never_outlives_the_family(db: Database, login: Login) -> None:
    # family_max_age is 7200 s from the login; a rotation at +3000 s (before the token's own
    # 3600 s expiry) asking for a 5000 s successor gets one that ends with the family instead.
    at = datetime.now(UTC) + timedelta(seconds=3000)
    successor = new_refresh_token()
    grant = await rotation.rotate(
        db,
        old_hash=token_digest(login.token),
        new_hash=token_digest(successor),
        client_id="app",
        now=at,
        token_ttl=5000,
    )
    assert grant is not None
    family_end = (await _family_expiry(db, successor)).replace(microsecond=0)
    assert grant.expires_at.replace(microsecond=0) == family_end
    assert grant.expires_at < at + timedelta(seconds=5000)


async def test_only_the_digest_of_a_refresh_token_is_stored(db: Database, login: Login) -> None:
    async with db.statement() as conn:
        stored = (await conn.execute(select(refresh_tokens))).all()
    assert len(stored) == 1
    row_text = repr(stored[0]._mapping)
    assert login.token not in row_text
    assert login.token.removeprefix("asrt_") not in row_text
    assert stored[0].token_hash == token_digest(login.token)


async def _family_expiry(db: Database, token: str) -> datetime:
    async with db.statement() as conn:
        value = (
            await conn.execute(
                select(refresh_tokens.c.family_expires_at).where(
                    refresh_tokens.c.token_hash == token_digest(token)
                )
            )
        ).scalar_one()
    assert isinstance(value, datetime)
    return value


async def test_a_login_racing_a_password_change_is_never_left_alive(
    db: Database, login: Login, database_url: str
) -> None:
    """The password change's transaction has updated the user and revoked its families but
    not committed; a login that checked the old hash starts its family now. On PostgreSQL the
    family's INSERT … SELECT … FOR SHARE waits for the change to commit and then finds the new
    hash (without the share lock it would read the old row, insert, and outlive the change); on
    SQLite BEGIN IMMEDIATE makes it wait the same way."""
    from sqlalchemy import text

    from authserver.settings import Settings
    from authserver.store.db import open_database

    user = await user_store.get_user(db, "alice")
    assert user is not None
    changer = open_database(Settings(database_url=database_url))
    now = datetime.now(UTC)
    try:
        async with changer.transaction() as conn:
            await conn.execute(
                users.update()
                .where(users.c.id == user.id)
                .values(password_hash="a new hash", password_changed_at=now)
            )
            await conn.execute(refresh.revoke_user_families(user.id, reason="test", now=now))
            started = asyncio.create_task(
                refresh.start_family(
                    db,
                    user_id=user.id,
                    verified_password_hash=user.password_hash,
                    client_id="app",
                    scope="read",
                    token_hash=token_digest(new_refresh_token()),
                    now=now,
                    token_ttl=3600,
                    family_max_age=7200,
                )
            )
            if (
                db.dialect.name == "postgresql"
            ):  # wait (bounded) until the login is blocked on the user row
                async with asyncio.timeout(30):  # generous: the machine may be busy
                    while not started.done():
                        async with changer.engine.connect() as probe:
                            waiting = await probe.scalar(
                                text(
                                    "SELECT count(*) FROM pg_stat_activity WHERE "
                                    "datname = current_database() AND wait_event_type = 'Lock'"
                                )
                            )
                        if waiting:
                            break
                        await asyncio.sleep(0.01)
            else:
                await asyncio.sleep(0.05)  # let it reach BEGIN IMMEDIATE; either order is correct
        with pytest.raises(refresh.CredentialsChanged):
            await started
    finally:
        await changer.dispose()
    async with db.statement() as conn:
        live = await conn.scalar(
            select(func.count()).where(
                refresh_families.c.user_id == user.id, refresh_families.c.revoked_at.is_(None)
            )
        )
    assert live == 0
