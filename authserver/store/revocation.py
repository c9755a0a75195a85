"""Revocation (RFC 7009) in the database: a refresh token's family, an access token's `jti`,
and every session of a user. Each is one statement, so it is atomic on its own."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update

from authserver.store.db import Database
from authserver.store.refresh import revoke_user_families
from authserver.store.sessions import end_user_sessions
from authserver.store.tables import refresh_families, refresh_tokens, revoked_access_tokens, users

fam = refresh_families
rt = refresh_tokens

CLIENT_REVOKED = "client_revoked"  # refresh_families.revoked_reason for POST /revoke
OPERATOR_REVOKED = "operator_revoked"  # … for `authserver tokens revoke --user`


async def revoke_family_of_token(
    db: Database, *, token_hash: bytes, client_id: str, now: datetime
) -> uuid.UUID | None:
    """Revoke the login (family) of the refresh token with this digest, if that token belongs to
    `client_id` and the family is still live. Returns the family revoked, else None.

    One conditional UPDATE: another client's token, an unknown token and an already revoked
    family all match no row, and do the same work. Rotation refuses every token of a revoked
    family, including a successor it is minting at this very moment.
    """
    family_of_token = (
        select(rt.c.family_id)
        .where(rt.c.token_hash == token_hash, rt.c.client_id == client_id)
        .scalar_subquery()
    )
    statement = (
        update(fam)
        .where(
            fam.c.id == family_of_token, fam.c.client_id == client_id, fam.c.revoked_at.is_(None)
        )
        .values(revoked_at=now, revoked_reason=CLIENT_REVOKED)
        .returning(fam.c.id)
    )
    async with db.statement() as conn:
        family_id: uuid.UUID | None = (await conn.execute(statement)).scalar_one_or_none()
    return family_id


async def record_revoked_access_token(
    db: Database, *, jti: str, client_id: str, now: datetime, expires_at: datetime
) -> bool:
    """Remember a revoked access token until it expires (`tokens purge` deletes it after).
    True if it was not already recorded."""
    statement = (
        db.dialect.insert(revoked_access_tokens)
        .values(jti=jti, client_id=client_id, revoked_at=now, expires_at=expires_at)
        .on_conflict_do_nothing()
    )
    async with db.statement() as conn:
        result = await conn.execute(statement)
    return bool(result.rowcount)


async def revoke_user_sessions(db: Database, username: str, now: datetime) -> int | None:
    """Log a user out everywhere: end their browser login sessions at /authorize (else a
    signed-in browser would get new codes, and new families, at once) and revoke every live
    family of theirs, in one transaction.

    Returns how many families were revoked, or None if there is no such user.
    """
    async with db.transaction() as conn:
        user_id = (
            await conn.execute(select(users.c.id).where(users.c.username == username))
        ).scalar_one_or_none()
        if user_id is None:
            return None
        await conn.execute(end_user_sessions(user_id, reason=OPERATOR_REVOKED, now=now))
        result = await conn.execute(revoke_user_families(user_id, reason=OPERATOR_REVOKED, now=now))
    return int(result.rowcount)
