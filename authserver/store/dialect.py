"""What differs between the two databases, in one place (every other store function is written
once, in SQLAlchemy Core, and asks the `Dialect` only what it cannot express the same way).

- SQLite (the embedded default) migrates itself at start-up; PostgreSQL is upgraded by
  `authserver db upgrade`.
- PostgreSQL runs one-statement work in autocommit; SQLite takes its writer lock (BEGIN
  IMMEDIATE) for any work that writes (see store/db.py).
- PostgreSQL can change a row and insert from it in one statement (a data-modifying CTE); SQLite
  cannot, so such work is two statements in one transaction there.
- PostgreSQL can wake other processes (NOTIFY); SQLite cannot, and they poll.
- PostgreSQL gives every row version a transaction id (`xmin`), which the refresh rotation uses
  to confirm, in its own statement, that the client it acts for has not changed since it was
  read (`row_versions`); SQLite has none, so its clients are read afresh on every request.
- `INSERT … ON CONFLICT` is spelled by each dialect's own `insert()`.
- On PostgreSQL, the hot path's statements (`Prepared`) are compiled once and run on the asyncpg
  connection itself, about a third of SQLAlchemy's per-statement cost (bench/README.md); so
  asyncpg's own errors are among those that mean "unavailable" or "a constraint refused it".

What is PostgreSQL's alone (asyncpg, the compiler of `Prepared`) lives in store/postgresql.py,
imported by `dialect_for` only for a PostgreSQL URL: a command on SQLite never loads asyncpg
(issue 15, guard rail 6; bench/README.md, "CLI start-up").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy import Table
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.sql import Executable

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql

    Insert: TypeAlias = sqlite.Insert | postgresql.Insert

Errors = tuple[type[BaseException], ...]

# Failures that mean "the database cannot be reached right now" (answered 503, not 500), on
# SQLAlchemy's path; each dialect adds its driver's own (`Dialect.unavailable`).
UNAVAILABLE: Errors = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,  # pool checkout
    sa_exc.DisconnectionError,
    ConnectionError,
    TimeoutError,
    OSError,
)


@dataclass(frozen=True)
class Dialect:
    name: str
    migrates_itself: bool  # the embedded default: `serve` and the CLI bring it to head
    autocommit_statements: bool  # single statements need no BEGIN/COMMIT round trips
    modifying_ctes: bool  # WITH x AS (UPDATE … RETURNING …) INSERT … SELECT FROM x
    notifies: bool  # LISTEN/NOTIFY between processes
    row_versions: bool  # xmin: a row's version, changed by every UPDATE
    insert: Callable[[Table], Insert]  # INSERT with ON CONFLICT DO NOTHING / DO UPDATE
    # The driver's own errors for a lost or unusable connection (the `Prepared` path).
    driver_disconnects: Errors
    # Failures that mean "the database cannot be reached right now" (answered 503, not 500).
    unavailable: Errors
    # A constraint refused a write (a foreign key to a row deleted meanwhile, a duplicate).
    integrity_errors: Errors


SQLITE = Dialect(
    name="sqlite",
    migrates_itself=True,
    autocommit_statements=False,
    modifying_ctes=False,
    notifies=False,
    row_versions=False,
    insert=sqlite.insert,
    driver_disconnects=(),
    unavailable=UNAVAILABLE,
    integrity_errors=(sa_exc.IntegrityError,),
)


def dialect_for(database_url: str) -> Dialect:
    if make_url(database_url).get_backend_name() == "sqlite":
        return SQLITE
    from authserver.store.postgresql import POSTGRESQL

    return POSTGRESQL


@dataclass
class Prepared:
    """A Core statement whose values are all named `bindparam`s, run on the hot path.

    PostgreSQL: compiled once to SQL with numbered parameters ($1 …; a name used twice is one
    parameter) and run on the driver with the values in that order. Every value must be one
    asyncpg takes as it is (str, bytes, int, bool, uuid.UUID, aware datetime), since no
    SQLAlchemy type processing happens on that path. SQLite: run through SQLAlchemy as usual.
    """

    statement: Executable
    _compiled: tuple[str, tuple[str, ...]] | None = field(default=None, repr=False)

    def postgresql(self, values: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """The SQL text and the positional arguments for `values`."""
        if self._compiled is None:
            from authserver.store.postgresql import compile_numbered

            self._compiled = compile_numbered(self.statement)
        sql, names = self._compiled
        return sql, [values[name] for name in names]
