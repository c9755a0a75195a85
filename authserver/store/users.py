"""Users: create, look up, list, disable and enable, change password (ending their sessions: the
browser login sessions of /authorize and the refresh-token families, in the same transaction),
delete (with everything of theirs, and their login-limit rows)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from authserver.models import User
from authserver.store.db import Database
from authserver.store.refresh import revoke_user_families
from authserver.store.sessions import PASSWORD_CHANGED, USER_DISABLED, end_user_sessions
from authserver.store.tables import (
    login_known_ips,
    login_user_failures,
    login_user_ip_failures,
    refresh_families,
    users,
)


class UserExists(Exception):
    """A user with that username already exists."""


def _user(row: RowMapping) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        password_hash=row["password_hash"],
        disabled=row["disabled"],
        created_at=row["created_at"],
        password_changed_at=row["password_changed_at"],
    )


async def create_user(db: Database, username: str, password_hash: str, now: datetime) -> User:
    user = User(uuid.uuid4(), username, password_hash, False, now, now)
    try:
        async with db.statement() as conn:
            await conn.execute(
                insert(users).values(
                    id=user.id,
                    username=username,
                    password_hash=password_hash,
                    disabled=False,
                    created_at=now,
                    password_changed_at=now,
                )
            )
    except IntegrityError:
        raise UserExists(username) from None
    return user


async def get_user(db: Database, username: str) -> User | None:
    async with db.read() as conn:
        row = (await conn.execute(select(users).where(users.c.username == username))).first()
    return None if row is None else _user(row._mapping)


async def list_users(db: Database) -> list[User]:
    async with db.read() as conn:
        rows = (await conn.execute(select(users).order_by(users.c.username))).all()
    return [_user(row._mapping) for row in rows]


async def disable_user(db: Database, username: str, now: datetime) -> User | None:
    """Disable a user, end their login sessions and revoke all their refresh tokens, in one
    transaction (sessions first: see `end_user_sessions`)."""
    async with db.transaction() as conn:
        row = (
            await conn.execute(
                update(users)
                .where(users.c.username == username)
                .values(disabled=True)
                .returning(*users.c)
            )
        ).first()
        if row is None:
            return None
        await conn.execute(end_user_sessions(row.id, reason=USER_DISABLED, now=now))
        await conn.execute(revoke_user_families(row.id, reason="user_disabled", now=now))
    return _user(row._mapping)


async def set_password(
    db: Database, username: str, password_hash: str, now: datetime
) -> User | None:
    """Replace a user's password, end their login sessions and revoke all their refresh tokens,
    in one transaction (sessions first: see `end_user_sessions`)."""
    async with db.transaction() as conn:
        row = (
            await conn.execute(
                update(users)
                .where(users.c.username == username)
                .values(password_hash=password_hash, password_changed_at=now)
                .returning(*users.c)
            )
        ).first()
        if row is None:
            return None
        await conn.execute(end_user_sessions(row.id, reason=PASSWORD_CHANGED, now=now))
        await conn.execute(revoke_user_families(row.id, reason="password_changed", now=now))
    return _user(row._mapping)


async def rehash_password(db: Database, user_id: uuid.UUID, old_hash: str, new_hash: str) -> bool:
    """Upgrade a hash to the configured parameters after a successful login; True if stored.

    Conditional on the old hash, so it never overwrites a password changed meanwhile.
    """
    async with db.statement() as conn:
        result = await conn.execute(
            update(users)
            .where(users.c.id == user_id, users.c.password_hash == old_hash)
            .values(password_hash=new_hash)
        )
    return bool(result.rowcount)


async def enable_user(db: Database, username: str) -> User | None:
    """Let a disabled user log in again (their sessions ended when they were disabled)."""
    async with db.statement() as conn:
        row = (
            await conn.execute(
                update(users)
                .where(users.c.username == username)
                .values(disabled=False)
                .returning(*users.c)
            )
        ).first()
    return None if row is None else _user(row._mapping)


async def delete_user(db: Database, username: str) -> User | None:
    """Delete a user and everything of theirs, in one transaction: their refresh-token families
    and tokens, browser login sessions, authorization codes and consents (all by the foreign
    keys' ON DELETE CASCADE), and the login-limit rows kept under their username.

    The known IPs must go: a user created later under the same name would otherwise inherit
    addresses that skip the username's lock. The audit trail keeps its rows (by user id).
    """
    async with db.transaction() as conn:
        row = (
            await conn.execute(
                delete(users).where(users.c.username == username).returning(*users.c)
            )
        ).first()
        if row is None:
            return None
        # In the order every login transaction locks these rows (store/login_failures.py).
        for table in (login_user_failures, login_user_ip_failures, login_known_ips):
            await conn.execute(delete(table).where(table.c.username == username))
    return _user(row._mapping)


async def count_sessions(db: Database, user_id: uuid.UUID, now: datetime) -> int:
    """The user's logins that are neither revoked nor past REFRESH_FAMILY_MAX_AGE."""
    fam = refresh_families
    query = select(func.count()).where(
        fam.c.user_id == user_id, fam.c.revoked_at.is_(None), fam.c.expires_at > now
    )
    async with db.read() as conn:
        return int((await conn.execute(query)).scalar_one())
