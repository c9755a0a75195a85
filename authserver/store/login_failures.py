"""Failed-login counters, shared by every serving process through the database.

An attempt is counted *before* its password is checked, in the same transaction that checks the
limits, and taken back if the password was right. So N concurrent guesses cannot all slip past
a limit that sequential guesses would hit: the counter rows are locked (an upsert that takes the
row lock on PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers) while each attempt
is decided.

Which counter an attempt goes through (authserver/login/limits.py, "Known IPs"): the username's, or,
when the username logged in successfully from this IP within LOGIN_KNOWN_IP_DAYS, the
(username, IP) counter. The known-IP lookup is by username, like the username counter, so an
unknown username runs exactly the statements a known user at an unknown IP runs; the two
counters cost the same statements too. Per attempt: three plain reads (the known-IP lookup, the
counter row, the IP row), which alone decide a refusal; then, in one transaction, the same three
under lock and one UPDATE of each of the two rows; after a success, four short statements.

Every transaction here takes its row locks in one order — username counter, (username, IP)
counter, IP counter, known IP — so on PostgreSQL no two of them can deadlock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Table, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from authserver.login.limits import (
    IpFailures,
    LockoutPolicy,
    UserFailures,
    ip_after_failure,
    is_reset,
    retry_after,
    user_after_failure,
)
from authserver.store.db import Database
from authserver.store.tables import (
    login_ip_failures,
    login_known_ips,
    login_user_failures,
    login_user_ip_failures,
)

users_t = login_user_failures
ips_t = login_ip_failures
known_t = login_known_ips
pairs_t = login_user_ip_failures


@dataclass(frozen=True)
class Attempt:
    """The decision on one password attempt."""

    retry_after: int | None  # refused: whole seconds to wait (nothing was written)
    ip_window_started_at: datetime | None = None  # allowed: the IP window it was counted in
    from_known_ip: bool = False  # counted per (username, IP) instead of per username
    # Allowed, and counted as a failure that, if the password proves wrong, locks:
    locks_counter_for: int | None = None  # the username (or username, IP) for this many seconds
    blocks_ip_for: int | None = None  # the client IP until its window ends, in this many seconds


@dataclass(frozen=True)
class _Counter:
    """The counter row an attempt goes through: which table, which row, its state."""

    table: Table
    key: list[ColumnElement[bool]]
    state: UserFailures | None


class _Refused(Exception):
    """Raised inside the attempt's transaction to roll it back: a refusal writes nothing."""

    def __init__(self, wait: int) -> None:
        self.wait = wait


async def begin_attempt(
    db: Database, username: str, ip: str, policy: LockoutPolicy, now: datetime
) -> Attempt:
    """Refuse the attempt if its counter (the username's, or the (username, IP) one from a known
    IP) or the IP is locked; otherwise count it as a failure (the password has not been checked
    yet) and allow it.

    A refusal writes nothing (security review, finding 2): it is decided first by plain reads,
    which on SQLite take no writer lock, so a client hammering a locked name or a blocked IP
    costs reads only. An attempt that passes them is decided again under the rows' locks, where
    a concurrent attempt may have locked it meanwhile; that refusal rolls back, so no counter
    row is ever created by a refused attempt.
    """
    known_since = policy.known_since(now)
    async with db.read() as conn:
        known = await _is_known_ip(conn, username, ip, known_since)
        counter = await _read_counter(conn, username, ip, known, policy, now)
        ip_state = await _read_ip(conn, ip)
    wait = retry_after(counter, ip_state, policy, now)
    if wait is not None:
        return Attempt(wait)
    try:
        async with db.transaction() as conn:
            known = await _is_known_ip(conn, username, ip, known_since)
            if known:
                locked = await _locked_pair(db, conn, username, ip, policy, now)
            else:
                locked = await _locked_user(db, conn, username, policy, now)
            ip_state = await _locked_ip(db, conn, ip, now)
            wait = retry_after(locked.state, ip_state, policy, now)
            if wait is not None:
                raise _Refused(wait)
            state = user_after_failure(locked.state, policy, now)
            ip_after = ip_after_failure(ip_state, policy, now)
            await conn.execute(
                update(locked.table)
                .where(*locked.key)
                .values(
                    failures=state.failures,
                    last_failure_at=state.last_failure_at,
                    locked_until=state.locked_until,
                    lock_seconds=state.lock_seconds,
                )
            )
            await conn.execute(
                update(ips_t)
                .where(ips_t.c.ip == ip)
                .values(window_started_at=ip_after.window_started_at, failures=ip_after.failures)
            )
    except _Refused as refused:
        return Attempt(refused.wait)
    return Attempt(
        None,
        ip_after.window_started_at,
        known,
        locks_counter_for=state.lock_seconds if state.locked_until is not None else None,
        blocks_ip_for=retry_after(None, ip_after, policy, now),
    )


