"""`serve` and `db upgrade`: the two commands that may create a database and bring its schema
to the head revision (every other command refuses to; cli/common.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from authserver.cli import common
from authserver.cli.output import json_option, print_json

if TYPE_CHECKING:
    from authserver.settings import Settings
    from authserver.store.db import Database


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port."
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes (uvicorn); one per core.",
)
def serve(host: str, port: int, workers: int) -> None:
    """Serve HTTP. The embedded SQLite default migrates itself; PostgreSQL must be upgraded.

    Makes sure a `current` and a `next` signing key exist before serving. The access log never
    has a query string, token or secret.

    SIGTERM (or Ctrl-C) stops accepting connections, lets the requests in flight finish (up to
    10 s), closes the database pool and exits 0.
    """
    from authserver.cli.serving import announce_in_log, run_server
    from authserver.store.dialect import dialect_for
    from authserver.store.location import database_label

    settings = common.load(announce=False)
    announce_in_log(settings, database_label(settings.database_url))
    _ensure_signing_keys(settings, migrate=dialect_for(settings.database_url).migrates_itself)
    run_server(settings, host, port, workers)


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@json_option('One JSON object {"revision": ...}: the schema revision the database is now at.')
def db_upgrade(as_json: bool) -> None:
    """Bring the schema to the latest revision and make sure signing keys exist.

    Decrypts every stored signing key first, so a wrong KEY_ENCRYPTION_KEY stops it before
    anything is written. Concurrent runs take turns (a PostgreSQL advisory lock, a file lock on
    SQLite). Prints `database schema is up to date`.
    """
    settings = common.load()
    revision = _ensure_signing_keys(settings, migrate=True)
    if as_json:
        print_json({"revision": revision})
    else:
        click.echo("database schema is up to date")


def _ensure_signing_keys(settings: Settings, *, migrate: bool) -> str:
    """SPEC: `db upgrade` and `serve` each make sure a `current` and a `next` key exist (and a
    wrong KEY_ENCRYPTION_KEY stops them before anything is served); the schema's revision."""
    from authserver.clock import utc_now
    from authserver.keys.bootstrap import ensure_signing_keys
    from authserver.keys.kek import load_keks
    from authserver.store.schema import head_revision

    async def ensure(db: Database) -> str:
        await ensure_signing_keys(db, settings, load_keks(settings), utc_now())
        return head_revision()

    return common.run_migrating(settings, ensure, migrate=migrate)
