"""Refresh-token families and tokens: start, rotate (atomically), explain, revoke.

Rotation is one conditional `UPDATE … RETURNING`: only a token that is unused, unrevoked,
unexpired, of the presenting client, in a live family of an enabled user matches, so of two
concurrent rotations of one token exactly one gets a row back. On PostgreSQL the UPDATE and the
INSERT of the successor are one hand-written statement (a data-modifying CTE) run on the driver
in autocommit mode: one round trip per refresh, the hot path. SQLite runs the same two steps,
built with SQLAlchemy Core, inside one BEGIN IMMEDIATE transaction.

With a grace window (REFRESH_REUSE_GRACE > 0) a refused rotation gets one more, rarer statement,
`_replay`: the immediately previous token, presented within the window counted from its own
rotation while its successor is still unused, revokes that successor and gets a fresh one. The
successor's row lock decides every race: the successor's own rotation, and any replay of its
parent, each update that one row only while it is unused and unrevoked, so exactly one of them
wins.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Update, Uuid, exists, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from authserver.models import RefreshGrant, RefreshTokenRecord
from authserver.store.db import Database
from authserver.store.tables import UTCDateTime, refresh_families, refresh_tokens, users

rt = refresh_tokens
fam = refresh_families


class OwnerGone(Exception):
    """The client (or user) of a new login was deleted while the login was being recorded."""


class CredentialsChanged(Exception):
    """The user's password changed, or the user was disabled, after the password was checked:
    the login must not start (a change revokes only the families that exist when it commits)."""


async def start_family(
    db: Database,
    *,
    user_id: uuid.UUID,
    verified_password_hash: str,
    client_id: str,
    scope: str,
    token_hash: bytes | None,
    now: datetime,
    token_ttl: int,
    family_max_age: int,
) -> RefreshGrant:
    """Record a password login: a new family and, if the client may refresh, its first token.

    The family is inserted only if the user row still holds `verified_password_hash` (the hash
    the password was checked against) and is enabled, in the same statement, which takes a
    share lock on the user row: a concurrent `users set-password` or `users disable` either
    commits first (and this insert finds nothing: CredentialsChanged) or waits for this
    transaction and then revokes the family it inserted.
    """
    family_id = uuid.uuid4()
    family_expires_at = now + timedelta(seconds=family_max_age)
    expires_at = min(now + timedelta(seconds=token_ttl), family_expires_at)
    family = select(
        literal(family_id, Uuid),
        users.c.id,
        literal(client_id),
        literal(scope),
        literal(now, UTCDateTime),
        literal(family_expires_at, UTCDateTime),
    ).where(
        users.c.id == user_id,
        users.c.password_hash == verified_password_hash,
        users.c.disabled.is_(False),
    )
    columns = ["id", "user_id", "client_id", "scope", "created_at", "expires_at"]
    try:
        async with db.transaction() as conn:
            started = await conn.execute(
                insert(fam).from_select(columns, family.with_for_update(read=True))
            )
            if started.rowcount != 1:
                raise CredentialsChanged(user_id)
            if token_hash is not None:
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
    except IntegrityError as exc:  # a foreign key: the client no longer exists
        raise OwnerGone(client_id) from exc
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
    grace: int = 0,
) -> RefreshGrant | None:
    """Use up the presented token and store its successor, atomically.

    With `grace` > 0 (seconds), a token rotated less than `grace` seconds ago whose successor is
    still unused is replayed instead (see `_replay`). Returns None when the token may not be
    used (unknown, used, revoked, expired, another client's, or its family or user is revoked or
    disabled); `find_token` tells which.
    """
    new_expires_at = now + timedelta(seconds=token_ttl)
    if db.is_sqlite:
        grant = await _rotate_two_statements(db, old_hash, new_hash, client_id, now, new_expires_at)
    else:
        async with db.driver() as conn:
            row = await conn.fetchrow(
                _ROTATE_PG, old_hash, client_id, now, uuid.uuid4(), new_hash, new_expires_at
            )
        grant = None if row is None else _grant(row, client_id)
    if grant is None and grace > 0:
        return await _replay(db, old_hash, new_hash, client_id, now, new_expires_at, grace)
    return grant


def _grant(row: Any, client_id: str) -> RefreshGrant:
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
        expires_at = await _insert_successor(conn, old, new_hash, client_id, now, new_expires_at)
    return RefreshGrant(old.family_id, old.user_id, client_id, old.scope, expires_at)


async def _insert_successor(
    conn: AsyncConnection,
    parent: Any,
    new_hash: bytes,
    client_id: str,
    now: datetime,
    new_expires_at: datetime,
) -> datetime:
    """SQLite paths: the new token of `parent`'s family (a row with id, family_id, user_id,
    scope, family_expires_at); it never outlives the family. Returns its expiry."""
    expires_at: datetime = min(new_expires_at, parent.family_expires_at)
    await conn.execute(
        insert(rt).values(
            id=uuid.uuid4(),
            token_hash=new_hash,
            family_id=parent.family_id,
            parent_id=parent.id,
            client_id=client_id,
            user_id=parent.user_id,
            scope=parent.scope,
            issued_at=now,
            expires_at=expires_at,
            family_expires_at=parent.family_expires_at,
        )
    )
    return expires_at


async def _replay(
    db: Database,
    old_hash: bytes,
    new_hash: bytes,
    client_id: str,
    now: datetime,
    new_expires_at: datetime,
    grace: int,
) -> RefreshGrant | None:
    """The grace window (SPEC "Grace window"): a client whose network lost the response to a
    rotation presents the same token again.

    Allowed only for the immediately previous token: rotated less than `grace` seconds ago (the
    window counts from its first rotation, so replays cannot stretch it), not revoked, not
    expired, in a live family of an enabled user, and with an unused, unrevoked successor. That
    successor is revoked and a new one (a fresh random token, never one handed out before) takes
    its place. A token two rotations old has no unused successor, so it never qualifies.
    """
    window_start = now - timedelta(seconds=grace)
    if db.is_sqlite:
        return await _replay_sqlite(
            db, old_hash, new_hash, client_id, now, new_expires_at, window_start
        )
    async with db.driver() as conn:
        row = await conn.fetchrow(
            _REPLAY_PG,
            old_hash,
            client_id,
            now,
            uuid.uuid4(),
            new_hash,
            new_expires_at,
            window_start,
        )
    return None if row is None else _grant(row, client_id)


# $1-$6 as in _ROTATE_PG; $7 the start of the grace window (now - REFRESH_REUSE_GRACE).
# `superseded` takes the successor's row lock: a concurrent rotation of the successor, or a
# concurrent replay of the same token, re-checks the row after this commits and matches nothing.
# The successor is looked up through the family's index, not a scan for parent_id.
_REPLAY_PG = """
WITH presented AS (
    SELECT p.id, p.family_id, p.user_id, p.scope, p.family_expires_at
    FROM refresh_tokens AS p
    WHERE p.token_hash = $1
      AND p.client_id = $2
      AND p.rotated_at IS NOT NULL
      AND p.rotated_at > $7
      AND p.revoked_at IS NULL
      AND p.expires_at > $3
      AND EXISTS (
          SELECT 1 FROM refresh_families AS f JOIN users AS u ON u.id = f.user_id
          WHERE f.id = p.family_id AND f.revoked_at IS NULL AND NOT u.disabled
      )
),
superseded AS (
    UPDATE refresh_tokens AS c SET revoked_at = $3
    FROM presented
    WHERE c.family_id = presented.family_id
      AND c.parent_id = presented.id
      AND c.rotated_at IS NULL
      AND c.revoked_at IS NULL
    RETURNING c.id
)
INSERT INTO refresh_tokens (id, token_hash, family_id, parent_id, client_id, user_id, scope,
                            issued_at, expires_at, family_expires_at)
