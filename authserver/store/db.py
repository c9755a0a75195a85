"""The engine and the ways the rest of `store/` talks to it: one transaction, one statement, a
read, or a prepared hot-path statement (`fetch_row`). What differs between the databases is
asked of `Dialect` (store/dialect.py).

PostgreSQL: single statements run in autocommit mode (no BEGIN/COMMIT round trips); multi-statement
work runs in a READ COMMITTED transaction whose conditional UPDATEs make it race-free.

SQLite (the embedded default): WAL, foreign keys on, a 5 s busy timeout, one pooled connection per
process, and every transaction opened with BEGIN IMMEDIATE so two processes never deadlock
upgrading a read lock to a write lock.

Rule for every store function: never open a second connection while holding one. With SQLite's
single pooled connection that would wait forever; pass the open connection along instead.
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy import event, text
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool, StaticPool

from authserver.settings import Settings
from authserver.store.dialect import SQLITE, Dialect, Prepared, dialect_for
from authserver.store.driver_pool import DriverPool

READ_ONLY = "authserver_read_only"  # execution option: SQLite begins a deferred transaction
RECYCLE_SECONDS = 1800  # PostgreSQL: a connection older than this is closed, not reused


@dataclass(frozen=True)
class Database:
    engine: AsyncEngine
    dialect: Dialect
    # PostgreSQL: the connections `fetch_row` runs its statements on (store/driver_pool.py).
    driver_pool: DriverPool | None = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """Several statements that commit together (or not at all)."""
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def statement(self) -> AsyncIterator[AsyncConnection]:
        """A connection for work that is one statement: committed as soon as it ran."""
        if not self.dialect.autocommit_statements:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads only: on PostgreSQL in autocommit; on SQLite in a deferred
        transaction, which takes no writer lock (no BEGIN IMMEDIATE), so a read never queues
        behind, or holds up, another process's write (WAL: readers and the writer don't block
        each other). Use `transaction()` for reads that a write of the same work depends on."""
        async with self.engine.connect() as conn:
            if self.dialect.autocommit_statements:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
            else:
                await conn.execution_options(**{READ_ONLY: True})
            yield conn

    async def fetch_row(
        self, prepared: Prepared, values: Mapping[str, Any], *, read_only: bool = False
    ) -> Mapping[str, Any] | None:
        """Run one hot-path statement; its first row (by column name), or None.

        PostgreSQL: on a connection of `driver_pool`, in autocommit (see Prepared). A
        `read_only` statement is retried once on another connection if the first one turns out
        to be dead (the first request after a database restart); a write is not, since its lost
        reply may have committed.
        """
        if self.driver_pool is None:
            connection = self.read() if read_only else self.statement()
            async with connection as conn:
                row = (await conn.execute(prepared.statement, dict(values))).first()
            return None if row is None else cast(Mapping[str, Any], row._mapping)
        sql, args = prepared.postgresql(values)
        try:
            return await self._fetch_on_driver(sql, args)
        except self.dialect.driver_disconnects:
            if not read_only:
                raise
        return await self._fetch_on_driver(sql, args)

    async def _fetch_on_driver(self, sql: str, args: list[Any]) -> Mapping[str, Any] | None:
        """One statement on a pooled driver connection. The connection goes back to the pool
        only if the statement ended cleanly; after anything else (an SQL error, a lost
        connection, the request's deadline cancelling it mid-flight) its state is unknown, and
        it is closed."""
        pool = self.driver_pool
        assert pool is not None
        lease = await pool.acquire()
        try:
            record: Mapping[str, Any] | None = await lease.connection.fetchrow(sql, *args)
        except self.dialect.driver_disconnects:
            pool.discard(lease, lost=True)
            raise
        except BaseException:
            pool.discard(lease)
            raise
        pool.release(lease)
        return record

    async def ping(self) -> None:
        """One trivial query: raises one of `dialect.unavailable` if the database cannot answer."""
        async with self.read() as conn:
            await conn.execute(text("SELECT 1"))

    def pool_stats(self) -> PoolStats | None:
        """The pools' counters right now, SQLAlchemy's and `driver_pool` together, for the
        metrics (None for a pool without them)."""
        pool = self.engine.sync_engine.pool
        if not isinstance(pool, QueuePool):  # StaticPool: the in-memory SQLite of tests
            return None
        size, checked_out = pool.size(), pool.checkedout()
        if self.driver_pool is not None:
            size += self.driver_pool.size
            checked_out += self.driver_pool.in_use
        return PoolStats(
            size=size,
            checked_out=checked_out,
            overflow=max(0, pool.overflow()),  # negative while fewer than `size` are open
        )

    async def dispose(self) -> None:
        if self.driver_pool is not None:
            await self.driver_pool.close()
        await self.engine.dispose()


