"""`users create|list|disable|set-password`."""

from __future__ import annotations

import click

from authserver import admin
from authserver.cli import common
from authserver.passwords import make_passwords
from authserver.services import utc_now
from authserver.store import users as user_store


@click.group()
def users() -> None:
    """Resource owners who log in with the password grant."""


@users.command("create")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_create(name: str, password_stdin: bool) -> None:
    settings = common.load()
    password = common.read_password(password_stdin)
    passwords = make_passwords(settings)
    user = common.run(
        settings, lambda db: admin.create_user(db, passwords, name, password, utc_now())
    )
    click.echo(f"created user {user.username} (id {user.id})")


@users.command("list")
@click.option("--json", "as_json", is_flag=True)
def users_list(as_json: bool) -> None:
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
    common.run(common.load(), lambda db: admin.disable_user(db, name, utc_now()))
    click.echo(f"disabled user {name}; their refresh tokens are revoked")


@users.command("set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_set_password(name: str, password_stdin: bool) -> None:
    """Change a user's password and revoke all their refresh tokens."""
    settings = common.load()
    password = common.read_password(password_stdin)
    passwords = make_passwords(settings)
    common.run(settings, lambda db: admin.set_password(db, passwords, name, password, utc_now()))
    click.echo(f"password changed for {name}; their refresh tokens are revoked")
