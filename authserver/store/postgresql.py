"""What only PostgreSQL needs: asyncpg (its errors, its LISTEN) and statements compiled for it.
Imported through `dialect_for` (store/dialect.py) for a PostgreSQL URL, never for SQLite, so
that a command on the embedded default does not load asyncpg (issue 15, guard rail 6)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, cast

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

from authserver.store.dialect import UNAVAILABLE, Dialect, Errors
from authserver.store.driver_pool import DriverPool

# asyncpg's own errors for a lost or unusable connection (raised on the `Prepared` path).
DRIVER_DISCONNECTS: Errors = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    ConnectionError,
    OSError,
)

POSTGRESQL = Dialect(
    name="postgresql",
    migrates_itself=False,
    autocommit_statements=True,
    modifying_ctes=True,
    notifies=True,
    row_versions=True,
    insert=postgresql.insert,
    driver_disconnects=DRIVER_DISCONNECTS,
    unavailable=(*DRIVER_DISCONNECTS, *UNAVAILABLE),
    # from SQLAlchemy, or from asyncpg itself on the `Prepared` path (`Database.fetch_row`)
    integrity_errors=(sa_exc.IntegrityError, asyncpg.exceptions.IntegrityConstraintViolationError),
)

# What a LISTEN connection (`listen`) may raise besides an unreachable database.
LISTEN_FAILURES: Errors = (*POSTGRESQL.unavailable, asyncpg.PostgresError)

_ASYNCPG = PGDialect_asyncpg()  # type: ignore[no-untyped-call]


def driver_pool(
    engine: Engine,
    connect_args: dict[str, Any],
    *,
    size: int,
    timeout: float,
    recycle: float,
    on_lost: Callable[[], None],
) -> DriverPool:
    """The hot path's pool (store/driver_pool.py): asyncpg connections made as the engine
    makes its own, from the same URL (SQLAlchemy's dialect turns it into asyncpg's arguments,
    query parameters such as `ssl` included) and with the same `connect_args`."""
    _args, url_args = engine.dialect.create_connect_args(engine.url)
    url_args.pop("prepared_statement_name_func", None)
    cache_size = url_args.pop("prepared_statement_cache_size", 100)
    arguments = {**url_args, "statement_cache_size": cache_size, **connect_args}

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(**arguments)

    return DriverPool(connect, size=size, timeout=timeout, recycle=recycle, on_lost=on_lost)


def compile_numbered(statement: Executable) -> tuple[str, tuple[str, ...]]:
    """`statement` as asyncpg runs it: SQL with numbered parameters ($1 …) and the names of the
    values in that order (see `Prepared`)."""
    compiled = cast(SQLCompiler, cast(ClauseElement, statement).compile(dialect=_ASYNCPG))
    return str(compiled), tuple(compiled.positiontup or ())


async def listen(
    database_url: str, channel: str, connect_timeout: float, on_change: Callable[[], None]
) -> None:
    """On a connection of its own, LISTEN on `channel` and call `on_change` for every
    notification committed anywhere (and once at the start, to catch up on what changed while
    not listening). Returns when the connection is lost; raises LISTEN_FAILURES when it cannot
    be made."""
    url = make_url(database_url).set(drivername="postgresql")
    connection = await asyncpg.connect(
        url.render_as_string(hide_password=False),
        timeout=connect_timeout,
        server_settings={"application_name": "authserver-keys"},
    )
    try:
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _conn: lost.set())
        await connection.add_listener(channel, lambda *_args: on_change())
        on_change()
        await lost.wait()
    finally:
        if not connection.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), timeout=2)