@dataclass(frozen=True)
class PoolStats:
    size: int
    checked_out: int
    overflow: int


def split_pool_size(size: int) -> tuple[int, int]:
    """DATABASE_POOL_SIZE (at least 2) shared between SQLAlchemy's pool (transactions and
    everything else) and `driver_pool` (the hot path's single statements, most of the
    traffic): a quarter, at least one, and the rest. Neither waits for the other's
    connections, and together they never hold more than `size`."""
    sqlalchemy = max(1, size // 4)
    return sqlalchemy, size - sqlalchemy


def open_database(settings: Settings) -> Database:
    """Create the engine for `settings.database_url` (no connection is made yet)."""
    url = make_url(settings.database_url)
    dialect = dialect_for(settings.database_url)
    if dialect is SQLITE:
        return Database(_sqlite_engine(url.database), SQLITE)
    from authserver.store.postgresql import driver_pool

    sqlalchemy_size, driver_size = split_pool_size(settings.database_pool_size)
    connect_args = {
        "timeout": settings.database_connect_timeout,
        "command_timeout": 30,
        "server_settings": {"application_name": "authserver"},
    }
    engine = create_async_engine(
        url,
        hide_parameters=True,  # errors and logs must never carry hashes or digests
        pool_size=sqlalchemy_size,
        max_overflow=0,
        pool_timeout=settings.database_connect_timeout,
        pool_pre_ping=False,
        pool_recycle=RECYCLE_SECONDS,
        connect_args=connect_args,
    )

    def stale_sqlalchemy_pool() -> None:
        # No public API does this: it is what SQLAlchemy calls when one of its own is lost.
        engine.sync_engine.pool._invalidate(None, _checkin=False)  # type: ignore[arg-type]

    hot = driver_pool(
        engine.sync_engine,
        connect_args,
        size=driver_size,
        timeout=settings.database_connect_timeout,
        recycle=RECYCLE_SECONDS,
        on_lost=stale_sqlalchemy_pool,
    )

    @event.listens_for(engine.sync_engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        if context.is_disconnect:  # SQLAlchemy's pool lost one: so, likely, did ours
            hot.mark_stale()

    return Database(engine, dialect, hot)


def create_private_file(path: Path) -> None:
    """Create `path` (and its directory, 0700) readable by its owner only, whatever the umask,
    unless it exists. Review finding 8: the SQLite database holds password hashes, token digests
    and the encrypted signing keys; SQLite then creates its -wal, -shm and -journal files with
    the database file's own mode. An existing file keeps its mode."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def exposed_database_file(database_url: str) -> tuple[Path, int] | None:
    """SQLite: the database file and its mode if other users may access it (a file made by an
    older version, with the umask), else None."""
    database = make_url(database_url).database
    if dialect_for(database_url) is not SQLITE or database in (None, "", ":memory:"):
        return None
    assert database is not None
    try:
        mode = stat.S_IMODE(os.stat(database).st_mode)
    except FileNotFoundError:
        return None
    return (Path(database), mode) if mode & 0o077 else None


def _sqlite_engine(database: str | None) -> AsyncEngine:
    memory = not database or database == ":memory:"
    if not memory:
        assert database is not None
        create_private_file(Path(database))
    kwargs: dict[str, Any] = (
        {"poolclass": StaticPool}
        if memory
        else {"pool_size": 1, "max_overflow": 0, "pool_timeout": 30}
    )
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{database or ':memory:'}",
        hide_parameters=True,
        connect_args={"timeout": 5, "isolation_level": None},
        **kwargs,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine
