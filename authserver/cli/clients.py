"""`clients create | list | show | update | rotate-secret | delete` (update and rotate-secret
live in cli/client_changes.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from authserver.cli import common
from authserver.cli.client_changes import clients_rotate_secret, clients_update
from authserver.cli.client_output import audit_client, client_fields, print_secret
from authserver.cli.output import json_option, print_fields, print_json, print_rows
from authserver.clients.grant_types import GRANT_TYPES

if TYPE_CHECKING:
    from authserver.admin import NewClient
    from authserver.models import Client
    from authserver.observability.audit import DetailValue
    from authserver.store.db import Database


@click.group()
def clients() -> None:
    """Applications that request tokens."""


@clients.command("create")
@click.argument("name")
@click.option(
    "--public",
    is_flag=True,
    help="No secret (token endpoint auth method none): a mobile or single-page app.",
)
@click.option(
    "--grant",
    "grants",
    multiple=True,
    type=click.Choice(GRANT_TYPES),
    help="A grant the client may use (repeatable). Default: password and refresh_token.",
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help="A scope the client may ask for (repeatable); must be in SCOPES when SCOPES is set.",
)
@click.option(
    "--audience",
    "audiences",
    multiple=True,
    help="`aud` of the client's access tokens (repeatable). Default: DEFAULT_AUDIENCE.",
)
@click.option(
    "--introspect",
    is_flag=True,
    help="Allow the client to call /introspect (a confidential client only).",
)
@click.option(
    "--access-token-ttl",
    type=int,
    default=None,
    help="A shorter access-token lifetime for this client, 1 to ACCESS_TOKEN_TTL seconds.",
)
@click.option(
    "--redirect-uri",
    "redirect_uris",
    multiple=True,
    help="Where /authorize may send the user back (repeatable; required by --grant "
    "authorization_code): https://..., http://127.0.0.1/... or http://[::1]/... (any port), or "
    "a private-use scheme such as com.example.app:/callback. Matched character for character.",
)
@click.option(
    "--consent",
    is_flag=True,
    help="Ask the user to approve the client's scopes at /authorize (a third-party app); the "
    "approval is remembered per user.",
)
@json_option('One JSON object {"client_id": ..., "client_secret": ...} (null for --public).')
def clients_create(
    name: str,
    public: bool,
    grants: tuple[str, ...],
    scopes: tuple[str, ...],
    audiences: tuple[str, ...],
    introspect: bool,
    access_token_ttl: int | None,
    redirect_uris: tuple[str, ...],
    consent: bool,
    as_json: bool,
) -> None:
    """Register a client; a confidential client's secret is shown this once only.

    Prints `client_id: ...` and, for a confidential client, `client_secret: ...`. `--public`
    with `client_credentials` or with `--introspect` is refused: both need a secret.
    `--grant authorization_code` needs at least one `--redirect-uri`; a URI that breaks the
    rules is refused with one line naming it.
    """
    from authserver import admin
    from authserver.clock import utc_now

    settings = common.load()

    async def work(db: Database) -> NewClient:
        created = await admin.create_client(
            db,
            settings,
            name=name,
            public=public,
            grant_types=grants,
            scopes=scopes,
            audiences=audiences,
            can_introspect=introspect,
            access_token_ttl=access_token_ttl,
            now=utc_now(),
            redirect_uris=redirect_uris,
            consent=consent,
        )
        client = created.client
        detail: dict[str, DetailValue] = {
            "name": client.name,
            "public": client.is_public,
            "grants": " ".join(sorted(client.grant_types)),
            "scopes": " ".join(client.scopes),
            "introspect": client.can_introspect,
            "redirect_uris": " ".join(client.redirect_uris),
            "consent": client.consent,
        }
        await audit_client(db, "client.created", client.client_id, detail)
        return created

    created = common.run(settings, work)
    print_secret(created.client.client_id, created.secret, as_json)


@clients.command("list")
@json_option("A JSON list, with audiences, introspect and consent too.")
def clients_list(as_json: bool) -> None:
    """Every client: client_id, name, public, grants, scopes, redirect URIs, created_at. Never
    a secret."""
    from authserver.store import clients as client_store

    rows = [
        client_fields(client) for client in common.run(common.load(), client_store.list_clients)
    ]
    columns = ["client_id", "name", "public", "grants", "scopes", "redirect_uris", "created_at"]
    print_rows(rows, as_json, columns)


@clients.command("show")
@click.argument("client_id")
@json_option("One JSON object with the same fields.")
def clients_show(client_id: str, as_json: bool) -> None:
    """One client: name, public, grants, scopes, audiences, introspect, its access-token TTL
    (none: ACCESS_TOKEN_TTL), created_at. Never a secret. Exit status 3 if there is no such
    client."""
    from authserver import admin

    async def work(db: Database) -> Client:
        return await admin.get_client(db, client_id)

    client = common.run(common.load(), work)
    print_fields({**client_fields(client), "access_token_ttl": client.access_token_ttl}, as_json)


clients.add_command(clients_update)
clients.add_command(clients_rotate_secret)


@clients.command("delete")
@click.argument("client_id")
@json_option('One JSON object {"client_id": ..., "deleted": true}.')
def clients_delete(client_id: str, as_json: bool) -> None:
    """Delete a client and every refresh token it holds. Exit status 3 if there is no such
    client."""
    from authserver import admin

    async def work(db: Database) -> None:
        await admin.delete_client(db, client_id)
        await audit_client(db, "client.deleted", client_id, {})

    common.run(common.load(), work)
    if as_json:
        print_json({"client_id": client_id, "deleted": True})
    else:
        click.echo(f"deleted client {client_id}")
