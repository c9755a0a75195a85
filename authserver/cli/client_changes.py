"""`clients update | rotate-secret`: changing a registered client (its fields, its secret)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from authserver.cli import common
from authserver.cli.client_output import audit_client, client_fields, detail_value, print_secret
from authserver.cli.output import json_option, print_json
from authserver.clients.grant_types import GRANT_TYPES

if TYPE_CHECKING:
    from authserver.models import Client
    from authserver.store.db import Database


@click.command("update")
@click.argument("client_id")
@click.option("--name", default=None, help="A new display name.")
@click.option(
    "--grant",
    "grants",
    multiple=True,
    type=click.Choice(GRANT_TYPES),
    help="The grants the client may use from now on (repeatable; replaces them all). Without "
    "`refresh_token`, its refresh tokens stop working; without `password`, no new logins.",
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help="The scopes the client may ask for from now on (repeatable; replaces them all).",
)
@click.option(
    "--audience",
    "audiences",
    multiple=True,
    help="`aud` of the client's new access tokens (repeatable; replaces them all).",
)
@click.option(
    "--introspect/--no-introspect",
    default=None,
    help="Allow, or no longer allow, the client to call /introspect.",
)
@click.option(
    "--access-token-ttl",
    type=click.IntRange(0),
    default=None,
    help="The client's access-token lifetime, 1 to ACCESS_TOKEN_TTL seconds; 0: none of its "
    "own (ACCESS_TOKEN_TTL).",
)
@click.option(
    "--redirect-uri",
    "redirect_uris",
    multiple=True,
    help="Where /authorize may send the user back from now on (repeatable; replaces them all; "
    "the rules of `clients create`). A client with the authorization_code grant keeps at "
    "least one.",
)
@click.option(
    "--consent/--no-consent",
    default=None,
    help="Ask, or no longer ask, the user to approve the client's scopes at /authorize.",
)
@json_option("The client afterwards, as one JSON object (as `clients show --json`).")
def clients_update(
    client_id: str,
    name: str | None,
    grants: tuple[str, ...],
    scopes: tuple[str, ...],
    audiences: tuple[str, ...],
    introspect: bool | None,
    access_token_ttl: int | None,
    redirect_uris: tuple[str, ...],
    consent: bool | None,
    as_json: bool,
) -> None:
    """Change a client: each option given replaces that field, checked as `clients create`
    checks it (with the client's other fields as they are); the others stay. A public client
    stays public, a confidential one keeps its secret (`rotate-secret` changes it). Takes effect
    at the client's next request; access tokens already issued keep their scopes and audiences
    until they expire. Exit status 3 if there is no such client."""
    from authserver import admin
    from authserver.store.clients import ClientUpdate

    change = ClientUpdate(
        name=name,
        grant_types=frozenset(grants) if grants else None,
        scopes=tuple(dict.fromkeys(scopes)) if scopes else None,
        audiences=tuple(dict.fromkeys(audiences)) if audiences else None,
        can_introspect=introspect,
        access_token_ttl=access_token_ttl,
        redirect_uris=tuple(dict.fromkeys(redirect_uris)) if redirect_uris else None,
        consent=consent,
    )
    if not change.values():
        raise click.UsageError("nothing to change: give at least one option")
    settings = common.load()

    async def work(db: Database) -> Client:
        client = await admin.update_client(db, settings, client_id, change)
        detail = {column: detail_value(value) for column, value in change.values().items()}
        await audit_client(db, "client.updated", client_id, detail)
        return client

    client = common.run(settings, work)
    fields = {**client_fields(client), "access_token_ttl": client.access_token_ttl}
    if as_json:
        print_json(fields)
    else:
        click.echo(f"updated client {client_id}: {', '.join(change.values())}")


@click.command("rotate-secret")
@click.argument("client_id")
@click.option(
    "--revoke-sessions",
    is_flag=True,
    help="Also revoke every live login (refresh-token family) at the client: for a secret "
    "that leaked together with refresh tokens.",
)
@json_option('One JSON object {"client_id": ..., "client_secret": ..., "sessions_revoked": N}.')
def clients_rotate_secret(client_id: str, revoke_sessions: bool, as_json: bool) -> None:
    """Give a confidential client a new secret, shown this once only (`client_id: ...`,
    `client_secret: ...`, as `clients create` prints them). The old secret stops working at
    once: deploy the new one to the client first thing.

    The client's live refresh tokens stay valid: a refresh needs the client's secret, so from
    now on only a holder of the new secret can use them, and the client's users stay logged
    in. `--revoke-sessions` ends them too. Exit status 3 if there is no such client; a public
    client has no secret and is refused.
    """
    from authserver import admin
    from authserver.clock import utc_now

    async def work(db: Database) -> tuple[str, int]:
        secret, revoked = await admin.rotate_client_secret(
            db, client_id, revoke_sessions=revoke_sessions, now=utc_now()
        )
        await audit_client(db, "client.secret_rotated", client_id, {"sessions_revoked": revoked})
        return secret, revoked

    secret, revoked = common.run(common.load(), work)
    print_secret(client_id, secret, as_json, {"sessions_revoked": revoked})
    if not as_json and revoke_sessions:
        sessions = "session" if revoked == 1 else "sessions"
        click.echo(f"revoked {revoked} {sessions} of client {client_id}", err=True)
