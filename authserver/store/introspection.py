"""What introspection (RFC 7662) must read from the database: is this token still live?

Each question is one SELECT built on the conditions rotation uses (store/liveness.py), so
"active" here and "usable" there cannot drift apart.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, literal, select

from authserver.store.db import Database
from authserver.store.liveness import live_family, usable_refresh_token
from authserver.store.tables import (
    UTCDateTime,
    clients,
    refresh_families,
    refresh_tokens,
    revoked_access_tokens,
    users,
)

fam = refresh_families
rt = refresh_tokens


@dataclass(frozen=True)
class AccessTokenState:
    """What the database says about a signature-checked, unexpired access token."""

    active: bool
    user_id: uuid.UUID | None = None  # the family's user (tokens with a `sid`)
    username: str | None = None


@dataclass(frozen=True)
class LiveRefreshToken:
    client_id: str
    scope: str  # the login's scope
    user_id: uuid.UUID
    username: str
    issued_at: datetime
    expires_at: datetime


async def access_token_state(
    db: Database, *, jti: str, client_id: str, family_id: uuid.UUID | None
) -> AccessTokenState:
    """Active unless its `jti` was revoked, its family (`sid`) is revoked or gone, its user is
    disabled, or (client_credentials) its client was deleted."""
    not_revoked = ~exists(select(1).where(revoked_access_tokens.c.jti == jti))
    if family_id is None:
        query = select(clients.c.client_id).where(clients.c.client_id == client_id, not_revoked)
        async with db.read() as conn:
            found = (await conn.execute(query)).first()
        return AccessTokenState(found is not None)
    query = (
        select(users.c.id, users.c.username)
        .select_from(fam.join(users, users.c.id == fam.c.user_id))
        .where(fam.c.id == family_id, fam.c.client_id == client_id, not_revoked)
        .where(live_family(fam.c.id))
    )
    async with db.read() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        return AccessTokenState(False)
    return AccessTokenState(True, row.id, row.username)


async def live_refresh_token(
    db: Database, token_hash: bytes, now: datetime
) -> LiveRefreshToken | None:
    """The refresh token with this digest if rotation would accept it now (unused, unrevoked,
    unexpired, in a live family of an enabled user); None otherwise."""
    query = (
        select(
            rt.c.client_id,
            rt.c.scope,
            users.c.id,
            users.c.username,
            rt.c.issued_at,
            rt.c.expires_at,
        )
        .select_from(rt.join(users, users.c.id == rt.c.user_id))
        .where(rt.c.token_hash == token_hash, usable_refresh_token(rt, literal(now, UTCDateTime)))
    )
    async with db.read() as conn:
        row = (await conn.execute(query)).first()
    return None if row is None else LiveRefreshToken(*row)
