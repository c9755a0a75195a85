"""Throwaway PostgreSQL databases for tests, on the server named by AUTHSERVER_TEST_POSTGRES."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

POSTGRES_ENV = "AUTHSERVER_TEST_POSTGRES"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_server() -> str:
    """The maintenance database URL, or "off" (the SQLite half alone; refused in CI)."""
    return os.environ.get(POSTGRES_ENV, DEFAULT_POSTGRES)


@asynccontextmanager
async def throwaway_database(prefix: str) -> AsyncIterator[str]:
    """Create an empty database (SQLAlchemy asyncpg URL) and drop it afterwards, always.

    An unreachable server fails the test run: it is never a silent skip.
    """
    server = postgres_server()
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        conn = await asyncpg.connect(server, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL at {server} is unreachable ({exc!r}); set {POSTGRES_ENV}")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = server.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        conn = await asyncpg.connect(server, timeout=5)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
