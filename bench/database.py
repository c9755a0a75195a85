"""The throwaway PostgreSQL database: created, found again after a crash, always dropped.

One maintenance connection does all of it, and also lists the backends serving the server so
that their CPU time can be read.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import asyncpg
from console import BenchError, log

DATABASE_PREFIX = "authserver_bench_"


class Postgres:
    """The maintenance connection, driven synchronously from the benchmark's main thread."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.loop = asyncio.new_event_loop()
        self.conn: Any = None

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coroutine)

    def connect(self) -> None:
        try:
            self.conn = self._run(asyncpg.connect(self.dsn, timeout=5))
        except (OSError, asyncpg.PostgresError) as exc:
            raise BenchError(f"PostgreSQL at {self.dsn} is unreachable: {exc!r}") from None

    def create_database(self, name: str) -> None:
        self._run(self.conn.execute(f'CREATE DATABASE "{name}"'))

    def drop_database(self, name: str) -> None:
        self._run(self.conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def database_names(self, prefix: str) -> list[str]:
        rows = self._run(
            self.conn.fetch(
                "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", prefix
            )
        )
        return [str(row["datname"]) for row in rows]

    def backend_pids(self, database: str) -> list[int]:
        rows = self._run(
            self.conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", database)
        )
        return [int(row["pid"]) for row in rows]

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self._run(self.conn.close())
        self.loop.close()


def throwaway_name() -> str:
    """authserver_bench_PID_HEX: the PID tells a later run whether its owner is still alive."""
    return f"{DATABASE_PREFIX}{os.getpid()}_{secrets.token_hex(3)}"


def sqlalchemy_url(dsn: str, database: str) -> str:
    base = dsn.rsplit("/", 1)[0]
    return base.replace("postgresql://", "postgresql+asyncpg://", 1) + "/" + database


def drop_orphans(postgres: Postgres) -> None:
    """Drop databases left by a benchmark that was killed (SIGKILL) before it could clean up:
    named authserver_bench_PID_…, with no process PID alive any more."""
    for name in postgres.database_names(DATABASE_PREFIX):
        pid = name.removeprefix(DATABASE_PREFIX).split("_", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            log(f"dropping {name}, left behind by an earlier benchmark")
            drop_database(postgres, name)


def drop_database(postgres: Postgres, name: str) -> None:
    try:
        postgres.drop_database(name)
        log(f"dropped database {name}")
    except Exception as exc:  # report, but never hide the original failure
        log(f"could not drop database {name}: {exc!r}; drop it by hand")
