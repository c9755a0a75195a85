"""The hot path's connection pool (store/driver_pool.py), with stand-in connections: its bound,
its queue, its timeout, and that no connection or slot is ever lost, whatever happens to a
caller while it waits. (The pool on a real PostgreSQL, its restarts and outages included, is
tested through the server: tests/http/test_database_outage.py.)"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from authserver.store.driver_pool import DriverPool, Lease, PoolTimeout
from authserver.store.postgresql import POSTGRESQL


class FakeConnection:
    numbers = itertools.count(1)

    def __init__(self) -> None:
        self.number = next(self.numbers)
        self.closed = False
        self.terminated = False

    def is_closed(self) -> bool:
        return self.closed

    async def close(self, **_options: float) -> None:
        self.closed = True

    def terminate(self) -> None:
        self.closed = self.terminated = True


class Opener:
    """The pool's `connect`: counts what it opened; fails while `failing` is set."""

    def __init__(self) -> None:
        self.opened: list[FakeConnection] = []
        self.failing: Exception | None = None

    async def __call__(self) -> FakeConnection:
        await asyncio.sleep(0)
        if self.failing is not None:
            raise self.failing
        connection = FakeConnection()
        self.opened.append(connection)
        return connection


def make_pool(
    opener: Opener, *, size: int = 2, timeout: float = 5.0, recycle: float = 1800.0
) -> tuple[DriverPool, list[str]]:
    lost: list[str] = []
    pool = DriverPool(
        opener, size=size, timeout=timeout, recycle=recycle, on_lost=lambda: lost.append("lost")
    )
    return pool, lost


async def waiting(pool: DriverPool, count: int) -> None:
    """Until `count` callers wait for a connection (a condition, not a sleep)."""
    async with asyncio.timeout(5):
        while sum(not waiter.done() for waiter in pool._waiters) < count:  # noqa: ASYNC110
            await asyncio.sleep(0)  # the pool has no event to wait on: a yield, bounded above


async def test_connections_are_opened_on_demand_and_reused_newest_first() -> None:
    opener = Opener()
    pool, _ = make_pool(opener)
    first = await pool.acquire()
    second = await pool.acquire()
    pool.release(first)
    pool.release(second)
    again = await pool.acquire()
    assert again.connection is second.connection
    assert len(opener.opened) == 2


async def test_never_more_connections_than_the_size_and_waiters_are_served_in_order() -> None:
    opener = Opener()
    pool, _ = make_pool(opener, size=1)
    held = await pool.acquire()
    served: list[str] = []

    async def take(name: str) -> None:
        lease = await pool.acquire()
        served.append(name)
        pool.release(lease)

    first = asyncio.create_task(take("first"))
    await waiting(pool, 1)
    second = asyncio.create_task(take("second"))
    await waiting(pool, 2)
    pool.release(held)
    await asyncio.gather(first, second)
    assert served == ["first", "second"]
    assert len(opener.opened) == 1
    assert pool.in_use == 0


async def test_a_caller_waits_at_most_the_timeout_and_gets_an_unavailable_error() -> None:
    pool, _ = make_pool(Opener(), size=1, timeout=0.05)
    held = await pool.acquire()
    with pytest.raises(PoolTimeout) as raised:
        await pool.acquire()
    assert isinstance(raised.value, POSTGRESQL.unavailable)  # answered 503, like an outage
    pool.release(held)
    assert (await pool.acquire()).connection is held.connection


async def test_a_waiter_cancelled_as_it_is_handed_a_connection_passes_it_on() -> None:
    """The request's deadline may cancel a waiter in the instant between the connection being
    handed to it and its resuming: the connection must go on to the next waiter, not vanish."""
    opener = Opener()
    pool, _ = make_pool(opener, size=1)
    held = await pool.acquire()
    doomed = asyncio.create_task(pool.acquire())
    await waiting(pool, 1)
    patient = asyncio.create_task(pool.acquire())
    await waiting(pool, 2)
    pool.release(held)  # handed to `doomed` ...
    doomed.cancel()  # ... which is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await doomed
    lease = await asyncio.wait_for(patient, 5)
    assert lease.connection is held.connection
    assert len(opener.opened) == 1


