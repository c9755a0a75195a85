"""Failed-login counters, shared by every serving process through the database.

An attempt is counted *before* its password is checked, in the same transaction that checks the
limits, and taken back if the password was right. So N concurrent guesses cannot all slip past
a limit that sequential guesses would hit: the counter rows are locked (FOR UPDATE on
PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers) while each attempt is decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from authserver.lockout import (
    IpFailures,
    LockoutPolicy,
    UserFailures,
    ip_after_failure,
    retry_after,
    user_after_failure,
)
from authserver.store.db import Database
from authserver.store.tables import login_ip_failures, login_user_failures

users_t = login_user_failures
ips_t = login_ip_failures


@dataclass(frozen=True)
class Attempt:
    """The decision on one password attempt."""

    retry_after: int | None  # refused: whole seconds to wait (nothing was counted)
    ip_window_started_at: datetime | None = None  # allowed: the IP window it was counted in


async def begin_attempt(
    db: Database, username: str, ip: str, policy: LockoutPolicy, now: datetime
) -> Attempt:
    """Refuse the attempt if the username or the IP is locked; otherwise count it as a failure
    (the password has not been checked yet) and allow it."""
    async with db.transaction() as conn:
        user = await _locked_user(db, conn, username, now)
        ip_state = await _locked_ip(db, conn, ip, now)
        wait = retry_after(user, ip_state, policy, now)
        if wait is not None:
            return Attempt(wait)
        user = user_after_failure(user, policy, now)
        ip_state = ip_after_failure(ip_state, policy, now)
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
        await conn.execute(
            update(ips_t)
            .where(ips_t.c.ip == ip)
            .values(window_started_at=ip_state.window_started_at, failures=ip_state.failures)
        )
    return Attempt(None, ip_state.window_started_at)


async def attempt_succeeded(db: Database, username: str, ip: str, attempt: Attempt) -> None:
    """The password was right: reset the username's count (SPEC: a success resets it) and take
    this attempt back off the IP's count."""
    async with db.transaction() as conn:
        # Reset rather than delete: another attempt may be waiting on this row's lock, and
        # must find it when it gets the lock.
        await conn.execute(
            update(users_t)
            .where(users_t.c.username == username)
            .values(failures=0, locked_until=None, lock_seconds=0)
        )
        await conn.execute(
            update(ips_t)
            .where(
                ips_t.c.ip == ip,
                ips_t.c.window_started_at == attempt.ip_window_started_at,
                ips_t.c.failures > 0,
            )
            .values(failures=ips_t.c.failures - 1)
        )


async def _locked_user(
    db: Database, conn: AsyncConnection, username: str, now: datetime
) -> UserFailures | None:
    await _ensure_row(
        db,
        conn,
        users_t,
        {"username": username, "failures": 0, "last_failure_at": now, "lock_seconds": 0},
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
    return UserFailures(*row) if row.failures or row.lock_seconds else None


async def _locked_ip(
    db: Database, conn: AsyncConnection, ip: str, now: datetime
) -> IpFailures | None:
    await _ensure_row(db, conn, ips_t, {"ip": ip, "window_started_at": now, "failures": 0})
    row = (
        await conn.execute(
            select(ips_t.c.window_started_at, ips_t.c.failures)
            .where(ips_t.c.ip == ip)
            .with_for_update()
        )
    ).one()
    return IpFailures(*row) if row.failures else None


async def _ensure_row(
    db: Database, conn: AsyncConnection, table: Table, values: dict[str, object]
) -> None:
    """Make sure the counter row exists, and on PostgreSQL lock it from here on: `tokens purge`
    may delete a reset row, and must not do so between this statement and the SELECT … FOR
    UPDATE that follows (the upsert's no-op update takes the row lock; DO NOTHING would not).
    SQLite's BEGIN IMMEDIATE already keeps every other writer out."""
    if db.is_sqlite:
        await conn.execute(sqlite.insert(table).values(**values).on_conflict_do_nothing())
        return
    key = table.primary_key.columns.values()[0]
    upsert = postgresql.insert(table).values(**values)
    await conn.execute(
        upsert.on_conflict_do_update(
            index_elements=[key], set_={key.name: upsert.excluded[key.name]}
        )
    )
