"""What every command shares: settings, the database run, one-line errors, output."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from authserver.admin import AdminError
from authserver.keys.kek import KeyDecryptionError
from authserver.keys.lifecycle import KeyLifecycleError
from authserver.keys.ring import NoSigningKey
from authserver.settings import ConfigError, Settings, load_settings
from authserver.store.db import DATABASE_UNAVAILABLE, Database, open_database
from authserver.store.dialect import dialect_for
from authserver.store.keys import KeyStateConflict
from authserver.store.migrate import upgrade
from authserver.store.schema import SchemaOutOfDate, check_at_head

T = TypeVar("T")


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 UTC to the second, e.g. 2026-11-26T18:00:00Z."""
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn every expected failure into `Error: <one line>` and exit status 1."""
    try:
        yield
    except (
        ConfigError,
        AdminError,
        SchemaOutOfDate,
        KeyDecryptionError,
        NoSigningKey,
        KeyLifecycleError,
        KeyStateConflict,
    ) as exc:
        raise click.ClickException(str(exc)) from None
    except DATABASE_UNAVAILABLE as exc:
        raise click.ClickException(
            f"database unavailable ({exc.__class__.__name__}); check DATABASE_URL"
        ) from None


def load() -> Settings:
    with one_line_errors():
        return load_settings()


def run(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Open the database (migrating the embedded SQLite default), run `work`, close it."""
    dialect = dialect_for(settings.database_url)

    async def main() -> T:
        db = open_database(settings)
        try:
            if not dialect.migrates_itself:
                await check_at_head(db)
            return await work(db)
        finally:
            await db.dispose()

    with one_line_errors():
        if dialect.migrates_itself:
            upgrade(settings.database_url)
        return asyncio.run(main())


def read_password(password_stdin: bool) -> str:
    if password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise click.ClickException("no password on standard input")
        return line.rstrip("\r\n")
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


def print_rows(rows: list[dict[str, Any]], as_json: bool, columns: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    cells = [[cell(row[column]) for column in columns] for row in rows]
    widths = [max([len(column)] + [len(c[i]) for c in cells]) for i, column in enumerate(columns)]
    click.echo(
        "  ".join(column.upper().ljust(widths[i]) for i, column in enumerate(columns)).rstrip()
    )
    for line in cells:
        click.echo("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(value) or "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
