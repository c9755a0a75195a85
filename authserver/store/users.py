"""Users: create, look up, list, disable, change password (ending their sessions: the browser
login sessions of /authorize and the refresh-token families, in the same transaction)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from authserver.models import User
from authserver.store.db import Database
from authserver.store.refresh import revoke_user_families
from authserver.store.sessions import PASSWORD_CHANGED, USER_DISABLED, end_user_sessions
from authserver.store.tables import users


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
