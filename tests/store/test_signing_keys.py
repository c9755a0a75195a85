"""Signing keys at rest: one current and one next (enforced by the database), encrypted."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete

from authserver.keys.bootstrap import ensure_signing_keys, generate_key, new_key_record
from authserver.keys.kek import KeyDecryptionError
from authserver.keys.ring import build_key_ring
from authserver.settings import Settings
from authserver.store import keys as key_store
from authserver.store.db import Database
from authserver.store.tables import signing_keys

KEK = b"k" * 32
OTHER_KEK = b"o" * 32


@pytest.fixture
async def empty_key_table(db: Database) -> Database:
    """Start without keys; the test leaves a current and a next key for the tests after it."""
    async with db.transaction() as conn:
        await conn.execute(delete(signing_keys))
    return db


async def test_processes_starting_together_end_with_one_current_and_one_next(
    empty_key_table: Database, database_url: str
) -> None:
    settings = Settings(database_url=database_url)
    now = datetime.now(UTC)
    await asyncio.gather(
        *(ensure_signing_keys(empty_key_table, settings, KEK, now) for _ in range(4))
    )
    states = sorted(record.state for record in await key_store.list_keys(empty_key_table))
    assert states == ["current", "next"]


async def test_database_refuses_a_second_current_key(
    empty_key_table: Database, database_url: str
) -> None:
    await ensure_signing_keys(
        empty_key_table, Settings(database_url=database_url), KEK, datetime.now(UTC)
    )
    extra = new_key_record(generate_key(2048), KEK, "current", datetime.now(UTC))
    assert await key_store.insert_key(empty_key_table, extra) is False
    states = [record.state for record in await key_store.list_keys(empty_key_table)]
    assert states.count("current") == 1


async def test_private_keys_are_stored_encrypted(
    empty_key_table: Database, database_url: str
) -> None:
    await ensure_signing_keys(
        empty_key_table, Settings(database_url=database_url), KEK, datetime.now(UTC)
    )
    for record in await key_store.list_keys(empty_key_table):
        assert b"PRIVATE KEY" not in record.private_key
        assert b"-----BEGIN" not in record.private_key
        assert '"d"' not in record.public_jwk
        assert base64.b64encode(record.private_key[:12]) != b""


async def test_wrong_key_encryption_key_is_refused_and_keys_stay_intact(
    empty_key_table: Database, database_url: str
) -> None:
    settings = Settings(database_url=database_url)
    await ensure_signing_keys(empty_key_table, settings, KEK, datetime.now(UTC))
    before = await key_store.list_keys(empty_key_table)
    with pytest.raises(KeyDecryptionError, match="KEY_ENCRYPTION_KEY"):
        await ensure_signing_keys(empty_key_table, settings, OTHER_KEK, datetime.now(UTC))
    with pytest.raises(KeyDecryptionError):
        build_key_ring(before, settings, OTHER_KEK, datetime.now(UTC))
    after = await key_store.list_keys(empty_key_table)
    assert [(r.kid, r.state, r.private_key) for r in after] == [
        (r.kid, r.state, r.private_key) for r in before
    ]
    ring = build_key_ring(after, settings, KEK, datetime.now(UTC))
    assert ring.kid == next(r.kid for r in after if r.state == "current")


async def test_ciphertext_moved_to_another_key_row_does_not_decrypt(
    empty_key_table: Database, database_url: str
) -> None:
    """The kid is bound to the ciphertext (AES-GCM associated data)."""
    from authserver.keys.kek import decrypt_private_key

    settings = Settings(database_url=database_url)
    await ensure_signing_keys(empty_key_table, settings, KEK, datetime.now(UTC))
    first, second = await key_store.list_keys(empty_key_table)
    with pytest.raises(KeyDecryptionError):
        decrypt_private_key(KEK, first.kid, second.private_key)
