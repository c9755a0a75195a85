"""Operator input the client registry refuses (admin.create_client, used by `clients create`)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from authserver import admin
from authserver.admin import AdminError
from authserver.settings import Settings
from authserver.store import clients as client_store
from authserver.store.db import Database


async def test_a_public_client_cannot_be_allowed_to_introspect(
    db: Database, database_url: str
) -> None:
    """/introspect needs client authentication (RFC 7662 §2.1), which a public client has not:
    such a registration could never work, so it is refused rather than stored."""
    with pytest.raises(AdminError, match="public client cannot introspect"):
        await admin.create_client(
            db,
            Settings(database_url=database_url),
            name="resource-server",
            public=True,
            grant_types=(),
            scopes=(),
            audiences=(),
            can_introspect=True,
            access_token_ttl=None,
            now=datetime.now(UTC),
        )
    assert await client_store.list_clients(db) == []
