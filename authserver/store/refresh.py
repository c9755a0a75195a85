"""Refresh-token families (one per login) and what is read back about a token: start a family
(after a password check, or from a login session when a code is exchanged), look a token up,
revoke one family or all of a user's. Rotation itself, the hot path, is
store/rotation.py.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, FromClause, Update, Uuid, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from authserver.models import RefreshGrant, RefreshTokenRecord
from authserver.store.db import Database
from authserver.store.liveness import live_session
from authserver.store.tables import (
    UTCDateTime,
    login_sessions,
    refresh_families,
    refresh_tokens,
    users,
)

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
    owner = _Owner(
        users,
        (
            users.c.id == user_id,
            users.c.password_hash == verified_password_hash,
            users.c.disabled.is_(False),
        ),
    )
    try:
        async with db.transaction() as conn:
            return await _insert_family(
                conn,
                owner,
                user_id=user_id,
                client_id=client_id,
                scope=scope,
                token_hash=token_hash,
                now=now,
                token_ttl=token_ttl,
                family_expires_at=now + timedelta(seconds=family_max_age),
            )
    except IntegrityError as exc:  # a foreign key: the client no longer exists
        raise OwnerGone(client_id) from exc


async def start_session_family(
    conn: AsyncConnection,
    *,
    session_id: uuid.UUID,
    user_id: uuid.UUID,
    client_id: str,
    scope: str,
    token_hash: bytes | None,
    now: datetime,
    token_ttl: int,
    family_expires_at: datetime,
) -> RefreshGrant:
    """Record a sign-in at /authorize when its code is exchanged (grants/authorization_code.py),
    inside the caller's transaction: a family whose absolute limit, `family_expires_at`, counts
    from the session's sign-in (SPEC), and its first token.

    The same guard as `start_family`, for a login proven by a session instead of a password:
    the family is inserted only while the login session is live and its user enabled
    (store/liveness.py `live_session`), in the same statement, under a share lock on the session
    and user rows. A password change, disable or logout that ends the session either commits
    first (CredentialsChanged) or waits, and then revokes the family with the others
    (store/sessions.py `end_user_sessions` explains the order).
    """
    owner = _Owner(
        login_sessions.join(users, users.c.id == login_sessions.c.user_id),
        (
            login_sessions.c.id == session_id,
            login_sessions.c.user_id == user_id,
            live_session(login_sessions, users, now),
        ),
    )
    return await _insert_family(
        conn,
        owner,
        user_id=user_id,
        client_id=client_id,
        scope=scope,
        token_hash=token_hash,
        now=now,
        token_ttl=token_ttl,
        family_expires_at=family_expires_at,
    )


@dataclass(frozen=True)
class _Owner:
    """Where the new family's user row comes from, and what must hold for it to start."""

    source: FromClause
    conditions: tuple[ColumnElement[bool], ...]


async def _insert_family(
    conn: AsyncConnection,
    owner: _Owner,
    *,
    user_id: uuid.UUID,
    client_id: str,
    scope: str,
    token_hash: bytes | None,
    now: datetime,
    token_ttl: int,
    family_expires_at: datetime,
) -> RefreshGrant:
    family_id = uuid.uuid4()
    expires_at = min(now + timedelta(seconds=token_ttl), family_expires_at)
    family = (
        select(
            literal(family_id, Uuid),
            users.c.id,
            literal(client_id),
            literal(scope),
            literal(now, UTCDateTime),
            literal(family_expires_at, UTCDateTime),
        )
        .select_from(owner.source)
        .where(*owner.conditions)
        .with_for_update(read=True)
    )
    columns = ["id", "user_id", "client_id", "scope", "created_at", "expires_at"]
    started = await conn.execute(insert(fam).from_select(columns, family))
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
    return RefreshGrant(family_id, user_id, client_id, scope, expires_at)


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
    async with db.read() as conn:
        return (await conn.execute(query)).first() is not None


async def find_token(db: Database, token_hash: bytes) -> RefreshTokenRecord | None:
    """What the grant needs to explain a refused rotation."""
    query = select(
        rt.c.family_id, rt.c.client_id, rt.c.scope, rt.c.rotated_at, rt.c.revoked_at
    ).where(rt.c.token_hash == token_hash)
    async with db.read() as conn:
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
