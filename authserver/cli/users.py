"""`users create | list | disable | set-password`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from authserver.cli import common
from authserver.cli.output import iso, json_option, print_rows
from authserver.cli.passwords import read_password

if TYPE_CHECKING:
    from authserver.models import User
    from authserver.store.db import Database

_password_stdin = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input (one line) instead of a hidden prompt asked twice.",
)


@click.group()
def users() -> None:
    """Resource owners who log in with the password grant."""


@users.command("create")
@click.argument("name")
@_password_stdin
def users_create(name: str, password_stdin: bool) -> None:
    """Create a user who logs in with the password grant; prints `created user NAME (id UUID)`.

    NAME: 1-255 characters, no whitespace or control characters. The password: 8-1024
    characters, never an argument. The id is the `sub` of the user's access tokens.
    """
    from authserver import admin
    from authserver.clock import utc_now
    from authserver.login.passwords import make_passwords

    settings = common.load()
    common.require_database(settings)
    password = read_password(password_stdin)
    passwords = make_passwords(settings)

    async def work(db: Database) -> User:
        user = await admin.create_user(db, passwords, name, password, utc_now())
        await _audit(db, "user.created", user)
        return user

    user = common.run(settings, work)
    click.echo(f"created user {user.username} (id {user.id})")


@users.command("list")
@json_option("A JSON list instead of a table.")
def users_list(as_json: bool) -> None:
    """Every user: username, id, disabled, created_at."""
    from authserver.store import users as user_store

    rows = [
        {
            "username": user.username,
            "id": str(user.id),
            "disabled": user.disabled,
            "created_at": iso(user.created_at),
        }
        for user in common.run(common.load(), user_store.list_users)
    ]
    print_rows(rows, as_json, ["username", "id", "disabled", "created_at"])


@users.command("disable")
@click.argument("name")
def users_disable(name: str) -> None:
    """Disable a user and revoke all their refresh tokens."""
    from authserver import admin
    from authserver.clock import utc_now

    async def work(db: Database) -> User:
        user = await admin.disable_user(db, name, utc_now())
        await _audit(db, "user.disabled", user)
        return user

    common.run(common.load(), work)
    click.echo(f"disabled user {name}; their refresh tokens are revoked")


@users.command("set-password")
@click.argument("name")
@_password_stdin
def users_set_password(name: str, password_stdin: bool) -> None:
    """Change a user's password and revoke all their refresh tokens."""
    from authserver import admin
    from authserver.clock import utc_now
    from authserver.login.passwords import make_passwords

    settings = common.load()
    common.require_database(settings)
    password = read_password(password_stdin)
    passwords = make_passwords(settings)

    async def work(db: Database) -> User:
        user = await admin.set_password(db, passwords, name, password, utc_now())
        await _audit(db, "user.password_changed", user)
        return user

    common.run(settings, work)
    click.echo(f"password changed for {name}; their refresh tokens are revoked")


async def _audit(db: Database, event: str, user: User) -> None:
    from authserver.clock import utc_now
    from authserver.observability.audit import AuditEvent, operator, record

    entry = AuditEvent(event, "success", actor=operator(), subject=str(user.id))
    await record(db, entry, utc_now())
