"""`tokens revoke --user NAME | purge`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from authserver.cli import common
from authserver.cli.output import json_option, print_json

if TYPE_CHECKING:
    from authserver.store.db import Database
    from authserver.store.purge import PurgeCounts

# store/purge.py's DEFAULT_BATCH_SIZE, written here so that `--help` need not import the store
# (tests/unit/test_cli_output.py keeps the two equal).
PURGE_BATCH_SIZE = 1000


@click.group()
def tokens() -> None:
    """Refresh tokens and revoked access tokens."""


@tokens.command("revoke")
@click.option("--user", "username", required=True, help="Log this user out everywhere.")
@json_option('One JSON object {"username": ..., "sessions_revoked": N}.')
def tokens_revoke(username: str, as_json: bool) -> None:
    """Revoke every refresh-token family (session) of a user, at every client.

    Prints `revoked N sessions of user NAME`; the user can log in again (compare `users
    disable`).

    Their access tokens carry the family as `sid`, so introspection reports them inactive too;
    resource servers that verify offline accept them until they expire (ACCESS_TOKEN_TTL).
    Exit status 3 if there is no such user.
    """
    from authserver.admin import NotFound
    from authserver.clock import utc_now
    from authserver.observability.audit import operator
    from authserver.store import revocation as revocation_store
    from authserver.tokens.revocation import Revocation, token_revoked

    async def work(db: Database) -> int:
        count = await revocation_store.revoke_user_sessions(db, username, utc_now())
        if count is None:
            raise NotFound(f"no such user: {username!r}")
        revocation = Revocation("user_sessions", username, count)
        await token_revoked(db, revocation, actor=operator(), ip=None, now=utc_now())
        return count

    count = common.run(common.load(), work)
    if as_json:
        print_json({"username": username, "sessions_revoked": count})
        return
    sessions = "session" if count == 1 else "sessions"
    click.echo(f"revoked {count} {sessions} of user {username}")


@tokens.command("purge")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    default=PURGE_BATCH_SIZE,
    show_default=True,
    help="Rows per DELETE; each batch is its own short transaction.",
)
@json_option('One JSON object {"TABLE": N deleted, ...}.')
def tokens_purge(batch_size: int, as_json: bool) -> None:
    """Delete expired and long-revoked rows; safe to run while the server is serving.

    Also stale login counters, and audit events older than AUDIT_RETENTION_DAYS. Prints one
    `TABLE: N deleted` line per table. Run it on a schedule, e.g. hourly.
    """
    from authserver.clock import utc_now
    from authserver.observability.audit import AuditEvent, operator, record
    from authserver.store.purge import PurgePolicy, purge

    settings = common.load()
    policy = PurgePolicy.from_settings(settings)

    async def work(db: Database) -> PurgeCounts:
        counts = await purge(db, policy, utc_now(), batch_size=batch_size)
        event = AuditEvent(
            "tokens.purged",
            "success",
            actor=operator(),
            detail={table: deleted for table, deleted in counts.items()},
        )
        await record(db, event, utc_now())
        return counts

    counts = common.run(settings, work)
    if as_json:
        print_json(dict(counts.items()))
        return
    for table, deleted in counts.items():
        click.echo(f"{table}: {deleted} deleted")
