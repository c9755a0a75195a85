"""The operator CLI (SPEC "Command line"): parse, call the functions the server uses, print.

Every failure exits non-zero with one short line; nothing here prints a private key, a password
or a secret other than the client secret `clients create` has just made.
"""

from __future__ import annotations

import asyncio
import copy
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from authserver import admin
from authserver.clients import GRANT_TYPES
from authserver.keys import KeyDecryptionError, NoSigningKey, ensure_signing_keys, load_kek
from authserver.passwords import make_passwords
from authserver.schema import SchemaOutOfDate, check_at_head, upgrade
from authserver.settings import ConfigError, Settings, load_settings
from authserver.store import clients as client_store
from authserver.store import keys as key_store
from authserver.store import users as user_store
from authserver.store.db import DATABASE_UNAVAILABLE, Database, open_database

T = TypeVar("T")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 UTC to the second, e.g. 2026-11-26T18:00:00Z."""
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """Turn every expected failure into `Error: <one line>` and exit status 1."""
    try:
        yield
    except (
        ConfigError,
        admin.AdminError,
        SchemaOutOfDate,
        KeyDecryptionError,
        NoSigningKey,
    ) as exc:
        raise click.ClickException(str(exc)) from None
    except DATABASE_UNAVAILABLE as exc:
        raise click.ClickException(
            f"database unavailable ({exc.__class__.__name__}); check DATABASE_URL"
        ) from None


def _settings() -> Settings:
    with _one_line_errors():
        return load_settings()


def _run(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Open the database (migrating the embedded SQLite default), run `work`, close it."""

    async def main() -> T:
        db = open_database(settings)
        try:
            if not settings.is_sqlite:
                await check_at_head(db)
            return await work(db)
        finally:
            await db.dispose()

    with _one_line_errors():
        if settings.is_sqlite:
            upgrade(settings.database_url)
        return asyncio.run(main())


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise click.ClickException("no password on standard input")
        return line.rstrip("\r\n")
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


def _now() -> datetime:
    return datetime.now(UTC)


@click.group()
@click.version_option(package_name="authserver")
def main() -> None:
    """authserver: an OAuth 2.0 authorization server."""


# --- serve and db -----------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
def serve(host: str, port: int, workers: int) -> None:
    """Serve HTTP. The embedded SQLite default migrates itself; PostgreSQL must be upgraded."""
    import uvicorn

    settings = _settings()

    async def prepare(db: Database) -> None:
        await ensure_signing_keys(db, settings, load_kek(settings), _now())

    _run(settings, prepare)
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["loggers"]["authserver"] = {
        "handlers": ["default"],
        "level": "INFO",
        "propagate": False,
    }
    log_config["formatters"]["default"]["fmt"] = LOG_FORMAT
    uvicorn.run(
        "authserver.app:app_from_environment",
        log_config=log_config,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=False,  # X-Forwarded-For is not trusted unless configured
        server_header=False,
        access_log=False,  # request logs must never carry tokens from query strings
        log_level="info",
        timeout_graceful_shutdown=10,
        # A worker imports SQLAlchemy, joserfc and cryptography before it can answer the
        # supervisor's ping: about 3 s on a loaded 2-core machine, past uvicorn's default 5 s.
        timeout_worker_healthcheck=30,
    )


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Bring the schema to the latest revision and make sure signing keys exist."""
    settings = _settings()
    with _one_line_errors():
        upgrade(settings.database_url)

    async def keys(db: Database) -> None:
        await ensure_signing_keys(db, settings, load_kek(settings), _now())

    _run(settings, keys)
    click.echo("database schema is up to date")


# --- users ------------------------------------------------------------------------------------


@main.group()
def users() -> None:
    """Resource owners who log in with the password grant."""


@users.command("create")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_create(name: str, password_stdin: bool) -> None:
    settings = _settings()
    password = _read_password(password_stdin)
    passwords = make_passwords(settings)
    user = _run(settings, lambda db: admin.create_user(db, passwords, name, password, _now()))
    click.echo(f"created user {user.username} (id {user.id})")


@users.command("list")
@click.option("--json", "as_json", is_flag=True)
def users_list(as_json: bool) -> None:
    rows = [
        {
            "username": user.username,
            "id": str(user.id),
            "disabled": user.disabled,
            "created_at": iso(user.created_at),
        }
        for user in _run(_settings(), user_store.list_users)
    ]
    _print_rows(rows, as_json, ["username", "id", "disabled", "created_at"])


@users.command("disable")
@click.argument("name")
def users_disable(name: str) -> None:
    """Disable a user and revoke all their refresh tokens."""
    _run(_settings(), lambda db: admin.disable_user(db, name, _now()))
    click.echo(f"disabled user {name}; their refresh tokens are revoked")


@users.command("set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_set_password(name: str, password_stdin: bool) -> None:
    """Change a user's password and revoke all their refresh tokens."""
    settings = _settings()
    password = _read_password(password_stdin)
    passwords = make_passwords(settings)
    _run(settings, lambda db: admin.set_password(db, passwords, name, password, _now()))
    click.echo(f"password changed for {name}; their refresh tokens are revoked")


