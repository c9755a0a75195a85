"""`clients create|list|delete`."""

from __future__ import annotations

import json

import click

from authserver import admin
from authserver.cli import common
from authserver.clients.policy import GRANT_TYPES
from authserver.observability.audit import AuditEvent, DetailValue, operator, record
from authserver.services import utc_now
from authserver.store import clients as client_store
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
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='One JSON object {"client_id": ..., "client_secret": ...} (null for --public).',
)
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
    settings = common.load()

    async def work(db: Database) -> admin.NewClient:
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
        event = AuditEvent(
            "client.created",
            "success",
            actor=operator(),
            client_id=client.client_id,
            subject=client.client_id,
            detail=detail,
        )
        await record(db, event, utc_now())
        return created

    created = common.run(settings, work)
    if as_json:
        click.echo(
            json.dumps({"client_id": created.client.client_id, "client_secret": created.secret})
        )
        return
    click.echo(f"client_id: {created.client.client_id}")
    if created.secret is not None:
        click.echo(f"client_secret: {created.secret}")


@clients.command("list")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="A JSON list, with audiences, introspect and consent too.",
)
def clients_list(as_json: bool) -> None:
    """Every client: client_id, name, public, grants, scopes, redirect URIs, created_at. Never
    a secret."""
    rows = [
        {
            "client_id": client.client_id,
            "name": client.name,
            "public": client.is_public,
            "grants": sorted(client.grant_types),
            "scopes": list(client.scopes),
            "audiences": list(client.audiences),
            "introspect": client.can_introspect,
            "redirect_uris": list(client.redirect_uris),
            "consent": client.consent,
            "created_at": common.iso(client.created_at),
        }
        for client in common.run(common.load(), client_store.list_clients)
    ]
    columns = ["client_id", "name", "public", "grants", "scopes", "redirect_uris", "created_at"]
    common.print_rows(rows, as_json, columns)


@clients.command("delete")
@click.argument("client_id")
def clients_delete(client_id: str) -> None:
    """Delete a client and every refresh token it holds."""

    async def work(db: Database) -> None:
        await admin.delete_client(db, client_id)
        event = AuditEvent(
            "client.deleted", "success", actor=operator(), client_id=client_id, subject=client_id
        )
        await record(db, event, utc_now())

    common.run(common.load(), work)
    click.echo(f"deleted client {client_id}")
