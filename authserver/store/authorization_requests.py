"""Pending authorization requests: a request that passed validation at GET /authorize and waits
for the person on the sign-in or consent page. The page's form carries a random handle; only
its SHA-256 is stored. A request is answered at most once: `take_request` deletes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from authserver.models import PendingAuthorization
from authserver.store.db import Database
from authserver.store.refresh import OwnerGone
from authserver.store.tables import authorization_requests

ar = authorization_requests

# How long the sign-in or consent page stays answerable: Hydra's login/consent request and
# Keycloak's login timeout both default to 30 minutes.
PENDING_TTL = 1800

_COLUMNS = (
    ar.c.id,
    ar.c.client_id,
    ar.c.redirect_uri,
    ar.c.redirect_uri_sent,
    ar.c.scope,
    ar.c.state,
    ar.c.code_challenge,
    ar.c.prompt,
    ar.c.session_id,
    ar.c.expires_at,
)


def _pending(row: Sequence[Any]) -> PendingAuthorization:
    return PendingAuthorization(*row)


async def create_request(
    db: Database,
    *,
    handle_hash: bytes,
    client_id: str,
    redirect_uri: str,
    redirect_uri_sent: bool,
    scope: str,
    state: str | None,
    code_challenge: str,
    prompt: str | None,
    session_id: uuid.UUID | None,
    now: datetime,
) -> PendingAuthorization:
    pending = PendingAuthorization(
        id=uuid.uuid4(),
        client_id=client_id,
        redirect_uri=redirect_uri,
        redirect_uri_sent=redirect_uri_sent,
        scope=scope,
        state=state,
        code_challenge=code_challenge,
        prompt=prompt,
        session_id=session_id,
        expires_at=now + timedelta(seconds=PENDING_TTL),
    )
    values = {column.name: getattr(pending, column.name) for column in _COLUMNS}
    try:
        async with db.statement() as conn:
            await conn.execute(insert(ar).values(handle_hash=handle_hash, created_at=now, **values))
    except IntegrityError as exc:  # a foreign key: the client (or session) is gone meanwhile
        raise OwnerGone(client_id) from exc
    return pending


async def find_request(
    db: Database, handle_hash: bytes, now: datetime
) -> PendingAuthorization | None:
    """The unexpired pending request with this handle."""
    query = select(*_COLUMNS).where(ar.c.handle_hash == handle_hash, ar.c.expires_at > now)
    async with db.read() as conn:
        row = (await conn.execute(query)).first()
    return None if row is None else _pending(row)


async def take_request(
    conn: AsyncConnection, handle_hash: bytes, session_id: uuid.UUID, now: datetime
) -> PendingAuthorization | None:
    """Delete and return the unexpired request with this handle that `session_id` answers: of
    two submissions of one form (a double click, two tabs), exactly one gets it."""
    statement = (
        delete(ar)
        .where(
            ar.c.handle_hash == handle_hash, ar.c.session_id == session_id, ar.c.expires_at > now
        )
        .returning(*_COLUMNS)
    )
    row = (await conn.execute(statement)).first()
    return None if row is None else _pending(row)


async def deny_request(
    db: Database, handle_hash: bytes, session_id: uuid.UUID, now: datetime
) -> PendingAuthorization | None:
    """The person said no on the consent page: the request is answered (deleted)."""
    async with db.statement() as conn:
        return await take_request(conn, handle_hash, session_id, now)
