"""The issue-12 tables keep their promises on both backends: hashes are unique, and deleting a
client, a user, a login session or a refresh-token family takes (or unlinks) what hangs off it."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from authserver.store import clients as client_store
from authserver.store import users as user_store
from authserver.store.db import Database
from authserver.store.tables import (
    authorization_codes,
    authorization_requests,
    clients,
    consents,
    login_sessions,
    refresh_families,
    users,
)
from tests.store.conftest import client_record

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


async def _user_and_client(db: Database) -> tuple[uuid.UUID, str]:
    suffix = secrets.token_hex(4)
    user = await user_store.create_user(db, f"u-{suffix}", "argon2-hash-placeholder", NOW)
    await client_store.create_client(db, client_record(f"c-{suffix}"))
    return user.id, f"c-{suffix}"


async def _session(db: Database, user_id: uuid.UUID) -> uuid.UUID:
    session_id = uuid.uuid4()
    async with db.transaction() as conn:
        await conn.execute(
            insert(login_sessions).values(
                id=session_id,
                token_hash=secrets.token_bytes(32),
                user_id=user_id,
                auth_time=NOW,
                expires_at=NOW + timedelta(hours=12),
            )
        )
    return session_id


async def _code(
    db: Database,
    user_id: uuid.UUID,
    client_id: str,
    family: uuid.UUID | None,
    session_id: uuid.UUID | None = None,
) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            insert(authorization_codes).values(
                id=uuid.uuid4(),
                code_hash=secrets.token_bytes(32),
                client_id=client_id,
                user_id=user_id,
                redirect_uri="https://app.example/cb",
                redirect_uri_sent=True,
                code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                scope="read",
                auth_time=NOW,
                issued_at=NOW,
                expires_at=NOW + timedelta(seconds=60),
                family_id=family,
                session_id=session_id,
            )
        )


async def _pending(db: Database, client_id: str, session_id: uuid.UUID | None) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            insert(authorization_requests).values(
                id=uuid.uuid4(),
                handle_hash=secrets.token_bytes(32),
                client_id=client_id,
                redirect_uri="https://app.example/cb",
                redirect_uri_sent=False,
                scope="read",
                state="xyz",
                code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                session_id=session_id,
                created_at=NOW,
                expires_at=NOW + timedelta(minutes=30),
            )
        )


async def _count(db: Database, table: object, **where: object) -> int:
    query = select(func.count()).select_from(table)  # type: ignore[arg-type]
    for column, value in where.items():
        query = query.where(table.c[column] == value)  # type: ignore[attr-defined]
    async with db.statement() as conn:
        return int((await conn.execute(query)).scalar_one())


async def test_client_defaults_to_no_redirect_uri_and_no_consent(db: Database) -> None:
    _, client_id = await _user_and_client(db)
    async with db.statement() as conn:
        row = (
            await conn.execute(
                select(clients.c.redirect_uris, clients.c.consent).where(
                    clients.c.client_id == client_id
                )
            )
        ).one()
    assert (row.redirect_uris, row.consent) == ("", False)


async def test_a_session_hash_is_unique(db: Database) -> None:
    user_id, _ = await _user_and_client(db)
    digest = secrets.token_bytes(32)
    row = {"user_id": user_id, "auth_time": NOW, "expires_at": NOW, "token_hash": digest}
    async with db.transaction() as conn:
        await conn.execute(insert(login_sessions).values(id=uuid.uuid4(), **row))
    with pytest.raises(IntegrityError):
        async with db.transaction() as conn:
            await conn.execute(insert(login_sessions).values(id=uuid.uuid4(), **row))


async def test_deleting_a_client_deletes_its_codes_requests_and_consents(db: Database) -> None:
    user_id, client_id = await _user_and_client(db)
    await _code(db, user_id, client_id, None)
    await _pending(db, client_id, None)
    async with db.transaction() as conn:
        await conn.execute(
            insert(consents).values(
                user_id=user_id, client_id=client_id, scope="read", granted_at=NOW, updated_at=NOW
            )
        )
    assert await client_store.delete_client(db, client_id)
    for table in (authorization_codes, authorization_requests, consents):
        assert await _count(db, table, client_id=client_id) == 0


async def test_deleting_a_user_deletes_sessions_codes_and_consents(db: Database) -> None:
    user_id, client_id = await _user_and_client(db)
    session_id = await _session(db, user_id)
    await _pending(db, client_id, session_id)
    await _code(db, user_id, client_id, None)
    async with db.transaction() as conn:
        await conn.execute(
            insert(consents).values(
                user_id=user_id, client_id=client_id, scope="read", granted_at=NOW, updated_at=NOW
            )
        )
        await conn.execute(delete(users).where(users.c.id == user_id))
    assert await _count(db, login_sessions, user_id=user_id) == 0
    assert await _count(db, authorization_requests, session_id=session_id) == 0
    assert await _count(db, authorization_codes, user_id=user_id) == 0
    assert await _count(db, consents, user_id=user_id) == 0


async def test_a_purged_family_unlinks_its_code_instead_of_deleting_it(db: Database) -> None:
    user_id, client_id = await _user_and_client(db)
    family_id = uuid.uuid4()
    async with db.transaction() as conn:
        await conn.execute(
            insert(refresh_families).values(
                id=family_id,
                user_id=user_id,
                client_id=client_id,
                scope="read",
                created_at=NOW,
                expires_at=NOW + timedelta(days=30),
            )
        )
    await _code(db, user_id, client_id, family_id)
    async with db.transaction() as conn:
        await conn.execute(delete(refresh_families).where(refresh_families.c.id == family_id))
        family = (
            await conn.execute(
                select(authorization_codes.c.family_id).where(
                    authorization_codes.c.client_id == client_id
                )
            )
        ).scalar_one()
    assert family is None


async def test_a_code_cannot_point_at_a_family_that_does_not_exist(db: Database) -> None:
    user_id, client_id = await _user_and_client(db)
    with pytest.raises(IntegrityError):
        await _code(db, user_id, client_id, uuid.uuid4())


async def test_a_purged_session_unlinks_its_code_instead_of_deleting_it(db: Database) -> None:
    """A used code is kept (for replay detection) after its session is purged; it can start no
    family any more either way."""
    user_id, client_id = await _user_and_client(db)
    session_id = await _session(db, user_id)
    await _code(db, user_id, client_id, None, session_id)
    async with db.transaction() as conn:
        await conn.execute(delete(login_sessions).where(login_sessions.c.id == session_id))
    assert await _count(db, authorization_codes, client_id=client_id) == 1
    assert await _count(db, authorization_codes, session_id=session_id) == 0
