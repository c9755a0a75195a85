"""Login sessions of /authorize in the store, on both backends: only a live session is found, and
every way SPEC ends one (logout, password change, disable) ends it for good."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from authserver.models import User
from authserver.store import revocation, sessions
from authserver.store import users as user_store
from authserver.store.db import Database
from authserver.store.refresh import CredentialsChanged

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
TTL = 3600


def digest() -> bytes:
    return hashlib.sha256(secrets.token_bytes(32)).digest()


async def user(db: Database, name: str = "alice") -> User:
    return await user_store.create_user(db, name, "argon2-hash-placeholder", NOW)


async def start(db: Database, who: User, token_hash: bytes, **extra: object) -> uuid.UUID:
    values: dict[str, object] = {"replaces": None, "answering": None, "now": NOW, "ttl": TTL}
    values.update(extra)
    return await sessions.start_session(
        db,
        user_id=who.id,
        verified_password_hash=who.password_hash,
        token_hash=token_hash,
        **values,  # type: ignore[arg-type]
    )


async def test_a_started_session_is_found_by_its_hash_until_it_expires(db: Database) -> None:
    alice = await user(db)
    token_hash = digest()
    session_id = await start(db, alice, token_hash)
    found = await sessions.find_live_session(db, token_hash, NOW + timedelta(seconds=TTL - 1))
    assert found is not None
    assert (found.id, found.user_id, found.username, found.auth_time) == (
        session_id,
        alice.id,
        "alice",
        NOW,
    )
    assert await sessions.find_live_session(db, token_hash, NOW + timedelta(seconds=TTL)) is None
    assert await sessions.find_live_session(db, digest(), NOW) is None


async def test_a_session_does_not_start_once_the_password_changed(db: Database) -> None:
    alice = await user(db)
    await user_store.set_password(db, "alice", "another-hash", NOW)
    with pytest.raises(CredentialsChanged):
        await start(db, alice, digest())


async def test_a_session_does_not_start_for_a_disabled_user(db: Database) -> None:
    alice = await user(db)
    await user_store.disable_user(db, "alice", NOW)
    with pytest.raises(CredentialsChanged):
        await start(db, alice, digest())


async def test_a_new_sign_in_in_the_same_browser_ends_the_previous_session(db: Database) -> None:
    alice, bob = await user(db, "alice"), await user(db, "bob")
    first, second = digest(), digest()
    await start(db, alice, first)
    await start(db, bob, second, replaces=first)
    assert await sessions.find_live_session(db, first, NOW) is None
    assert await sessions.find_live_session(db, second, NOW) is not None


async def test_logout_ends_one_session_once(db: Database) -> None:
    alice = await user(db)
    mine, other = digest(), digest()
    session_id = await start(db, alice, mine)
    await start(db, alice, other)
    assert await sessions.end_session(db, session_id, reason=sessions.LOGOUT, now=NOW)
    assert not await sessions.end_session(db, session_id, reason=sessions.LOGOUT, now=NOW)
    assert await sessions.find_live_session(db, mine, NOW) is None
    assert await sessions.find_live_session(db, other, NOW) is not None  # another browser's


@pytest.mark.parametrize("change", ["set_password", "disable", "revoke_user"])
async def test_every_user_wide_change_ends_all_of_the_users_sessions(
    db: Database, change: str
) -> None:
    alice, bob = await user(db, "alice"), await user(db, "bob")
    alices = [digest(), digest()]
    for token_hash in alices:
        await start(db, alice, token_hash)
    bobs = digest()
    await start(db, bob, bobs)
    if change == "set_password":
        await user_store.set_password(db, "alice", "another-hash", NOW)
    elif change == "disable":
        await user_store.disable_user(db, "alice", NOW)
    else:
        await revocation.revoke_user_sessions(db, "alice", NOW)
    for token_hash in alices:
        assert await sessions.find_live_session(db, token_hash, NOW) is None
    assert await sessions.find_live_session(db, bobs, NOW) is not None
