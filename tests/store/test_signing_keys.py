"""Signing keys at rest: one current and one next (enforced by the database), encrypted."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, update

from authserver.keys.bootstrap import ensure_signing_keys, generate_key, new_key_record
from authserver.keys.kek import KeyDecryptionError, key_encryption_keys
from authserver.keys.ring import build_key_ring
from authserver.settings import Settings
from authserver.store import keys as key_store
from authserver.store.db import Database
from authserver.store.tables import signing_keys

KEK = key_encryption_keys(b"k" * 32)
OTHER_KEK = key_encryption_keys(b"o" * 32)


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
    extra = new_key_record(generate_key(2048), KEK.current, "current", datetime.now(UTC))
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
        decrypt_private_key(KEK.current.key, first.kid, second.private_key)


# --- several KEKs: each key names the KEK that sealed it ----------------------------------------

NEW_KEK = key_encryption_keys(b"n" * 32, b"k" * 32)  # a new KEK, the suite's as the previous one


@pytest.fixture
async def cleared_afterwards(empty_key_table: Database) -> AsyncIterator[Database]:
    """For tests that leave keys sealed under another KEK than the suite's: later tests must
    find none of them (they make their own under TEST_KEK)."""
    yield empty_key_table
    async with empty_key_table.transaction() as conn:
        await conn.execute(delete(signing_keys))


async def test_each_stored_key_names_the_kek_that_sealed_it(
    empty_key_table: Database, database_url: str
) -> None:
    await ensure_signing_keys(
        empty_key_table, Settings(database_url=database_url), KEK, datetime.now(UTC)
    )
    records = await key_store.list_keys(empty_key_table)
    assert {record.kek_id for record in records} == {KEK.current.id}


async def test_keys_sealed_under_a_previous_kek_still_open(
    empty_key_table: Database, database_url: str
) -> None:
    settings = Settings(database_url=database_url)
    await ensure_signing_keys(empty_key_table, settings, KEK, datetime.now(UTC))
    records = await key_store.list_keys(empty_key_table)
    await ensure_signing_keys(empty_key_table, settings, NEW_KEK, datetime.now(UTC))
    ring = build_key_ring(records, settings, NEW_KEK, datetime.now(UTC))
    assert ring.kid == next(r.kid for r in records if r.state == "current")


async def test_a_key_sealed_under_a_kek_not_configured_is_refused_naming_that_kek(
    empty_key_table: Database, database_url: str
) -> None:
    settings = Settings(database_url=database_url)
    await ensure_signing_keys(empty_key_table, settings, KEK, datetime.now(UTC))
    records = await key_store.list_keys(empty_key_table)
    only_new = key_encryption_keys(b"n" * 32)
    with pytest.raises(KeyDecryptionError) as refused:
        await ensure_signing_keys(empty_key_table, settings, only_new, datetime.now(UTC))
    message = str(refused.value)
    assert KEK.current.id in message
    assert only_new.current.id in message
    assert "PREVIOUS_KEY_ENCRYPTION_KEYS" in message
    assert await key_store.list_keys(empty_key_table) == records


async def test_keys_stored_before_kek_ids_open_with_whichever_configured_kek_sealed_them(
    empty_key_table: Database, database_url: str
) -> None:
    """Rows written before migration 0005 have no kek_id: each configured KEK is tried."""
    settings = Settings(database_url=database_url)
    await ensure_signing_keys(empty_key_table, settings, KEK, datetime.now(UTC))
    async with empty_key_table.transaction() as conn:
        await conn.execute(update(signing_keys).values(kek_id=None))
    records = await key_store.list_keys(empty_key_table)
    assert {record.kek_id for record in records} == {None}
    for keks in (KEK, NEW_KEK):
        ring = build_key_ring(records, settings, keks, datetime.now(UTC))
        assert ring.kid == next(r.kid for r in records if r.state == "current")
    with pytest.raises(KeyDecryptionError, match="KEY_ENCRYPTION_KEY"):
        build_key_ring(records, settings, key_encryption_keys(b"n" * 32), datetime.now(UTC))


async def test_a_ciphertext_altered_under_a_named_kek_is_refused_as_altered(
    empty_key_table: Database, database_url: str
) -> None:
    settings = Settings(database_url=database_url)
    await ensure_signing_keys(empty_key_table, settings, KEK, datetime.now(UTC))
    records = await key_store.list_keys(empty_key_table)
    current = next(r for r in records if r.state == "current")
    flipped = current.private_key[:-1] + bytes([current.private_key[-1] ^ 1])
    async with empty_key_table.transaction() as conn:
        await conn.execute(
            update(signing_keys)
            .where(signing_keys.c.kid == current.kid)
            .values(private_key=flipped)
        )
    try:
        with pytest.raises(KeyDecryptionError, match="altered"):
            build_key_ring(
                await key_store.list_keys(empty_key_table), settings, KEK, datetime.now(UTC)
            )
    finally:  # put it back for the tests after this one
        async with empty_key_table.transaction() as conn:
            await conn.execute(
                update(signing_keys)
                .where(signing_keys.c.kid == current.kid)
                .values(private_key=current.private_key)
            )


async def test_an_empty_database_gets_keys_sealed_under_key_encryption_key(
    cleared_afterwards: Database, database_url: str
) -> None:
    settings = Settings(database_url=database_url)
    await ensure_signing_keys(cleared_afterwards, settings, NEW_KEK, datetime.now(UTC))
    records = await key_store.list_keys(cleared_afterwards)
    assert {record.kek_id for record in records} == {NEW_KEK.current.id}
