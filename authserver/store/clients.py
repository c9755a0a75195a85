"""Clients: register, look up, list, delete (deleting its tokens with it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import String, bindparam, delete, insert, select

from authserver.models import Client
from authserver.store.db import Database
from authserver.store.dialect import Prepared
from authserver.store.tables import clients, refresh_families, refresh_tokens


def _client(row: Mapping[Any, Any]) -> Client:
    return Client(
        client_id=row["client_id"],
        name=row["name"],
        secret_hash=row["secret_hash"],
        grant_types=frozenset(row["grant_types"].split()),
        scopes=tuple(row["scopes"].split()),
        audiences=tuple(row["audiences"].split()),
        can_introspect=row["can_introspect"],
        access_token_ttl=row["access_token_ttl"],
        created_at=row["created_at"],
        redirect_uris=tuple(row["redirect_uris"].split()),
        consent=row["consent"],
    )


async def create_client(db: Database, client: Client) -> None:
    async with db.statement() as conn:
        await conn.execute(
            insert(clients).values(
                client_id=client.client_id,
                name=client.name,
                secret_hash=client.secret_hash,
                grant_types=" ".join(sorted(client.grant_types)),
                scopes=" ".join(client.scopes),
                audiences=" ".join(client.audiences),
                can_introspect=client.can_introspect,
                access_token_ttl=client.access_token_ttl,
                created_at=client.created_at,
                redirect_uris=" ".join(client.redirect_uris),  # the rules forbid whitespace
                consent=client.consent,
            )
        )


_CLIENT_BY_ID = Prepared(
    select(clients).where(clients.c.client_id == bindparam("client_id", type_=String))
)


async def get_client(db: Database, client_id: str) -> Client | None:
    """On every token request (hot path: a prepared statement, see store/dialect.py)."""
    row = await db.fetch_row(_CLIENT_BY_ID, {"client_id": client_id}, read_only=True)
    return None if row is None else _client(row)


async def list_clients(db: Database) -> list[Client]:
    async with db.read() as conn:
        rows = (await conn.execute(select(clients).order_by(clients.c.created_at))).all()
    return [_client(row._mapping) for row in rows]


async def all_client_scopes(db: Database) -> list[str]:
    """Every scope some client may ask for (discovery's `scopes_supported` when SCOPES is empty)."""
    async with db.read() as conn:
        rows = (await conn.execute(select(clients.c.scopes))).scalars().all()
    return sorted({scope for line in rows for scope in line.split()})


async def delete_client(db: Database, client_id: str) -> bool:
    """Delete a client and every refresh token it holds; True if it existed."""
    async with db.transaction() as conn:
        await conn.execute(delete(refresh_tokens).where(refresh_tokens.c.client_id == client_id))
        await conn.execute(
            delete(refresh_families).where(refresh_families.c.client_id == client_id)
        )
        result = await conn.execute(delete(clients).where(clients.c.client_id == client_id))
    return bool(result.rowcount)
