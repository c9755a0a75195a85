"""`tokens purge` (SPEC "Details": deletes refresh tokens past their expiry and families revoked
more than REFRESH_TOKEN_TTL ago; keeps rotated tokens that have not expired).

On both backends, with a fixed `now`: exactly the rows that can no longer affect a decision go,
in batches; and, under a concurrent refresh and login load through the ASGI app, thousands of
dead rows are purged while no live token is lost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Table, func, insert, select, text, update

from authserver.settings import Settings
from authserver.store import clients as client_store
from authserver.store import login_failures, refresh, rotation
from authserver.store import users as user_store
from authserver.store.db import Database, open_database
from authserver.store.purge import PurgeCounts, PurgePolicy, purge
from authserver.store.tables import (
    audit_events,
    login_ip_failures,
    login_known_ips,
    login_user_failures,
    login_user_ip_failures,
    refresh_families,
    refresh_tokens,
    revoked_access_tokens,
)
from authserver.tokens.opaque import new_refresh_token, token_digest
from tests.conftest import PASSWORD, Clock, RegisteredClient
from tests.helpers import jwt_parts, login, password_login, refreshed
from tests.store.conftest import client_record

MakeClient = Callable[..., Awaitable[RegisteredClient]]
MakeUser = Callable[..., Awaitable[str]]

TTL = 3600  # REFRESH_TOKEN_TTL
ACCESS_TTL = 900
IP_WINDOW = 900
KNOWN_IP_DAYS = 30
FAILURE_RESET = 43_200  # LOGIN_FAILURE_RESET_SECONDS
AUDIT_DAYS = 90
POLICY = PurgePolicy(
    refresh_token_ttl=TTL,
    access_token_ttl=ACCESS_TTL,
    login_ip_window_seconds=IP_WINDOW,
    login_known_ip_days=KNOWN_IP_DAYS,
    login_failure_reset_seconds=FAILURE_RESET,
    audit_retention_days=AUDIT_DAYS,
)
KNOWN_IP_SECONDS = KNOWN_IP_DAYS * 86400


def ago(now: datetime, seconds: float) -> datetime:
    return now - timedelta(seconds=seconds)


def family_row(
    user_id: uuid.UUID,
    client_id: str,
    now: datetime,
    *,
    expires_in: float = 86400,
    revoked_ago: float | None = None,
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "user_id": user_id,
        "client_id": client_id,
        "scope": "read write",
        "created_at": ago(now, 7200),
        "expires_at": now + timedelta(seconds=expires_in),
        "revoked_at": None if revoked_ago is None else ago(now, revoked_ago),
        "revoked_reason": None if revoked_ago is None else "client_revoked",
    }


def token_row(
    family: dict[str, Any],
    now: datetime,
    *,
    expires_in: float,
    rotated: bool = False,
    token: str | None = None,
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "token_hash": token_digest(token or new_refresh_token()),
        "family_id": family["id"],
        "parent_id": None,
        "client_id": family["client_id"],
        "user_id": family["user_id"],
        "scope": family["scope"],
        "issued_at": ago(now, 60),
        "expires_at": now + timedelta(seconds=expires_in),
        "family_expires_at": family["expires_at"],
        "rotated_at": ago(now, 30) if rotated else None,
        "revoked_at": None,
    }


def counter_row(
    now: datetime,
    failures: int,
    *,
    locked_for: float | None = None,
    lock_seconds: int = 0,
    **key: str,
) -> dict[str, Any]:
    """A login_user_failures row (key: username) or a login_user_ip_failures one (username, ip);
    `locked_for` < 0: a lock that ended that long ago."""
    return {
        **key,
        "failures": failures,
        "last_failure_at": ago(now, 5),
        "locked_until": None if locked_for is None else now + timedelta(seconds=locked_for),
        "lock_seconds": lock_seconds,
    }


def audit_row(event: str, occurred_at: datetime) -> dict[str, Any]:
    return {"occurred_at": occurred_at, "event": event, "outcome": "success"}


def known_ip_row(username: str, ip: str, now: datetime, success_ago: float) -> dict[str, Any]:
    return {"username": username, "ip": ip, "last_success_at": ago(now, success_ago)}


def jti_row(client_id: str, now: datetime, expires_in: float) -> dict[str, Any]:
    return {
        "jti": uuid.uuid4().hex,
        "client_id": client_id,
        "revoked_at": ago(now, 10),
        "expires_at": now + timedelta(seconds=expires_in),
    }


async def insert_rows(db: Database, table: Any, rows: list[dict[str, Any]]) -> None:
    """Bulk INSERT (one executemany), not one request per row."""
    if rows:
        async with db.transaction() as conn:
            await conn.execute(insert(table), rows)


async def keys_of(db: Database, column: Any) -> set[Any]:
    async with db.statement() as conn:
        return set((await conn.execute(select(column))).scalars().all())


async def pairs_of(db: Database, table: Any) -> set[tuple[str, str]]:
    async with db.statement() as conn:
        rows = (await conn.execute(select(table.c.username, table.c.ip))).all()
    return {(row.username, row.ip) for row in rows}


async def owner(db: Database, now: datetime) -> tuple[uuid.UUID, str]:
    user = await user_store.create_user(db, "alice", "argon2-hash-placeholder", now)
    await client_store.create_client(db, client_record("app"))
    return user.id, "app"


# --- exactly what can no longer matter ----------------------------------------------------------


async def test_purge_deletes_exactly_the_rows_that_can_no_longer_matter(db: Database) -> None:
    now = datetime.now(UTC)
    user_id, client_id = await owner(db, now)

    def fam(**kw: Any) -> dict[str, Any]:
        return family_row(user_id, client_id, now, **kw)

    live = fam()
    recently_revoked = fam(revoked_ago=TTL - 1)
    long_revoked = fam(revoked_ago=TTL + 1)
    recently_expired = fam(expires_in=-(ACCESS_TTL - 1))  # its last access tokens may still live
    long_expired = fam(expires_in=-(ACCESS_TTL + 1))
    without_tokens = fam()  # a login at a client without the refresh_token grant
    families = [
        live,
        recently_revoked,
        long_revoked,
        recently_expired,
        long_expired,
        without_tokens,
    ]

    keep = {
        "rotated, unexpired (reuse detection)": token_row(live, now, expires_in=10, rotated=True),
        "live": token_row(live, now, expires_in=TTL),
        "unexpired, family revoked recently": token_row(recently_revoked, now, expires_in=5),
    }
    drop = {
        "rotated, expired": token_row(live, now, expires_in=-1, rotated=True),
        "expired this very second": token_row(live, now, expires_in=0),
        "expired, family revoked recently": token_row(recently_revoked, now, expires_in=-5),
        "family revoked long ago": token_row(long_revoked, now, expires_in=10),
        "expired, family revoked long ago": token_row(long_revoked, now, expires_in=-10),
        "expired with its family": token_row(long_expired, now, expires_in=-(ACCESS_TTL + 1)),
    }
    jtis_keep = [jti_row(client_id, now, 1)]
    jtis_drop = [jti_row(client_id, now, 0), jti_row(client_id, now, -1)]
    users_rows = [
        {
            "username": "reset",
            "failures": 0,
            "last_failure_at": ago(now, 5),
            "locked_until": None,
            "lock_seconds": 0,
        },
        {
            "username": "counting",
            "failures": 3,
            "last_failure_at": ago(now, 365 * 86400),
            "locked_until": None,
            "lock_seconds": 0,
        },
        {
            "username": "was-locked",
            "failures": 10,
            "last_failure_at": ago(now, 86400),
            "locked_until": ago(now, 86340),
            "lock_seconds": 60,
        },
        {  # quiet for less than LOGIN_FAILURE_RESET_SECONDS: still counts
            "username": "counting-recently",
            "failures": 3,
            "last_failure_at": ago(now, FAILURE_RESET - 1),
            "locked_until": None,
            "lock_seconds": 0,
        },
        {  # its lock ended less than LOGIN_FAILURE_RESET_SECONDS ago: escalation remembered
            "username": "was-locked-recently",
            "failures": 10,
            "last_failure_at": ago(now, FAILURE_RESET + 60),
            "locked_until": ago(now, FAILURE_RESET - 60),
            "lock_seconds": 120,
        },
        {
            "username": "locked",
            "failures": 11,
            "last_failure_at": ago(now, 1),
            "locked_until": now + timedelta(seconds=119),
            "lock_seconds": 120,
        },
        # Reset by a success from a known IP while locked: the lock runs on, so the row stays.
        counter_row(now, 0, locked_for=30, username="reset-lock-running"),
        counter_row(now, 0, locked_for=-1, username="reset-lock-ended"),
    ]
    pair_rows = [
        counter_row(now, 0, username="alice", ip="192.0.2.1"),
        counter_row(now, 0, locked_for=-60, username="alice", ip="192.0.2.2"),
        counter_row(now, 2, username="alice", ip="192.0.2.3"),
        counter_row(now, 0, locked_for=60, username="bob", ip="192.0.2.1"),
        counter_row(now, 10, locked_for=-60, lock_seconds=60, username="bob", ip="192.0.2.2"),
    ]
    known_rows = [
        known_ip_row("alice", "192.0.2.1", now, KNOWN_IP_SECONDS),  # expired this very second
        known_ip_row("alice", "192.0.2.2", now, KNOWN_IP_SECONDS + 1),
        known_ip_row("alice", "192.0.2.3", now, KNOWN_IP_SECONDS - 1),
        known_ip_row("bob", "192.0.2.1", now, 0),
    ]
    ip_rows = [
        {"ip": "192.0.2.1", "window_started_at": ago(now, IP_WINDOW), "failures": 100},  # ended
        {"ip": "192.0.2.2", "window_started_at": ago(now, IP_WINDOW - 1), "failures": 100},
        {"ip": "192.0.2.3", "window_started_at": ago(now, 1), "failures": 0},
        {"ip": "192.0.2.4", "window_started_at": ago(now, 10), "failures": 1},
    ]
    await insert_rows(db, refresh_families, families)
    await insert_rows(db, refresh_tokens, [*keep.values(), *drop.values()])
    await insert_rows(db, revoked_access_tokens, jtis_keep + jtis_drop)
    await insert_rows(db, login_user_failures, users_rows)
    await insert_rows(db, login_ip_failures, ip_rows)
    await insert_rows(db, login_user_ip_failures, pair_rows)
    await insert_rows(db, login_known_ips, known_rows)
    await insert_rows(
        db,
        audit_events,
        [
            audit_row("dropped", ago(now, AUDIT_DAYS * 86400 + 1)),
            audit_row("dropped", ago(now, AUDIT_DAYS * 86400 + 86400)),
            audit_row("kept", ago(now, AUDIT_DAYS * 86400 - 1)),
        ],
    )

    counts = await purge(db, POLICY, now)

    assert counts == PurgeCounts(
        refresh_tokens=len(drop),
        refresh_families=2,
        revoked_access_tokens=2,
        login_user_failures=4,
        login_ip_failures=2,
        login_user_ip_failures=2,
        login_known_ips=2,
        audit_events=2,
    )
    assert await keys_of(db, refresh_tokens.c.id) == {row["id"] for row in keep.values()}
    assert await keys_of(db, refresh_families.c.id) == {
        live["id"],
        recently_revoked["id"],
        recently_expired["id"],
        without_tokens["id"],
    }
    assert await keys_of(db, revoked_access_tokens.c.jti) == {row["jti"] for row in jtis_keep}
    assert await keys_of(db, login_user_failures.c.username) == {
        "counting-recently",
        "was-locked-recently",
        "locked",
        "reset-lock-running",
    }
    assert await keys_of(db, audit_events.c.event) == {"kept"}
    assert await pairs_of(db, login_user_ip_failures) == {
        ("alice", "192.0.2.3"),
        ("bob", "192.0.2.1"),
        ("bob", "192.0.2.2"),
    }
    assert await pairs_of(db, login_known_ips) == {("alice", "192.0.2.3"), ("bob", "192.0.2.1")}
    assert await keys_of(db, login_ip_failures.c.ip) == {"192.0.2.2", "192.0.2.4"}

    assert await purge(db, POLICY, now) == PurgeCounts()  # nothing left to do


async def test_small_batches_delete_everything_a_single_batch_would(db: Database) -> None:
    now = datetime.now(UTC)
    user_id, client_id = await owner(db, now)
    family = family_row(user_id, client_id, now, revoked_ago=TTL * 2)
    await insert_rows(db, refresh_families, [family])
    await insert_rows(
        db, refresh_tokens, [token_row(family, now, expires_in=-1) for _ in range(25)]
    )
    await insert_rows(db, revoked_access_tokens, [jti_row(client_id, now, -1) for _ in range(7)])
    await insert_rows(
        db,
        login_known_ips,
        [known_ip_row(f"u{i % 2}", f"10.0.0.{i}", now, KNOWN_IP_SECONDS + i) for i in range(8)],
    )
    await insert_rows(
        db,
        login_user_ip_failures,
        [counter_row(now, 0, username=f"u{i % 3}", ip=f"10.0.0.{i}") for i in range(5)],
    )

    counts = await purge(db, POLICY, now, batch_size=3)

    assert counts == PurgeCounts(
        refresh_tokens=25,
        refresh_families=1,
        revoked_access_tokens=7,
        login_user_ip_failures=5,
        login_known_ips=8,
    )
    assert await keys_of(db, refresh_tokens.c.id) == set()
    assert await pairs_of(db, login_known_ips) == set()


async def test_tokens_purge_keeps_still_rotate_and_still_detect_reuse(db: Database) -> None:
    """What purge keeps is enough for rotation and reuse detection to behave as before."""
    now = datetime.now(UTC)
    user_id, client_id = await owner(db, now)
    family = family_row(user_id, client_id, now)
    used, current = new_refresh_token(), new_refresh_token()
    await insert_rows(db, refresh_families, [family])
    await insert_rows(
        db,
        refresh_tokens,
        [
            token_row(family, now, expires_in=60, rotated=True, token=used),
            token_row(family, now, expires_in=TTL, token=current),
            token_row(family, now, expires_in=-60, rotated=True),
        ],
    )

    assert (await purge(db, POLICY, now)).refresh_tokens == 1

    reused = await refresh.find_token(db, token_digest(used))
    assert reused is not None
    assert reused.rotated_at is not None
    grant = await rotation.rotate(
        db,
        old_hash=token_digest(current),
        new_hash=token_digest(new_refresh_token()),
        client_id=client_id,
        now=now,
        token_ttl=TTL,
    )
    assert grant is not None
    assert grant.family_id == family["id"]


# --- under load ---------------------------------------------------------------------------------

CHAINS = 16
REFRESHES = 12
DEAD_FAMILIES = 400  # revoked long ago, 5 tokens each
EXPIRED_FAMILIES = 200  # past their absolute expiry, 5 expired tokens each
DEAD_JTIS = 2000
RESET_USERNAMES = 1000
ENDED_IPS = 1000
EXPIRED_KNOWN_IPS = 500
BYSTANDERS = 150  # live logins seeded in bulk, with known raw tokens
LOGIN_ROUNDS = 4


async def test_purge_during_a_refresh_and_login_load_loses_no_live_token(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    make_user: MakeUser,
    db: Database,
    clock: Clock,
) -> None:
    now = clock()
    client = await make_client("web")
    user_id = uuid.UUID(await make_user("alice"))
    for name in ("bob", "carol", "dave"):
        await make_user(name)

    dead = [
        family_row(user_id, client.client_id, now, revoked_ago=TTL + 60)
        for _ in range(DEAD_FAMILIES)
    ]
    expired = [
        family_row(user_id, client.client_id, now, expires_in=-2 * ACCESS_TTL)
        for _ in range(EXPIRED_FAMILIES)
    ]
    bystanders = [family_row(user_id, client.client_id, now) for _ in range(BYSTANDERS)]
    bystander_tokens = [new_refresh_token() for _ in bystanders]
    dead_tokens = [token_row(f, now, expires_in=(i % 3) * 60 - 60) for f in dead for i in range(5)]
    expired_tokens = [
        token_row(f, now, expires_in=-3 * ACCESS_TTL) for f in expired for _ in range(5)
    ]
    live_tokens = [
        token_row(f, now, expires_in=TTL, token=t)
        for f, t in zip(bystanders, bystander_tokens, strict=True)
    ]
    rotated_bystander_tokens = [token_row(f, now, expires_in=TTL, rotated=True) for f in bystanders]
    await insert_rows(db, refresh_families, dead + expired + bystanders)
    await insert_rows(
        db, refresh_tokens, dead_tokens + expired_tokens + live_tokens + rotated_bystander_tokens
    )
    await insert_rows(
        db, revoked_access_tokens, [jti_row(client.client_id, now, -1) for _ in range(DEAD_JTIS)]
    )
    await insert_rows(
        db,
        login_user_failures,
        [
            {
                "username": f"user-{i}",
                "failures": 0,
                "last_failure_at": now,
                "locked_until": None,
                "lock_seconds": 0,
            }
            for i in range(RESET_USERNAMES)
        ],
    )
    await insert_rows(
        db,
        login_ip_failures,
        [
            {
                "ip": f"10.0.{i // 250}.{i % 250}",
                "window_started_at": ago(now, 2 * IP_WINDOW),
                "failures": 50,
            }
            for i in range(ENDED_IPS)
        ],
    )
    await insert_rows(
        db,
        login_known_ips,
        [
            known_ip_row(f"user-{i}", "198.51.100.1", now, KNOWN_IP_SECONDS + 60)
            for i in range(EXPIRED_KNOWN_IPS)
        ],
    )
    starts = [await login(http, client) for _ in range(CHAINS)]
    chain_families = {uuid.UUID(jwt_parts(s["access_token"])[1]["sid"]) for s in starts}

    async def chain(token: str) -> str:
        for _ in range(REFRESHES):
            token = (await refreshed(http, client, token))["refresh_token"]
            await asyncio.sleep(0)
        return token

    async def logins(username: str) -> list[int]:
        """Failures then a success: counter rows go 1 → 0 (eligible for purge) and back."""
        statuses = []
        for _ in range(LOGIN_ROUNDS):
            statuses.append(
                (await password_login(http, client, username, "wrong password")).status_code
            )
            statuses.append((await password_login(http, client, username, PASSWORD)).status_code)
        return statuses

    purging = asyncio.create_task(purge(db, POLICY, now, batch_size=100))
    results = await asyncio.gather(
        *(chain(s["refresh_token"]) for s in starts),
        *(logins(name) for name in ("bob", "carol", "dave")),
    )
    counts = await purging
    finals = [r for r in results if isinstance(r, str)]
    login_statuses = [status for r in results if isinstance(r, list) for status in r]

    assert login_statuses.count(200) == 3 * LOGIN_ROUNDS
    assert login_statuses.count(400) == 3 * LOGIN_ROUNDS
    assert counts.refresh_tokens == len(dead_tokens) + len(expired_tokens)
    assert counts.refresh_families == DEAD_FAMILIES + EXPIRED_FAMILIES
    assert counts.revoked_access_tokens == DEAD_JTIS
    assert counts.login_user_failures >= RESET_USERNAMES
    assert counts.login_ip_failures >= ENDED_IPS  # + the test IP's row, whenever reset to 0
    assert counts.login_known_ips == EXPIRED_KNOWN_IPS
    # The IPs the load's logins just made known survive (alice's from the chains' logins).
    assert {username for username, _ip in await pairs_of(db, login_known_ips)} == {
        "alice",
        "bob",
        "carol",
        "dave",
    }
    # Every live token still works: the chains' latest and the seeded bystanders'.
    for token in finals + bystander_tokens:
        await refreshed(http, client, token)
    # Nothing live was deleted: every chain kept all its tokens (rotated ones for reuse detection).
    async with db.statement() as conn:
        per_family: dict[uuid.UUID, int] = dict(
            (
                await conn.execute(
                    select(refresh_tokens.c.family_id, func.count())
                    .where(refresh_tokens.c.family_id.in_(chain_families))
                    .group_by(refresh_tokens.c.family_id)
                )
            ).all()
        )
    assert per_family == {family: 1 + REFRESHES + 1 for family in chain_families}
    assert await keys_of(db, refresh_families.c.id) >= chain_families | {
        f["id"] for f in bystanders
    }


async def blocked_behind_a_lock(db: Database, task: asyncio.Task[Any]) -> None:
    """Wait (bounded) until `task` waits for a lock. PostgreSQL shows it in pg_stat_activity; on
    SQLite the wait is in the busy handler, which nothing shows: there the task gets a moment to
    reach it (if it has not, it runs after the commit, and must leave the row alone just the
    same)."""
    if db.dialect.name != "postgresql":
        await asyncio.sleep(0.5)
        assert not task.done()
        return
    async with asyncio.timeout(30):  # generous: the machine may be busy
        while True:
            assert not task.done()  # it must wait for the attempt's row lock
            async with db.read() as probe:
                waiting = await probe.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                )
            if waiting:
                return
            await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    ("table", "key"),
    [
        (login_user_failures, {"username": "alice"}),
        (login_user_ip_failures, {"username": "alice", "ip": "192.0.2.1"}),
    ],
    ids=["username", "username-and-known-ip"],
)
async def test_purge_never_deletes_a_counter_row_an_attempt_is_working_on(
    db: Database, database_url: str, table: Table, key: dict[str, str]
) -> None:
    """A password attempt makes sure its counter row exists and locks it, in one upsert. A reset
    row (failures 0) is eligible for purge, so the attempt must hold it from that statement on:
    purge waits, then sees the counted failure and leaves the row alone."""
    now = datetime.now(UTC)
    await insert_rows(db, table, [{**key, **counter_row(now, 0)}])
    purger = open_database(Settings(database_url=database_url))
    try:
        async with db.transaction() as conn:
            row = await login_failures._ensure_row(
                db, conn, table, {**key, "failures": 0, "last_failure_at": now, "lock_seconds": 0}
            )
            assert row.failures == 0
            purging = asyncio.create_task(purge(purger, POLICY, now))
            await blocked_behind_a_lock(db, purging)
            await conn.execute(
                update(table)
                .where(*(table.c[name] == value for name, value in key.items()))
                .values(failures=1, last_failure_at=now)
            )
        counts = await asyncio.wait_for(purging, 10)
    finally:
        await purger.dispose()

    assert counts.login_user_failures == counts.login_user_ip_failures == 0
    async with db.statement() as conn:
        rows = (await conn.execute(select(*(table.c[name] for name in key)))).all()
    assert [tuple(row) for row in rows] == [tuple(key.values())]


async def test_audit_retention_of_zero_keeps_every_event(db: Database) -> None:
    now = datetime.now(UTC)
    await insert_rows(db, audit_events, [audit_row("ancient", ago(now, 3650 * 86400))])
    keep_all = dataclasses.replace(POLICY, audit_retention_days=0)
    assert (await purge(db, keep_all, now)).audit_events == 0
    assert await keys_of(db, audit_events.c.event) == {"ancient"}
