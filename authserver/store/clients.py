"""Clients: register, look up, list, change, give a new secret, delete (deleting its tokens with
it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, String, bindparam, delete, insert, literal_column, select, update

from authserver.models import Client, VersionedClient
from authserver.store.db import Database
from authserver.store.dialect import Prepared
from authserver.store.tables import clients, refresh_families, refresh_tokens

# refresh_families.revoked_reason for `clients rotate-secret --revoke-sessions`
SECRET_ROTATED = "secret_rotated"  # noqa: S105  # a reason code, not a secret


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


# PostgreSQL's row version (`xmin`, unsigned 32-bit): every UPDATE of the row changes it.
_ROW_VERSION = literal_column("clients.xmin::text::bigint", BigInteger).label("row_version")
VERSIONED_CLIENT_BY_ID = Prepared(
    select(clients, _ROW_VERSION).where(clients.c.client_id == bindparam("client_id", type_=String))
)


async def get_versioned_client(db: Database, client_id: str) -> VersionedClient | None:
    """The client and its row's version, which the refresh rotation re-checks in its own
    statement (store/rotation.py); PostgreSQL only (`Dialect.row_versions`)."""
    assert db.dialect.row_versions
    row = await db.fetch_row(VERSIONED_CLIENT_BY_ID, {"client_id": client_id}, read_only=True)
    return None if row is None else VersionedClient(_client(row), row["row_version"])


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


@dataclass(frozen=True)
class ClientUpdate:
    """The fields `clients update` changes; None leaves a field as it is. `access_token_ttl`
    0 means "no TTL of its own" (ACCESS_TOKEN_TTL)."""

    name: str | None = None
    grant_types: frozenset[str] | None = None
    scopes: tuple[str, ...] | None = None
    audiences: tuple[str, ...] | None = None
    can_introspect: bool | None = None
    access_token_ttl: int | None = None
    redirect_uris: tuple[str, ...] | None = None
    consent: bool | None = None

    def values(self) -> dict[str, Any]:
        """The columns to set, as stored."""
        values: dict[str, Any] = {}
        if self.name is not None:
            values["name"] = self.name
        if self.grant_types is not None:
            values["grant_types"] = " ".join(sorted(self.grant_types))
        if self.scopes is not None:
            values["scopes"] = " ".join(self.scopes)
        if self.audiences is not None:
            values["audiences"] = " ".join(self.audiences)
        if self.can_introspect is not None:
            values["can_introspect"] = self.can_introspect
        if self.access_token_ttl is not None:
            values["access_token_ttl"] = self.access_token_ttl or None
        if self.redirect_uris is not None:
            values["redirect_uris"] = " ".join(self.redirect_uris)  # the rules forbid whitespace
        if self.consent is not None:
            values["consent"] = self.consent
        return values


async def update_client(
    db: Database, client_id: str, change: ClientUpdate, checked: Client
) -> Client | None:
    """Set only the fields given, in one statement, provided the client's sign-in fields (grants,
    redirect URIs, consent) are still those of `checked`, the row the change was checked
    against: the rules tie them together, so a concurrent change of one of them makes this
    match no row (two operators changing other fields both keep their change). None if no
    row matched."""
    async with db.statement() as conn:
        row = (
            await conn.execute(
                update(clients)
                .where(
                    clients.c.client_id == client_id,
                    clients.c.grant_types == " ".join(sorted(checked.grant_types)),
                    clients.c.redirect_uris == " ".join(checked.redirect_uris),
                    clients.c.consent == checked.consent,
                )
                .values(**change.values())
                .returning(*clients.c)
            )
        ).first()
    return None if row is None else _client(row._mapping)


async def rotate_secret(
    db: Database, client_id: str, secret_hash: bytes, *, revoke_sessions: bool, now: datetime
) -> int | None:
    """Replace a confidential client's secret digest: the old secret stops working with this
    statement. With `revoke_sessions`, also revoke every live login (family) at the client, in
    the same transaction. None if no confidential client has this id; else the number of
    sessions revoked."""
    async with db.transaction() as conn:
        found = (
            await conn.execute(
                update(clients)
                .where(clients.c.client_id == client_id, clients.c.secret_hash.is_not(None))
                .values(secret_hash=secret_hash)
                .returning(clients.c.client_id)
            )
        ).first()
        if found is None:
            return None
        if not revoke_sessions:
            return 0
        revoked = await conn.execute(
            update(refresh_families)
            .where(
                refresh_families.c.client_id == client_id,
                refresh_families.c.revoked_at.is_(None),
            )
            .values(revoked_at=now, revoked_reason=SECRET_ROTATED)
        )
    return int(revoked.rowcount)
