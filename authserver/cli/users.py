"""`users create | list | show | disable | enable | set-password | unlock | delete`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from authserver.cli import common
from authserver.cli.output import iso, json_option, print_fields, print_json, print_rows
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
@json_option('One JSON object {"username": ..., "id": ...}.')
def users_create(name: str, password_stdin: bool, as_json: bool) -> None:
    """Create a user who logs in with the password grant; prints `created user NAME (id UUID)`.

    NAME: 1-255 characters, no whitespace or control characters. The password: 8-1024
    characters, never an argument. The id is the `sub` of the user's access tokens. Exit
    status 4 if the name is taken.
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
    if as_json:
        print_json({"username": user.username, "id": str(user.id)})
    else:
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


@users.command("show")
@click.argument("name")
@json_option("One JSON object with the same fields.")
def users_show(name: str, as_json: bool) -> None:
    """One user: id, disabled, when created and when the password last changed, how many
    sessions (refresh-token families) are live, and whether logins are locked: the username's
    lock (`locked_until`, from every address but the user's known ones) and how many of the
    user's known addresses are locked. Exit status 3 if there is no such user."""
    from authserver import admin
    from authserver.clock import utc_now
    from authserver.store import login_locks
    from authserver.store import users as user_store

    async def work(db: Database) -> dict[str, Any]:
        now = utc_now()
        user = await admin.get_user(db, name)
        locks = await login_locks.lock_state(db, name, now)
        return {
            "username": user.username,
            "id": str(user.id),
            "disabled": user.disabled,
            "created_at": iso(user.created_at),
            "password_changed_at": iso(user.password_changed_at),
            "sessions": await user_store.count_sessions(db, user.id, now),
            "locked_until": iso(locks.locked_until),
            "locked_known_ips": locks.locked_known_ips,
        }

    print_fields(common.run(common.load(), work), as_json)


@users.command("disable")
@click.argument("name")
@json_option('One JSON object {"username": ..., "id": ..., "disabled": true}.')
def users_disable(name: str, as_json: bool) -> None:
    """Disable a user and revoke all their refresh tokens (`users enable` lets them log in
    again). Exit status 3 if there is no such user."""
    from authserver import admin
    from authserver.clock import utc_now

    async def work(db: Database) -> User:
        user = await admin.disable_user(db, name, utc_now())
        await _audit(db, "user.disabled", user)
        return user

    user = common.run(common.load(), work)
    if as_json:
        print_json({"username": user.username, "id": str(user.id), "disabled": True})
    else:
        click.echo(f"disabled user {name}; their refresh tokens are revoked")


@users.command("enable")
@click.argument("name")
@json_option('One JSON object {"username": ..., "id": ..., "disabled": false}.')
def users_enable(name: str, as_json: bool) -> None:
    """Let a disabled user log in again. The sessions that ended when they were disabled stay
    ended. Exit status 3 if there is no such user."""
    from authserver import admin

    async def work(db: Database) -> User:
        user = await admin.enable_user(db, name)
        await _audit(db, "user.enabled", user)
        return user

    user = common.run(common.load(), work)
    if as_json:
        print_json({"username": user.username, "id": str(user.id), "disabled": False})
    else:
        click.echo(f"enabled user {name}; they can log in again")


@users.command("set-password")
@click.argument("name")
@_password_stdin
@json_option('One JSON object {"username": ..., "id": ..., "password_changed_at": ...}.')
def users_set_password(name: str, password_stdin: bool, as_json: bool) -> None:
    """Change a user's password and revoke all their refresh tokens. Exit status 3 if there is
    no such user."""
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

    user = common.run(settings, work)
    if as_json:
        print_json(
            {
                "username": user.username,
                "id": str(user.id),
                "password_changed_at": iso(user.password_changed_at),
            }
        )
    else:
        click.echo(f"password changed for {name}; their refresh tokens are revoked")


@users.command("unlock")
@click.argument("name")
@json_option('One JSON object {"username": ..., "id": ..., "counters_cleared": N}.')
def users_unlock(name: str, as_json: bool) -> None:
    """Lift a user's login locks at once: the username's failure counter, and its counters at
    the user's known addresses. The next attempt starts afresh (LOGIN_MAX_FAILURES tries, no
    escalation). A block of a whole client address (LOGIN_IP_MAX_FAILURES) is not the user's
    and stays. Exit status 3 if there is no such user."""
    from authserver import admin
    from authserver.store import login_locks

    async def work(db: Database) -> tuple[User, int]:
        user = await admin.get_user(db, name)
        cleared = await login_locks.unlock(db, name)
        await _audit(db, "user.unlocked", user, {"counters": cleared})
        return user, cleared

    user, cleared = common.run(common.load(), work)
    if as_json:
        print_json({"username": user.username, "id": str(user.id), "counters_cleared": cleared})
    elif cleared:
        counters = "counter" if cleared == 1 else "counters"
        click.echo(f"unlocked user {name}: {cleared} login-failure {counters} cleared")
    else:
        click.echo(f"unlocked user {name}: there was no login-failure counter to clear")


@users.command("delete")
@click.argument("name")
@json_option('One JSON object {"username": ..., "id": ..., "deleted": true}.')
def users_delete(name: str, as_json: bool) -> None:
    """Delete a user, every session (refresh-token family) of theirs, and the login-limit rows
    kept under their name (a user created later with the same name starts afresh). Access
    tokens already issued stay valid at offline resource servers until they expire
    (ACCESS_TOKEN_TTL); introspection reports them inactive at once. The audit trail keeps
    the user's events. Exit status 3 if there is no such user."""
    from authserver import admin

    async def work(db: Database) -> User:
        user = await admin.delete_user(db, name)
        await _audit(db, "user.deleted", user, {"username": user.username})
        return user

    user = common.run(common.load(), work)
    if as_json:
        print_json({"username": user.username, "id": str(user.id), "deleted": True})
    else:
        click.echo(f"deleted user {name} (id {user.id}); their sessions are gone")


async def _audit(
    db: Database, event: str, user: User, detail: dict[str, str | int] | None = None
) -> None:
    from authserver.clock import utc_now
    from authserver.observability.audit import AuditEvent, operator, record

    entry = AuditEvent(
        event, "success", actor=operator(), subject=str(user.id), detail=detail or {}
    )
    await record(db, entry, utc_now())