async def attempt_succeeded(
    db: Database, username: str, ip: str, attempt: Attempt, policy: LockoutPolicy, now: datetime
) -> None:
    """The password was right: reset the username's count (SPEC: a success resets it), take
    this attempt back off the IP's count, and remember the IP as known for the username (its
    (username, IP) count reset too).

    The counter the attempt went through is reset entirely, taking back the lock its own
    pre-count may have set. A success from a known IP did not go through the username's
    counter: there only the count is reset, and a lock still running keeps running until it
    ends (authserver/login/limits.py). Rows are reset rather than deleted, since another attempt may
    be waiting on a row's lock. With LOGIN_KNOWN_IP_DAYS = 0 no IP is remembered.
    """
    reset_user: dict[str, Any] = {"failures": 0, "lock_seconds": 0}
    if not attempt.from_known_ip:
        reset_user["locked_until"] = None
    remember_ip = policy.known_since(now) is not None
    # Rows are locked in one global order, counters before the IP row (as begin_attempt does),
    # so that no two transactions wait on each other on PostgreSQL.
    async with db.transaction() as conn:
        await conn.execute(
            update(users_t).where(users_t.c.username == username).values(**reset_user)
        )
        if remember_ip:
            await conn.execute(
                update(pairs_t)
                .where(pairs_t.c.username == username, pairs_t.c.ip == ip)
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
        if remember_ip:
            remember = db.dialect.insert(known_t).values(
                username=username, ip=ip, last_success_at=now
            )
            await conn.execute(
                remember.on_conflict_do_update(
                    index_elements=[known_t.c.username, known_t.c.ip],
                    set_={"last_success_at": remember.excluded.last_success_at},
                )
            )


async def _is_known_ip(
    conn: AsyncConnection, username: str, ip: str, since: datetime | None
) -> bool:
    """Whether `username` logged in successfully from `ip` after `since` (None: never known).
    By username: an unknown username simply has no row, found by the same statement."""
    if since is None:
        return False
    found = await conn.execute(
        select(known_t.c.last_success_at).where(
            known_t.c.username == username,
            known_t.c.ip == ip,
            known_t.c.last_success_at > since,
        )
    )
    return found.first() is not None


async def _read_counter(
    conn: AsyncConnection,
    username: str,
    ip: str,
    known: bool,
    policy: LockoutPolicy,
    now: datetime,
) -> UserFailures | None:
    """The state of the counter the attempt would go through, read without creating it."""
    table, key = (pairs_t, _pair_key(username, ip)) if known else (users_t, _user_key(username))
    row = (await conn.execute(select(table).where(*key))).first()
    return None if row is None else _counter_state(row, policy, now)


async def _read_ip(conn: AsyncConnection, ip: str) -> IpFailures | None:
    row = (await conn.execute(select(ips_t).where(ips_t.c.ip == ip))).first()
    return IpFailures(row.window_started_at, row.failures) if row and row.failures else None


def _user_key(username: str) -> list[ColumnElement[bool]]:
    return [users_t.c.username == username]


def _pair_key(username: str, ip: str) -> list[ColumnElement[bool]]:
    return [pairs_t.c.username == username, pairs_t.c.ip == ip]


async def _locked_user(
    db: Database, conn: AsyncConnection, username: str, policy: LockoutPolicy, now: datetime
) -> _Counter:
    row = await _ensure_row(
        db,
        conn,
        users_t,
        {"username": username, "failures": 0, "last_failure_at": now, "lock_seconds": 0},
    )
    return _Counter(users_t, _user_key(username), _counter_state(row, policy, now))


async def _locked_pair(
    db: Database,
    conn: AsyncConnection,
    username: str,
    ip: str,
    policy: LockoutPolicy,
    now: datetime,
) -> _Counter:
    row = await _ensure_row(
        db,
        conn,
        pairs_t,
        {"username": username, "ip": ip, "failures": 0, "last_failure_at": now, "lock_seconds": 0},
    )
    return _Counter(pairs_t, _pair_key(username, ip), _counter_state(row, policy, now))


async def _locked_ip(
    db: Database, conn: AsyncConnection, ip: str, now: datetime
) -> IpFailures | None:
    row = await _ensure_row(db, conn, ips_t, {"ip": ip, "window_started_at": now, "failures": 0})
    return IpFailures(row.window_started_at, row.failures) if row.failures else None


def _counter_state(row: Row[Any], policy: LockoutPolicy, now: datetime) -> UserFailures | None:
    state = UserFailures(row.failures, row.last_failure_at, row.locked_until, row.lock_seconds)
    return None if is_reset(state, policy, now) else state


async def _ensure_row(
    db: Database, conn: AsyncConnection, table: Table, values: dict[str, object]
) -> Row[Any]:
    """The counter row, created if missing, and from here on locked: one upsert whose no-op
    update takes the row lock on PostgreSQL (DO NOTHING would not) and returns the row as it is
    after any concurrent attempt committed. `tokens purge` may delete a reset row, and must not
    do so while an attempt is deciding on it. SQLite's BEGIN IMMEDIATE already keeps every
    other writer out; it runs the same upsert."""
    upsert = db.dialect.insert(table).values(**values)
    keys = list(table.primary_key.columns)
    first_other = next(column for column in table.columns if not column.primary_key)
    statement = upsert.on_conflict_do_update(
        index_elements=keys, set_={first_other.name: first_other}
    ).returning(*table.columns)
    return (await conn.execute(statement)).one()