SELECT $4, $5, presented.family_id, presented.id, $2, presented.user_id, presented.scope,
       $3, LEAST($6, presented.family_expires_at), presented.family_expires_at
FROM presented
WHERE EXISTS (SELECT 1 FROM superseded)
RETURNING family_id, user_id, scope, expires_at
"""


async def _replay_sqlite(
    db: Database,
    old_hash: bytes,
    new_hash: bytes,
    client_id: str,
    now: datetime,
    new_expires_at: datetime,
    window_start: datetime,
) -> RefreshGrant | None:
    live_family_of_enabled_user = exists(
        select(1)
        .select_from(fam.join(users, users.c.id == fam.c.user_id))
        .where(fam.c.id == rt.c.family_id, fam.c.revoked_at.is_(None), users.c.disabled.is_(False))
    )
    async with db.transaction() as conn:  # BEGIN IMMEDIATE: no other writer until it ends
        presented = (
            await conn.execute(
                select(
                    rt.c.id, rt.c.family_id, rt.c.user_id, rt.c.scope, rt.c.family_expires_at
                ).where(
                    rt.c.token_hash == old_hash,
                    rt.c.client_id == client_id,
                    rt.c.rotated_at.is_not(None),
                    rt.c.rotated_at > window_start,
                    rt.c.revoked_at.is_(None),
                    rt.c.expires_at > now,
                    live_family_of_enabled_user,
                )
            )
        ).first()
        if presented is None:
            return None
        superseded = await conn.execute(
            update(rt)
            .where(
                rt.c.family_id == presented.family_id,
                rt.c.parent_id == presented.id,
                rt.c.rotated_at.is_(None),
                rt.c.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
        if not superseded.rowcount:
            return None
        expires_at = await _insert_successor(
            conn, presented, new_hash, client_id, now, new_expires_at
        )
    return RefreshGrant(
        presented.family_id, presented.user_id, client_id, presented.scope, expires_at
    )


async def has_unused_successor(db: Database, token_hash: bytes) -> bool:
    """Whether the token's successor is still unused and unrevoked (grace-window bookkeeping:
    a replay that finds one, yet was refused, lost a race with another replay)."""
    parent = rt.alias("parent")
    query = (
        select(rt.c.id)
        .select_from(
            parent.join(
                rt, (rt.c.family_id == parent.c.family_id) & (rt.c.parent_id == parent.c.id)
            )
        )
        .where(
            parent.c.token_hash == token_hash,
            rt.c.rotated_at.is_(None),
            rt.c.revoked_at.is_(None),
        )
        .limit(1)
    )
    async with db.statement() as conn:
        return (await conn.execute(query)).first() is not None


async def find_token(db: Database, token_hash: bytes) -> RefreshTokenRecord | None:
    """What the grant needs to explain a refused rotation (or check a narrowed scope)."""
    query = select(
        rt.c.family_id, rt.c.client_id, rt.c.scope, rt.c.rotated_at, rt.c.revoked_at
    ).where(rt.c.token_hash == token_hash)
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