async def test_a_cancelled_waiter_leaves_the_queue_without_taking_anything() -> None:
    pool, _ = make_pool(Opener(), size=1)
    held = await pool.acquire()
    gone = asyncio.create_task(pool.acquire())
    await waiting(pool, 1)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    pool.release(held)
    assert (await pool.acquire()).connection is held.connection


async def test_a_failed_connect_frees_its_slot_for_the_next_caller() -> None:
    opener = Opener()
    pool, _ = make_pool(opener, size=1)
    opener.failing = ConnectionRefusedError("database down")
    with pytest.raises(ConnectionRefusedError):
        await pool.acquire()
    opener.failing = None
    lease = await pool.acquire()
    assert pool.in_use == 1
    pool.release(lease)


async def test_a_discarded_connection_lets_a_waiter_open_a_new_one() -> None:
    opener = Opener()
    pool, _ = make_pool(opener, size=1)
    held = await pool.acquire()
    waiter = asyncio.create_task(pool.acquire())
    await waiting(pool, 1)
    pool.discard(held)
    lease = await asyncio.wait_for(waiter, 5)
    assert held.connection.terminated
    assert lease.connection is not held.connection
    assert len(opener.opened) == 2
    assert pool.in_use == 1


async def test_a_connection_closed_while_idle_makes_every_older_one_stale_in_both_pools() -> None:
    """A database restart closes every connection: finding one closed, the pool stops reusing
    all those opened before it (and tells SQLAlchemy's pool, `on_lost`), so that the next
    requests reconnect instead of each failing on a dead connection."""
    opener = Opener()
    pool, lost = make_pool(opener, size=3)
    leases = [await pool.acquire() for _ in range(3)]
    for lease in leases:
        pool.release(lease)
    leases[-1].connection.closed = True  # the newest, reused first: found closed
    fresh = await pool.acquire()
    assert lost == ["lost"]
    assert fresh.connection not in [lease.connection for lease in leases]
    assert all(lease.connection.closed for lease in leases)
    assert pool.in_use == 1
    assert len(pool._idle) == 0


async def test_a_connection_lost_mid_statement_makes_the_idle_ones_stale() -> None:
    opener = Opener()
    pool, lost = make_pool(opener, size=2)
    idle = await pool.acquire()
    failing = await pool.acquire()
    pool.release(idle)
    pool.discard(failing, lost=True)
    fresh = await pool.acquire()
    assert lost == ["lost"]
    assert fresh.connection is not idle.connection
    assert idle.connection.closed


async def test_a_connection_older_than_recycle_is_closed_instead_of_reused() -> None:
    opener = Opener()
    pool, lost = make_pool(opener, recycle=60)
    old = await pool.acquire()
    pool.release(Lease(old.connection, old.opened_at - 61))
    fresh = await pool.acquire()
    assert fresh.connection is not old.connection
    assert old.connection.closed
    assert not old.connection.terminated
    assert lost == []


async def test_close_closes_idle_connections_now_and_busy_ones_when_they_come_back() -> None:
    opener = Opener()
    pool, _ = make_pool(opener)
    idle = await pool.acquire()
    busy = await pool.acquire()
    pool.release(idle)
    await pool.close()
    assert idle.connection.closed
    assert not busy.connection.closed
    pool.release(busy)
    await asyncio.gather(*pool._closing)
    assert busy.connection.closed
    assert pool.in_use == 0


async def test_a_connection_handed_to_a_waiter_past_its_recycle_age_is_replaced() -> None:
    opener = Opener()
    pool, _ = make_pool(opener, size=1, recycle=60)
    held = await pool.acquire()
    waiter = asyncio.create_task(pool.acquire())
    await waiting(pool, 1)
    pool.release(Lease(held.connection, held.opened_at - 61))
    lease = await asyncio.wait_for(waiter, 5)
    assert lease.connection is not held.connection
    assert held.connection.closed
    assert pool.in_use == 1
