"""Refresh-token families and tokens: start, rotate (atomically), explain, revoke.

Rotation is one conditional `UPDATE … RETURNING`: only a token that is unused, unrevoked,
unexpired, of the presenting client, in a live family of an enabled user matches, so of two
concurrent rotations of one token exactly one gets a row back. On PostgreSQL the UPDATE and the
INSERT of the successor are one hand-written statement (a data-modifying CTE) run on the driver
in autocommit mode: one round trip per refresh, the hot path. SQLite runs the same two steps,
built with SQLAlchemy Core, inside one BEGIN IMMEDIATE transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import Update, exists, insert, select, update
from sqlalchemy.exc import IntegrityError

from authserver.models import RefreshGrant, RefreshTokenRecord
from authserver.store.db import Database
from authserver.store.tables import refresh_families, refresh_tokens, users

rt = refresh_tokens
fam = refresh_families


class OwnerGone(Exception):
    """The client (or user) of a new login was deleted while the login was being recorded."""


async def start_family(
    db: Database,
    *,
    user_id: uuid.UUID,
    client_id: str,
    scope: str,
    token_hash: bytes | None,
    now: datetime,
    token_ttl: int,
    family_max_age: int,
) -> RefreshGrant:
    """Record a password login: a new family and, if the client may refresh, its first token."""
    family_id = uuid.uuid4()
    family_expires_at = now + timedelta(seconds=family_max_age)
    expires_at = min(now + timedelta(seconds=token_ttl), family_expires_at)
    try:
        return await _insert_family(
            db, family_id, user_id, client_id, scope, token_hash, now, expires_at, family_expires_at
        )
    except IntegrityError as exc:  # a foreign key: the client or user no longer exists
        raise OwnerGone(client_id) from exc


async def _insert_family(
    db: Database,
    family_id: uuid.UUID,
    user_id: uuid.UUID,
    client_id: str,
    scope: str,
    token_hash: bytes | None,
    now: datetime,
    expires_at: datetime,
    family_expires_at: datetime,
) -> RefreshGrant:
    async with db.transaction() as conn:
        await conn.execute(
            insert(fam).values(
                id=family_id,
                user_id=user_id,
                client_id=client_id,
                scope=scope,
                created_at=now,
                expires_at=family_expires_at,
            )
        )
        if token_hash is None:
            return RefreshGrant(family_id, user_id, client_id, scope, expires_at)
        await conn.execute(
            insert(rt).values(
                id=uuid.uuid4(),
                token_hash=token_hash,
                family_id=family_id,
                parent_id=None,
                client_id=client_id,
                user_id=user_id,
                scope=scope,
                issued_at=now,
                expires_at=expires_at,
                family_expires_at=family_expires_at,
            )
        )
    return RefreshGrant(family_id, user_id, client_id, scope, expires_at)


def _consume(old_hash: bytes, client_id: str, now: datetime) -> Update:
    """The conditional UPDATE that marks the presented token used, if it may be used."""
    live_family_of_enabled_user = exists(
        select(1)
        .select_from(fam.join(users, users.c.id == fam.c.user_id))
        .where(fam.c.id == rt.c.family_id, fam.c.revoked_at.is_(None), users.c.disabled.is_(False))
    )
    return (
        update(rt)
        .where(
            rt.c.token_hash == old_hash,
            rt.c.client_id == client_id,
            rt.c.rotated_at.is_(None),
            rt.c.revoked_at.is_(None),
            rt.c.expires_at > now,
            live_family_of_enabled_user,
        )
        .values(rotated_at=now)
    )


async def rotate(
    db: Database,
    *,
    old_hash: bytes,
    new_hash: bytes,
    client_id: str,
    now: datetime,
    token_ttl: int,
) -> RefreshGrant | None:
    """Use up the presented token and store its successor, atomically.

    Returns None when the token may not be used (unknown, used, revoked, expired, another
    client's, or its family or user is revoked or disabled); `find_token` tells which.
    """
    new_expires_at = now + timedelta(seconds=token_ttl)
    if db.is_sqlite:
        return await _rotate_two_statements(db, old_hash, new_hash, client_id, now, new_expires_at)
    async with db.driver() as conn:
        row = await conn.fetchrow(
            _ROTATE_PG, old_hash, client_id, now, uuid.uuid4(), new_hash, new_expires_at
        )
    if row is None:
        return None
    return RefreshGrant(
        row["family_id"], row["user_id"], client_id, row["scope"], row["expires_at"]
    )


# The same conditions as `_consume`, and the successor's INSERT, as one statement: one round
# trip, no transaction. $1 presented hash, $2 client_id, $3 now, $4 new id, $5 new hash,
# $6 the successor's expiry before the family's limit is applied.
_ROTATE_PG = """
WITH old AS (
    UPDATE refresh_tokens AS rt SET rotated_at = $3
    WHERE rt.token_hash = $1
      AND rt.client_id = $2
      AND rt.rotated_at IS NULL
      AND rt.revoked_at IS NULL
      AND rt.expires_at > $3
      AND EXISTS (
          SELECT 1 FROM refresh_families AS f JOIN users AS u ON u.id = f.user_id
          WHERE f.id = rt.family_id AND f.revoked_at IS NULL AND NOT u.disabled
      )
    RETURNING rt.id, rt.family_id, rt.user_id, rt.scope, rt.family_expires_at
)
INSERT INTO refresh_tokens (id, token_hash, family_id, parent_id, client_id, user_id, scope,
                            issued_at, expires_at, family_expires_at)
SELECT $4, $5, old.family_id, old.id, $2, old.user_id, old.scope,
       $3, LEAST($6, old.family_expires_at), old.family_expires_at
FROM old
RETURNING family_id, user_id, scope, expires_at
"""


async def _rotate_two_statements(
    db: Database,
    old_hash: bytes,
    new_hash: bytes,
    client_id: str,
    now: datetime,
    new_expires_at: datetime,
) -> RefreshGrant | None:
    async with db.transaction() as conn:
        old = (
            await conn.execute(
                _consume(old_hash, client_id, now).returning(
                    rt.c.id, rt.c.family_id, rt.c.user_id, rt.c.scope, rt.c.family_expires_at
                )
            )
        ).first()
        if old is None:
            return None
        expires_at = min(new_expires_at, old.family_expires_at)
        await conn.execute(
            insert(rt).values(
                id=uuid.uuid4(),
                token_hash=new_hash,
                family_id=old.family_id,
                parent_id=old.id,
                client_id=client_id,
                user_id=old.user_id,
                scope=old.scope,
                issued_at=now,
                expires_at=expires_at,
                family_expires_at=old.family_expires_at,
            )
        )
    return RefreshGrant(old.family_id, old.user_id, client_id, old.scope, expires_at)


async def find_token(db: Database, token_hash: bytes) -> RefreshTokenRecord | None:
    """What the grant needs to explain a refused rotation (or check a narrowed scope)."""
    query = select(rt.c.family_id, rt.c.client_id, rt.c.scope, rt.c.rotated_at).where(
        rt.c.token_hash == token_hash
    )
    async with db.statement() as conn:
        row = (await conn.execute(query)).first()
    return None if row is None else RefreshTokenRecord(*row)


async def revoke_family(db: Database, family_id: uuid.UUID, *, reason: str, now: datetime) -> bool:
    """Revoke one login: every token of the family stops working. True if it was live."""
    async with db.statement() as conn:
        result = await conn.execute(
            update(fam)
            .where(fam.c.id == family_id, fam.c.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
        )
    return bool(result.rowcount)


def revoke_user_families(user_id: uuid.UUID, *, reason: str, now: datetime) -> Update:
    """The statement that revokes every live login of a user (run inside the caller's
    transaction, so disabling a user and ending their sessions commit together)."""
    return (
        update(fam)
        .where(fam.c.user_id == user_id, fam.c.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )
