"""What every command does before its own work: read the settings (and say which database and
issuer they name), and run its work on a database that exists and is at the head revision.

Only `serve` and `db upgrade` may create a database or migrate one (`run_migrating`); every other
command refuses a missing database with one line (`run`), so that a command run in the wrong
directory cannot write into a brand-new empty database and report success.

Heavy libraries (SQLAlchemy, pydantic) are imported inside these functions, when a command
runs, never when `authserver --help` merely lists the commands.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from authserver.cli.exits import CliError, expected_errors
from authserver.cli.report import current_report

if TYPE_CHECKING:
    from authserver.settings import Settings
    from authserver.store.db import Database

T = TypeVar("T")


def load(*, announce: bool = True) -> Settings:
    """The settings (option > environment > file > default), announced on stderr."""
    from authserver.settings import load_settings

    with expected_errors():
        settings = load_settings()
    if announce:
        from authserver.store.location import database_label

        current_report().announce(database_label(settings.database_url), settings.issuer)
    return settings


def require_database(settings: Settings) -> None:
    """Refuse an SQLite database that does not exist (opening it would create it). Commands
    that prompt for a password call this first, so nobody types one for nothing."""
    from authserver.store.location import database_label, missing_sqlite_file

    if missing_sqlite_file(settings.database_url) is not None:
        raise CliError(
            f"database {database_label(settings.database_url)} does not exist: run "
            "`authserver db upgrade` (or `serve`) to create it, or name the right one with "
            "--database-url or --config (or run from the server's directory)"
        )


def run(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run `work` on the database, which must exist and be at the head revision."""
    require_database(settings)
    return _run(settings, work)


def run_migrating(
    settings: Settings, work: Callable[[Database], Awaitable[T]], *, migrate: bool
) -> T:
    """`serve` and `db upgrade`: bring the schema to head first when `migrate` (creating an
    SQLite database that does not exist yet), then run `work` as `run` does."""
    if migrate:
        from authserver.store.migrate import upgrade

        with expected_errors():
            upgrade(settings.database_url)
    return _run(settings, work)


def _run(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    import asyncio

    from authserver.store.db import open_database
    from authserver.store.schema import check_at_head

    async def main() -> T:
        db = open_database(settings)
        try:
            await check_at_head(db)
            return await work(db)
        finally:
            await db.dispose()

    with expected_errors():
        return asyncio.run(main())
