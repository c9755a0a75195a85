"""An operator's view of one username's login-limit rows: whether it is locked now (`users
show`), and lifting its locks (`users unlock`). The limits themselves are store/login_failures.py.

Lifting deletes the username's counter and its (username, IP) counters, as `tokens purge` deletes
reset ones: the next attempt starts afresh, with LOGIN_MAX_FAILURES tries and no escalation. An
attempt deciding at that moment holds the row's lock (PostgreSQL) or the writer lock (SQLite),
so the DELETE waits for it and cannot tear its decision in two. Per-IP blocks (every username
from one address) are not a user's and are not touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select

from authserver.store.db import Database
from authserver.store.tables import login_user_failures, login_user_ip_failures

user_t = login_user_failures
pair_t = login_user_ip_failures


@dataclass(frozen=True)
class LockState:
    locked_until: datetime | None  # the username's lock, from every address but known ones
    locked_known_ips: int  # its known addresses locked now, each by its own counter


async def lock_state(db: Database, username: str, now: datetime) -> LockState:
    async with db.read() as conn:
        until = (
            await conn.execute(
                select(user_t.c.locked_until).where(
                    user_t.c.username == username, user_t.c.locked_until > now
                )
            )
        ).scalar_one_or_none()
        pairs = (
            await conn.execute(
                select(func.count()).where(
                    pair_t.c.username == username, pair_t.c.locked_until > now
                )
            )
        ).scalar_one()
    return LockState(until, int(pairs))


async def unlock(db: Database, username: str) -> int:
    """Delete the username's counter and its (username, IP) counters; how many rows went."""
    async with db.transaction() as conn:
        deleted = 0
        for table in (user_t, pair_t):
            result = await conn.execute(delete(table).where(table.c.username == username))
            deleted += result.rowcount
    return deleted
