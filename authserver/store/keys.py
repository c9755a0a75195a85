"""Signing-key rows. The database enforces one `current` and one `next` (partial unique indexes)."""

from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from authserver.models import SigningKeyRecord
from authserver.store.db import Database
from authserver.store.tables import signing_keys


async def list_keys(db: Database) -> list[SigningKeyRecord]:
    async with db.statement() as conn:
        rows = (await conn.execute(select(signing_keys).order_by(signing_keys.c.created_at))).all()
    return [SigningKeyRecord(**row._mapping) for row in rows]


async def key_states(db: Database) -> frozenset[tuple[str, str]]:
    """(kid, state) pairs: the cheap poll that tells a process whether to reload its keys."""
    async with db.statement() as conn:
        rows = (await conn.execute(select(signing_keys.c.kid, signing_keys.c.state))).all()
    return frozenset((row.kid, row.state) for row in rows)


async def insert_key(db: Database, record: SigningKeyRecord) -> bool:
    """Store a new key; False if another process stored one in that state first."""
    try:
        async with db.statement() as conn:
            await conn.execute(insert(signing_keys).values(_values(record)))
    except IntegrityError:
        return False
    return True


def _values(record: SigningKeyRecord) -> dict[str, object]:
    return {name: getattr(record, name) for name in SigningKeyRecord.__slots__}
