"""`clients create | list | show | update | rotate-secret | delete`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from authserver.cli import common
from authserver.cli.output import iso, json_option, print_fields, print_json, print_rows
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
        await _audit(db, "client.created", client.client_id, detail)
        return created

    created = common.run(settings, work)
    _print_secret(created.client.client_id, created.secret, as_json)


@clients.command("list")
@json_option("A JSON list, with audiences, introspect and consent too.")
def clients_list(as_json: bool) -> None:
    """Every client: client_id, name, public, grants, scopes, redirect URIs, created_at. Never
    a secret."""
    from authserver.store import clients as client_store

    rows = [_fields(client) for client in common.run(common.load(), client_store.list_clients)]
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
    print_fields({**_fields(client), "access_token_ttl": client.access_token_ttl}, as_json)


@clients.command("update")
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
        detail = {column: _detail(value) for column, value in change.values().items()}
        await _audit(db, "client.updated", client_id, detail)
        return client

    client = common.run(settings, work)
    fields = {**_fields(client), "access_token_ttl": client.access_token_ttl}
    if as_json:
        print_json(fields)
    else:
        click.echo(f"updated client {client_id}: {', '.join(change.values())}")


@clients.command("rotate-secret")
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
        await _audit(db, "client.secret_rotated", client_id, {"sessions_revoked": revoked})
        return secret, revoked

    secret, revoked = common.run(common.load(), work)
    _print_secret(client_id, secret, as_json, {"sessions_revoked": revoked})
    if not as_json and revoke_sessions:
        sessions = "session" if revoked == 1 else "sessions"
        click.echo(f"revoked {revoked} {sessions} of client {client_id}", err=True)


@clients.command("delete")
@click.argument("client_id")
@json_option('One JSON object {"client_id": ..., "deleted": true}.')
def clients_delete(client_id: str, as_json: bool) -> None:
    """Delete a client and every refresh token it holds. Exit status 3 if there is no such
    client."""
    from authserver import admin

    async def work(db: Database) -> None:
        await admin.delete_client(db, client_id)
        await _audit(db, "client.deleted", client_id, {})

    common.run(common.load(), work)
    if as_json:
        print_json({"client_id": client_id, "deleted": True})
    else:
        click.echo(f"deleted client {client_id}")


def _fields(client: Client) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "public": client.is_public,
        "grants": sorted(client.grant_types),
        "scopes": list(client.scopes),
        "audiences": list(client.audiences),
        "introspect": client.can_introspect,
        "redirect_uris": list(client.redirect_uris),
        "consent": client.consent,
        "created_at": iso(client.created_at),
    }


def _print_secret(
    client_id: str, secret: str | None, as_json: bool, extra: dict[str, int] | None = None
) -> None:
    """SPEC: `client_id: …` and, if confidential, `client_secret: …`; or one JSON object."""
    if as_json:
        click.echo(json.dumps({"client_id": client_id, "client_secret": secret, **(extra or {})}))
        return
    click.echo(f"client_id: {client_id}")
    if secret is not None:
        click.echo(f"client_secret: {secret}")


def _detail(value: Any) -> DetailValue:
    return value if isinstance(value, str | int | bool) or value is None else str(value)


async def _audit(db: Database, event: str, client_id: str, detail: dict[str, DetailValue]) -> None:
    from authserver.clock import utc_now
    from authserver.observability.audit import AuditEvent, operator, record

    entry = AuditEvent(
        event, "success", actor=operator(), client_id=client_id, subject=client_id, detail=detail
    )
    await record(db, entry, utc_now())
