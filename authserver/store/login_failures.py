"""Failed-login counters, shared by every serving process through the database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from authserver.lockout import (
    IpFailures,
    LockoutPolicy,
    UserFailures,
    ip_after_failure,
    user_after_failure,
)
from authserver.store.db import Database
from authserver.store.tables import login_ip_failures, login_user_failures

users_t = login_user_failures
ips_t = login_ip_failures


async def current_failures(
    db: Database, username: str, ip: str
) -> tuple[UserFailures | None, IpFailures | None]:
    async with db.statement() as conn:
        user_row = (
            await conn.execute(
                select(
                    users_t.c.failures,
                    users_t.c.last_failure_at,
                    users_t.c.locked_until,
                    users_t.c.lock_seconds,
                ).where(users_t.c.username == username)
            )
        ).first()
        ip_row = (
            await conn.execute(
                select(ips_t.c.window_started_at, ips_t.c.failures).where(ips_t.c.ip == ip)
            )
        ).first()
    return (
        None if user_row is None else UserFailures(*user_row),
        None if ip_row is None else IpFailures(*ip_row),
    )


async def record_failure(
    db: Database, username: str, ip: str, policy: LockoutPolicy, now: datetime
) -> UserFailures:
    """Count one failed attempt for the username and the IP; returns the username's new state.

    Each counter row is created if missing, then locked (FOR UPDATE on PostgreSQL; SQLite's
    BEGIN IMMEDIATE already serialises writers), so concurrent failures are all counted.
    """
    async with db.transaction() as conn:
        await _ensure_row(
            db,
            conn,
            users_t,
            {
                "username": username,
                "failures": 0,
                "last_failure_at": now,
                "lock_seconds": 0,
            },
        )
        row = (
            await conn.execute(
                select(
                    users_t.c.failures,
                    users_t.c.last_failure_at,
                    users_t.c.locked_until,
                    users_t.c.lock_seconds,
                )
                .where(users_t.c.username == username)
                .with_for_update()
            )
        ).one()
        before = UserFailures(*row) if row.failures or row.lock_seconds else None
        user = user_after_failure(before, policy, now)
        await conn.execute(
            update(users_t)
            .where(users_t.c.username == username)
            .values(
                failures=user.failures,
                last_failure_at=user.last_failure_at,
                locked_until=user.locked_until,
                lock_seconds=user.lock_seconds,
            )
        )
        await _ensure_row(db, conn, ips_t, {"ip": ip, "window_started_at": now, "failures": 0})
        ip_row = (
            await conn.execute(
                select(ips_t.c.window_started_at, ips_t.c.failures)
                .where(ips_t.c.ip == ip)
                .with_for_update()
            )
        ).one()
        ip_state = ip_after_failure(IpFailures(*ip_row) if ip_row.failures else None, policy, now)
        await conn.execute(
            update(ips_t)
            .where(ips_t.c.ip == ip)
            .values(window_started_at=ip_state.window_started_at, failures=ip_state.failures)
        )
    return user


async def clear_user_failures(db: Database, username: str) -> None:
    """A successful login resets the username's count (the IP's window runs its course)."""
    async with db.statement() as conn:
        await conn.execute(delete(users_t).where(users_t.c.username == username))


async def _ensure_row(
    db: Database, conn: AsyncConnection, table: Table, values: dict[str, object]
) -> None:
    dialect_insert = sqlite.insert if db.is_sqlite else postgresql.insert
    await conn.execute(dialect_insert(table).values(**values).on_conflict_do_nothing())
