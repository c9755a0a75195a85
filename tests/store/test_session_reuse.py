"""The session-reuse statement of GET /authorize (store/reuse.py), on both backends: a code and
its `code.issued` row for a live session, exactly as `observability.audit.record` writes one;
nothing at all without a live session."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from authserver.store import clients as client_store
from authserver.store import codes, reuse, sessions
from authserver.store import users as user_store
from authserver.store.db import Database
from authserver.store.tables import audit_events, authorization_codes
from tests.store.conftest import client_record
from tests.store.test_codes_and_pending_requests import CHALLENGE

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def digest() -> bytes:
    return hashlib.sha256(secrets.token_bytes(32)).digest()


def new_code() -> codes.NewCode:
    return codes.NewCode(digest(), "app", "https://app.example/cb", False, CHALLENGE, "read write")


async def issue(db: Database, cookie_hash: bytes, now: datetime = NOW) -> object:
    return await reuse.issue_code_if_signed_in(
        db, new_code(), session_token_hash=cookie_hash, now=now, ttl=60, ip="203.0.113.7"
    )


async def test_a_live_session_gets_a_code_and_its_audit_row_in_one_go(db: Database) -> None:
    alice = await user_store.create_user(db, "alice", "argon2-hash-placeholder", NOW)
    await client_store.create_client(db, client_record("app"))
    cookie_hash = digest()
    session_id = await sessions.start_session(
        db,
        user_id=alice.id,
        verified_password_hash=alice.password_hash,
        token_hash=cookie_hash,
        now=NOW - timedelta(minutes=5),
        ttl=3600,
        replaces=None,
        answering=None,
    )
    assert await issue(db, cookie_hash) == alice.id
    async with db.read() as conn:
        code = (await conn.execute(select(authorization_codes))).one()
        audit = (await conn.execute(select(audit_events))).one()
    assert (code.user_id, code.session_id, code.client_id, code.scope) == (
        alice.id,
        session_id,
        "app",
        "read write",
    )
    assert code.auth_time == NOW - timedelta(minutes=5)  # the sign-in's, not the code's
    assert code.expires_at == NOW + timedelta(seconds=60)
    assert (audit.event, audit.outcome, audit.actor, audit.client_id, audit.ip) == (
        "code.issued",
        "success",
        "alice",
        "app",
        "203.0.113.7",
    )
    assert audit.subject == str(alice.id)
    assert audit.occurred_at == NOW
    expected = {"scope": "read write", "session": str(session_id)}
    assert audit.detail == json.dumps(expected, sort_keys=True)  # as record() writes it


async def test_no_live_session_writes_nothing(db: Database) -> None:
    alice = await user_store.create_user(db, "alice", "argon2-hash-placeholder", NOW)
    await client_store.create_client(db, client_record("app"))
    ended = digest()
    session_id = await sessions.start_session(
        db,
        user_id=alice.id,
        verified_password_hash=alice.password_hash,
        token_hash=ended,
        now=NOW,
        ttl=3600,
        replaces=None,
        answering=None,
    )
    await sessions.end_session(db, session_id, reason=sessions.LOGOUT, now=NOW)
    assert await issue(db, ended) is None
    assert await issue(db, digest()) is None  # unknown cookie
    async with db.read() as conn:
        assert (await conn.execute(select(authorization_codes))).first() is None
        assert (await conn.execute(select(audit_events))).first() is None
