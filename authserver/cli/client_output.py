"""What the `clients` commands share: a client as printed (never its secret), a new secret as
SPEC prints it (once), and the audit record of an operator's change."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from authserver.cli.output import iso

if TYPE_CHECKING:
    from authserver.models import Client
    from authserver.observability.audit import DetailValue
    from authserver.store.db import Database


def client_fields(client: Client) -> dict[str, Any]:
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


def print_secret(
    client_id: str, secret: str | None, as_json: bool, extra: dict[str, int] | None = None
) -> None:
    """SPEC: `client_id: …` and, if confidential, `client_secret: …`; or one JSON object."""
    if as_json:
        click.echo(json.dumps({"client_id": client_id, "client_secret": secret, **(extra or {})}))
        return
    click.echo(f"client_id: {client_id}")
    if secret is not None:
        click.echo(f"client_secret: {secret}")


def detail_value(value: Any) -> DetailValue:
    return value if isinstance(value, str | int | bool) or value is None else str(value)


async def audit_client(
    db: Database, event: str, client_id: str, detail: dict[str, DetailValue]
) -> None:
    from authserver.clock import utc_now
    from authserver.observability.audit import AuditEvent, operator, record

    entry = AuditEvent(
        event, "success", actor=operator(), client_id=client_id, subject=client_id, detail=detail
    )
    await record(db, entry, utc_now())
