"""Store tests talk to the store functions directly, on both backends."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from authserver.models import Client
from authserver.settings import Settings
from authserver.store import clients as client_store
from authserver.store import users as user_store
from authserver.store.db import Database, open_database
from authserver.tokens.opaque import new_refresh_token, token_digest


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = open_database(Settings(database_url=database_url))
    yield database
    await database.dispose()


@dataclass(frozen=True)
class Login:
    user_id: uuid.UUID
    client_id: str
    token: str  # the raw refresh token


def client_record(client_id: str) -> Client:
    return Client(
        client_id=client_id,
        name=client_id,
        secret_hash=token_digest("secret"),
        grant_types=frozenset({"password", "refresh_token"}),
        scopes=("read", "write"),
        audiences=(),
        can_introspect=False,
        access_token_ttl=None,
        created_at=datetime.now(UTC),
    )


@pytest.fixture
async def login(db: Database) -> Login:
    """A user with one live login (family) at client `app`."""
    from authserver.store import refresh

    now = datetime.now(UTC)
    user = await user_store.create_user(db, "alice", "argon2-hash-placeholder", now)
    await client_store.create_client(db, client_record("app"))
    token = new_refresh_token()
    await refresh.start_family(
        db,
        user_id=user.id,
        verified_password_hash=user.password_hash,
        client_id="app",
        scope="read write",
        token_hash=token_digest(token),
        now=now,
        token_ttl=3600,
        family_max_age=7200,
    )
    return Login(user.id, "app", token)
