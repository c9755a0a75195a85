"""A code exchange racing a password change (PostgreSQL, where the two really overlap): the
family starts only while the login session is live, under a share lock on the session and user
rows, so whichever commits first, no family outlives the change (store/refresh.py
`start_session_family`, store/sessions.py `end_user_sessions`; security review, finding 1).

Each test makes the overlap happen for sure: one side holds its row locks in an open
transaction until the other is seen waiting for them in pg_stat_activity."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import make_url

from authserver.models import CodeGrant, LoginSession
from authserver.store import clients as client_store
from authserver.store import codes, refresh, sessions
from authserver.store import users as user_store
from authserver.store.db import Database
from authserver.store.refresh import revoke_user_families
from authserver.store.tables import refresh_families, users
from tests.store.conftest import client_record
from tests.store.test_codes_and_pending_requests import CHALLENGE

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

NOW = datetime.now(UTC)


@pytest.fixture
async def observer(database_url: str) -> AsyncIterator[Any]:
    """A plain asyncpg connection for watching pg_stat_activity."""
    url = make_url(database_url).set(drivername="postgresql")
    conn = await asyncpg.connect(url.render_as_string(hide_password=False))
    yield conn
    await conn.close()


async def blocked_on_a_lock(observer: Any) -> None:
    deadline = asyncio.get_running_loop().time() + 30  # generous: the machine may be busy
    while asyncio.get_running_loop().time() < deadline:
        waiting = await observer.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        if waiting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("nothing waited for a row lock")


async def a_code(db: Database) -> tuple[LoginSession, bytes]:
    alice = await user_store.create_user(db, "alice", "argon2-hash-placeholder", NOW)
    await client_store.create_client(db, client_record("app"))
    session_id = await sessions.start_session(
        db,
        user_id=alice.id,
        verified_password_hash=alice.password_hash,
        token_hash=secrets.token_bytes(32),
        now=NOW,
        ttl=3600,
        replaces=None,
        answering=None,
    )
    session = LoginSession(session_id, alice.id, "alice", NOW)
    code_hash = hashlib.sha256(secrets.token_bytes(32)).digest()
    new = codes.NewCode(code_hash, "app", "https://app.example/cb", False, CHALLENGE, "read")
    await codes.issue_code(db, new, session, now=NOW, ttl=60)
    return session, code_hash


async def exchange(db: Database, code_hash: bytes) -> codes.Redeemed | codes.Refused | None:
    def no_problem(_code: CodeGrant) -> None:
        return None

    return await codes.redeem_code(
        db,
        code_hash=code_hash,
        client_id="app",
        now=NOW,
        problem=no_problem,
        token_hash=secrets.token_bytes(32),
        token_ttl=3600,
        family_max_age=86_400,
    )


async def live_families(db: Database) -> int:
    query = select(refresh_families.c.id).where(refresh_families.c.revoked_at.is_(None))
    async with db.read() as conn:
        return len((await conn.execute(query)).all())


async def test_an_exchange_that_waits_for_a_password_change_starts_no_family(
    db: Database, observer: Any
) -> None:
    session, code_hash = await a_code(db)
    async with db.transaction() as change:  # users set-password, not yet committed
        await change.execute(
            update(users).where(users.c.id == session.user_id).values(password_hash="new")
        )
        await change.execute(
            sessions.end_user_sessions(session.user_id, reason="password_changed", now=NOW)
        )
        await change.execute(
            revoke_user_families(session.user_id, reason="password_changed", now=NOW)
        )
        racing = asyncio.create_task(exchange(db, code_hash))
        await blocked_on_a_lock(observer)
    result = await racing
    assert isinstance(result, codes.Refused), result
    assert result.reason == "session_ended"
    assert await live_families(db) == 0


async def test_a_password_change_that_waits_for_an_exchange_revokes_its_family(
    db: Database, observer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _session, code_hash = await a_code(db)
    started, release = asyncio.Event(), asyncio.Event()
    original = refresh.start_session_family

    async def start_then_hold(*args: Any, **kwargs: Any) -> Any:
        family = await original(*args, **kwargs)
        started.set()
        await release.wait()  # the exchange's transaction stays open, its share locks held
        return family

    monkeypatch.setattr(codes, "start_session_family", start_then_hold)
    racing = asyncio.create_task(exchange(db, code_hash))
    await started.wait()
    change = asyncio.create_task(
        user_store.set_password(db, "alice", "another-hash", datetime.now(UTC))
    )
    await blocked_on_a_lock(observer)
    release.set()
    assert isinstance(await racing, codes.Redeemed)
    assert await change is not None
    assert await live_families(db) == 0  # the change saw the family once it could go on
