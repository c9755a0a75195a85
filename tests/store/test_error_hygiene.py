"""Database errors never carry the statement's parameters (hashes, digests) into logs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from authserver.store import users as user_store
from authserver.store.db import Database
from authserver.store.tables import users

SECRET_LOOKING_HASH = "$argon2id$v=19$m=8,t=1,p=1$c2VjcmV0LXNhbHQ$do-not-log-me"


async def test_integrity_error_does_not_show_parameters(db: Database) -> None:
    now = datetime.now(UTC)
    await user_store.create_user(db, "alice", SECRET_LOOKING_HASH, now)
    with pytest.raises(IntegrityError) as raised:
        async with db.transaction() as conn:
            await conn.execute(
                insert(users).values(
                    id=uuid.uuid4(),
                    username="alice",
                    password_hash=SECRET_LOOKING_HASH,
                    disabled=False,
                    created_at=now,
                    password_changed_at=now,
                )
            )
    assert "do-not-log-me" not in str(raised.value)
    assert "do-not-log-me" not in repr(raised.value)