# --- clients ----------------------------------------------------------------------------------


@main.group()
def clients() -> None:
    """Applications that request tokens."""


@clients.command("create")
@click.argument("name")
@click.option("--public", is_flag=True, help="No secret (token endpoint auth method none).")
@click.option("--grant", "grants", multiple=True, type=click.Choice(GRANT_TYPES))
@click.option("--scope", "scopes", multiple=True)
@click.option("--audience", "audiences", multiple=True)
@click.option("--introspect", is_flag=True, help="Allow the client to call /introspect.")
@click.option("--access-token-ttl", type=int, default=None, help="Shorter access-token TTL (s).")
@click.option("--json", "as_json", is_flag=True)
def clients_create(
    name: str,
    public: bool,
    grants: tuple[str, ...],
    scopes: tuple[str, ...],
    audiences: tuple[str, ...],
    introspect: bool,
    access_token_ttl: int | None,
    as_json: bool,
) -> None:
    """Register a client; a confidential client's secret is shown this once only."""
    settings = _settings()
    created = _run(
        settings,
        lambda db: admin.create_client(
            db,
            settings,
            name=name,
            public=public,
            grant_types=grants,
            scopes=scopes,
            audiences=audiences,
            can_introspect=introspect,
            access_token_ttl=access_token_ttl,
            now=_now(),
        ),
    )
    if as_json:
        click.echo(
            json.dumps({"client_id": created.client.client_id, "client_secret": created.secret})
        )
        return
    click.echo(f"client_id: {created.client.client_id}")
    if created.secret is not None:
        click.echo(f"client_secret: {created.secret}")


@clients.command("list")
@click.option("--json", "as_json", is_flag=True)
def clients_list(as_json: bool) -> None:
    rows = [
        {
            "client_id": client.client_id,
            "name": client.name,
            "public": client.is_public,
            "grants": sorted(client.grant_types),
            "scopes": list(client.scopes),
            "audiences": list(client.audiences),
            "introspect": client.can_introspect,
            "created_at": iso(client.created_at),
        }
        for client in _run(_settings(), client_store.list_clients)
    ]
    _print_rows(rows, as_json, ["client_id", "name", "public", "grants", "scopes", "created_at"])


@clients.command("delete")
@click.argument("client_id")
def clients_delete(client_id: str) -> None:
    """Delete a client and every refresh token it holds."""
    _run(_settings(), lambda db: admin.delete_client(db, client_id))
    click.echo(f"deleted client {client_id}")


# --- keys -------------------------------------------------------------------------------------


@main.group()
def keys() -> None:
    """Signing keys."""


@keys.command("list")
@click.option("--json", "as_json", is_flag=True)
def keys_list(as_json: bool) -> None:
    """Public facts about each key; never private material."""
    rows = [
        {
            "kid": key.kid,
            "state": key.state,
            "alg": key.alg,
            "size": key.size,
            "created_at": iso(key.created_at),
            "activated_at": iso(key.activated_at),
            "retired_at": iso(key.retired_at),
        }
        for key in _run(_settings(), key_store.list_keys)
    ]
    _print_rows(rows, as_json, ["kid", "state", "alg", "size", "created_at", "activated_at"])


def _print_rows(rows: list[dict[str, Any]], as_json: bool, columns: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    cells = [[_cell(row[column]) for column in columns] for row in rows]
    widths = [max([len(column)] + [len(c[i]) for c in cells]) for i, column in enumerate(columns)]
    click.echo(
        "  ".join(column.upper().ljust(widths[i]) for i, column in enumerate(columns)).rstrip()
    )
    for line in cells:
        click.echo("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(value) or "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
