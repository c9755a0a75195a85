"""The hot path's own PostgreSQL connections: driver connections in a small LIFO pool, without
SQLAlchemy's pool around them (`Database.fetch_row`).

Why not borrow from SQLAlchemy's pool, as the hot path did at first: every checkout and return
there runs its pool's synchronous code in a new greenlet (`greenlet_spawn`), with the connection
"fairy", its weakref finalizer, the checkout and checkin events and a reset on return. Measured
with `bench/refresh_layer.py` that was about 85 µs of CPU per refresh (50 user, 35 system, the
greenlets' stacks being mapped and unmapped) out of 265 µs without the signature; here a
checkout is a list pop and a return a list append.

The rules are those of the SQLAlchemy pool the connections used to come from:
- at most `size` connections, opened on demand, newest reused first;
- a caller waits at most `timeout` seconds for one, then `PoolTimeout` (a TimeoutError, which the
  store counts as the database being unavailable: 503);
- waiters are served first come, first served: a returned connection goes straight to the oldest;
- a connection older than `recycle` seconds is closed instead of reused;
- a connection found dead (closed while idle, or failing as a connection) marks every idle one
  opened before it as stale, in this pool and, through `on_lost`, in SQLAlchemy's, so that after
  a database restart the next checkouts reconnect instead of failing one by one.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


class PoolTimeout(TimeoutError):
    """No connection came free within the pool's timeout."""


@dataclass
class Lease:
    """One checked-out connection, returned with `DriverPool.release` or `DriverPool.discard`."""

    connection: Any  # the driver's connection (asyncpg.Connection)
    opened_at: float  # time.monotonic() when it was opened


# What a waiter is handed: a connection, or None for "a slot came free: open one yourself".
_Handoff = Lease | None


class DriverPool:
    def __init__(
        self,
        connect: Callable[[], Awaitable[Any]],
        *,
        size: int,
        timeout: float,
        recycle: float,
        on_lost: Callable[[], None] = lambda: None,
    ) -> None:
        self.size = size
        self._on_lost = on_lost
        self._connect = connect
        self._timeout = timeout
        self._recycle = recycle
        self._idle: list[Lease] = []  # newest last: reused first
        self._open = 0  # connections open or being opened, idle ones included
        self._waiters: deque[asyncio.Future[_Handoff]] = deque()
        self._stale_before = 0.0  # idle connections opened before this are not reused
        self._closed = False
        self._closing: set[asyncio.Future[None]] = set()  # polite closes under way

    @property
    def in_use(self) -> int:
        return self._open - len(self._idle)

    async def acquire(self) -> Lease:
        idle = self._idle
        while idle:
            lease = idle.pop()
            if self._reusable(lease):
                return lease
            if lease.connection.is_closed():  # the server closed it while it was idle
                self.connection_lost()
            self._close(lease)
        if self._open < self.size:
            self._open += 1
            return await self._open_connection()
        handoff = await self._wait()
        if handoff is not None:
            if self._reusable(handoff):
                return handoff
            self._shut(handoff)  # too old, or stale: its slot is ours, for a new one
        return await self._open_connection()

    def release(self, lease: Lease) -> None:
        """Give back a connection whose statement ended cleanly. (Whether it is still worth
        reusing, `acquire` checks.)"""
        if self._closed:
            self._close(lease)
            return
        waiter = self._next_waiter()
        if waiter is not None:
            waiter.set_result(lease)
        else:
            self._idle.append(lease)

    def discard(self, lease: Lease, *, lost: bool = False) -> None:
        """Drop a connection whose statement did not end cleanly (its state is unknown). `lost`:
        it failed as a connection (reset, closed by the server): see `mark_stale`."""
        if lost:
            self.connection_lost()
        self._close(lease, terminate=True)

    def connection_lost(self) -> None:
        """One of ours was lost: `mark_stale`, and tell `on_lost` (which marks the other pool's)."""
        self.mark_stale()
        self._on_lost()

    def mark_stale(self) -> None:
        """A connection to the database was lost: stop reusing every idle connection opened
        before now, since they most likely went the same way (a restart, a failover)."""
        self._stale_before = time.monotonic()

    async def close(self) -> None:
        """Close the idle connections; those in use are closed as they come back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for lease in idle:
            self._close(lease)
        await asyncio.gather(*self._closing, return_exceptions=True)

    def _reusable(self, lease: Lease) -> bool:
        return (
            lease.opened_at > self._stale_before
            and time.monotonic() - lease.opened_at < self._recycle
            and not lease.connection.is_closed()
        )

    async def _open_connection(self) -> Lease:
        """Open a connection in a slot already counted in `_open`; on failure, free the slot."""
        try:
            connection = await self._connect()
        except BaseException:
            self._free_slot()
            raise
        return Lease(connection, time.monotonic())

    async def _wait(self) -> _Handoff:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_Handoff] = loop.create_future()
        self._waiters.append(future)
        expiry = loop.call_later(self._timeout, _expire, future, self._timeout)
        try:
            return await future
        except BaseException:
            if future.done() and not future.cancelled() and future.exception() is None:
                # Cancelled (the request's deadline) just as it was handed something: pass it
                # on, so that neither a connection nor a slot is lost.
                self._pass_on(future.result())
            raise
        finally:
            expiry.cancel()

    def _pass_on(self, handoff: _Handoff) -> None:
        if handoff is None:
            self._free_slot()
        else:
            self.release(handoff)

    def _next_waiter(self) -> asyncio.Future[_Handoff] | None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                return waiter
        return None

    def _close(self, lease: Lease, *, terminate: bool = False) -> None:
        """Close a connection that is not in `_idle`, and free its slot."""
        self._shut(lease, terminate=terminate)
        self._free_slot()

    def _shut(self, lease: Lease, *, terminate: bool = False) -> None:
        """Close the connection (politely, in the background, unless `terminate`)."""
        if terminate:
            lease.connection.terminate()
        else:
            closing = asyncio.ensure_future(lease.connection.close(timeout=5))
            self._closing.add(closing)  # a reference until it is done (asyncio keeps none)
            closing.add_done_callback(self._closed_one)

    def _closed_one(self, closing: asyncio.Future[None]) -> None:
        self._closing.discard(closing)
        if not closing.cancelled():
            closing.exception()  # closing a connection that is already broken may fail

    def _free_slot(self) -> None:
        waiter = None if self._closed else self._next_waiter()
        if waiter is not None:
            waiter.set_result(None)  # the slot passes to the waiter, which opens a connection
        else:
            self._open -= 1


def _expire(waiter: asyncio.Future[_Handoff], timeout: float) -> None:
    if not waiter.done():  # `_next_waiter` skips it from now on
        waiter.set_exception(PoolTimeout(f"no database connection free within {timeout} s"))
