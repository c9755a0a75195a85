"""Pending authorization requests, codes and remembered consent in the store, on both backends:
a form is answered once, a code is redeemed once, and a refused exchange still burns it."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from authserver.models import CodeGrant, LoginSession, User
from authserver.store import authorization_requests as pending_store
from authserver.store import clients as client_store
from authserver.store import codes, consents, sessions
from authserver.store import users as user_store
from authserver.store.db import Database
from authserver.store.tables import refresh_families
from tests.store.conftest import client_record

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
MAX_AGE = 86_400


def digest() -> bytes:
    return hashlib.sha256(secrets.token_bytes(32)).digest()


async def signed_in(db: Database) -> LoginSession:
    alice: User = await user_store.create_user(db, "alice", "argon2-hash-placeholder", NOW)
    await client_store.create_client(db, client_record("app"))
    await client_store.create_client(db, client_record("other"))
    session_id = await sessions.start_session(
        db,
        user_id=alice.id,
        verified_password_hash=alice.password_hash,
        token_hash=digest(),
        now=NOW,
        ttl=3600,
        replaces=None,
        answering=None,
    )
    return LoginSession(session_id, alice.id, "alice", NOW)


async def pending(db: Database, session: LoginSession | None) -> bytes:
    handle_hash = digest()
    await pending_store.create_request(
        db,
        handle_hash=handle_hash,
        client_id="app",
        redirect_uri="https://app.example/cb",
        redirect_uri_sent=True,
        scope="read",
        state="xyz",
        code_challenge=CHALLENGE,
        prompt=None,
        session_id=None if session is None else session.id,
        now=NOW,
    )
    return handle_hash


def new_code() -> codes.NewCode:
    return codes.NewCode(digest(), "app", "https://app.example/cb", True, CHALLENGE, "read")


async def redeem(
    db: Database, code_hash: bytes, client_id: str = "app", problem: str | None = None
) -> codes.Redeemed | codes.Refused | None:
    def check(_code: CodeGrant) -> str | None:
        return problem

    return await codes.redeem_code(
        db,
        code_hash=code_hash,
        client_id=client_id,
        now=NOW + timedelta(seconds=5),
        problem=check,
        token_hash=digest(),
        token_ttl=3600,
        family_max_age=MAX_AGE,
    )


async def test_a_pending_request_is_found_until_it_expires(db: Database) -> None:
    await signed_in(db)
    handle_hash = await pending(db, None)
    found = await pending_store.find_request(db, handle_hash, NOW)
    assert found is not None
    assert (found.client_id, found.scope, found.state) == ("app", "read", "xyz")
    assert found.session_id is None
    later = NOW + timedelta(seconds=pending_store.PENDING_TTL)
    assert await pending_store.find_request(db, handle_hash, later) is None


async def test_a_pending_request_is_answered_once_and_only_by_its_session(db: Database) -> None:
    session = await signed_in(db)
    handle_hash = await pending(db, session)
    stranger = LoginSession(
        await sessions.start_session(
            db,
            user_id=session.user_id,
            verified_password_hash="argon2-hash-placeholder",
            token_hash=digest(),
            now=NOW,
            ttl=3600,
            replaces=None,
            answering=None,
        ),
        session.user_id,
        "alice",
        NOW,
    )
    kwargs = {"handle_hash": handle_hash, "session": stranger, "now": NOW, "ttl": 60}
    assert await codes.issue_code_for_request(db, code_hash=digest(), **kwargs) is None  # type: ignore[arg-type]
    first = await codes.issue_code_for_request(
        db, handle_hash=handle_hash, code_hash=digest(), session=session, now=NOW, ttl=60
    )
    again = await codes.issue_code_for_request(
        db, handle_hash=handle_hash, code_hash=digest(), session=session, now=NOW, ttl=60
    )
    assert first is not None
    assert first.redirect_uri == "https://app.example/cb"
    assert again is None


async def test_an_approval_is_remembered_and_replaced_by_a_wider_one(db: Database) -> None:
    session = await signed_in(db)
    assert await consents.remembered_scope(db, session.user_id, "app") is None
    for scope in ("read", "read write"):
        await codes.issue_code_for_request(
            db,
            handle_hash=await pending(db, session),
            code_hash=digest(),
            session=session,
            now=NOW,
            ttl=60,
            remember_scope=scope,
        )
    assert await consents.remembered_scope(db, session.user_id, "app") == "read write"
    assert await consents.remembered_scope(db, session.user_id, "other") is None


async def test_a_code_is_redeemed_once_and_then_shows_the_family_it_started(db: Database) -> None:
    session = await signed_in(db)
    code = new_code()
    await codes.issue_code(db, code, session, now=NOW, ttl=60)
    redeemed = await redeem(db, code.code_hash)
    assert isinstance(redeemed, codes.Redeemed)
    family = redeemed.family
    assert family.user_id == session.user_id
    assert family.scope == "read"
    assert await redeem(db, code.code_hash) is None
    stored = await codes.find_code(db, code.code_hash)
    assert stored is not None
    assert stored.used_at is not None
    assert stored.family_id == family.family_id
    async with db.read() as conn:
        expires_at = (
            await conn.execute(
                select(refresh_families.c.expires_at).where(
                    refresh_families.c.id == family.family_id
                )
            )
        ).scalar_one()
    assert expires_at == NOW + timedelta(seconds=MAX_AGE)  # from the sign-in, not the exchange


async def test_another_clients_presentation_neither_redeems_nor_burns_the_code(
    db: Database,
) -> None:
    session = await signed_in(db)
    code = new_code()
    await codes.issue_code(db, code, session, now=NOW, ttl=60)
    assert await redeem(db, code.code_hash, client_id="other") is None
    assert isinstance(await redeem(db, code.code_hash), codes.Redeemed)


async def test_a_refused_exchange_burns_the_code_and_starts_nothing(db: Database) -> None:
    session = await signed_in(db)
    code = new_code()
    await codes.issue_code(db, code, session, now=NOW, ttl=60)
    refused = await redeem(db, code.code_hash, problem="code_verifier")
    assert isinstance(refused, codes.Refused)
    assert refused.reason == "code_verifier"
    assert await redeem(db, code.code_hash) is None
    stored = await codes.find_code(db, code.code_hash)
    assert stored is not None
    assert stored.used_at is not None
    assert stored.family_id is None


async def test_a_code_of_an_ended_session_starts_no_family(db: Database) -> None:
    session = await signed_in(db)
    code = new_code()
    await codes.issue_code(db, code, session, now=NOW, ttl=60)
    await sessions.end_session(db, session.id, reason=sessions.LOGOUT, now=NOW)
    refused = await redeem(db, code.code_hash)
    assert isinstance(refused, codes.Refused)
    assert refused.reason == "session_ended"
    async with db.read() as conn:
        assert (await conn.execute(select(refresh_families.c.id))).first() is None
