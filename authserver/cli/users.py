"""`users create|list|disable|set-password`."""

from __future__ import annotations

import click

from authserver import admin
from authserver.cli import common
from authserver.login.passwords import make_passwords
from authserver.models import User
from authserver.observability.audit import AuditEvent, operator, record
from authserver.services import utc_now
from authserver.store import users as user_store
from authserver.store.db import Database


@click.group()
def users() -> None:
    """Resource owners who log in with the password grant."""


@users.command("create")
@click.argument("name")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input (one line) instead of a hidden prompt asked twice.",
)
def users_create(name: str, password_stdin: bool) -> None:
    """Create a user who logs in with the password grant; prints `created user NAME (id UUID)`.

    NAME: 1-255 characters, no whitespace or control characters. The password: 8-1024
    characters, never an argument. The id is the `sub` of the user's access tokens.
    """
    settings = common.load()
    password = common.read_password(password_stdin)
    passwords = make_passwords(settings)

    async def work(db: Database) -> User:
        user = await admin.create_user(db, passwords, name, password, utc_now())
        await _audit(db, "user.created", user)
        return user

    user = common.run(settings, work)
    click.echo(f"created user {user.username} (id {user.id})")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON list instead of a table.")
def users_list(as_json: bool) -> None:
    """Every user: username, id, disabled, created_at."""
    rows = [
        {
            "username": user.username,
            "id": str(user.id),
            "disabled": user.disabled,
            "created_at": common.iso(user.created_at),
        }
        for user in common.run(common.load(), user_store.list_users)
    ]
    common.print_rows(rows, as_json, ["username", "id", "disabled", "created_at"])


@users.command("disable")
@click.argument("name")
def users_disable(name: str) -> None:
    """Disable a user and revoke all their refresh tokens."""

    async def work(db: Database) -> None:
        await _audit(db, "user.disabled", await admin.disable_user(db, name, utc_now()))

    common.run(common.load(), work)
    click.echo(f"disabled user {name}; their refresh tokens are revoked")


@users.command("set-password")
@click.argument("name")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input (one line) instead of a hidden prompt asked twice.",
)
def users_set_password(name: str, password_stdin: bool) -> None:
    """Change a user's password and revoke all their refresh tokens."""
    settings = common.load()
    password = common.read_password(password_stdin)
    passwords = make_passwords(settings)

    async def work(db: Database) -> None:
        user = await admin.set_password(db, passwords, name, password, utc_now())
        await _audit(db, "user.password_changed", user)

    common.run(settings, work)
    click.echo(f"password changed for {name}; their refresh tokens are revoked")


async def _audit(db: Database, event: str, user: User) -> None:
    entry = AuditEvent(event, "success", actor=operator(), subject=str(user.id))
    await record(db, entry, utc_now())
