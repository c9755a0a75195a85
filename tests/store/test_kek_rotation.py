"""`keys rekey` in the store, on both backends (operator guard rail 3): every private key moves
to KEY_ENCRYPTION_KEY in one transaction or not at all, a KEK that is missing changes nothing,
and a key rotation racing with it can neither be lost nor leave a key under the old KEK."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, update

from authserver.keys import lifecycle as key_lifecycle
from authserver.keys import rekey as key_rekey
from authserver.keys.bootstrap import ensure_signing_keys
from authserver.keys.kek import (
    KeyDecryptionError,
    KeyEncryptionKeys,
    key_encryption_keys,
    open_private_key,
)
from authserver.keys.ring import build_key_ring
from authserver.models import SigningKeyRecord
from authserver.settings import Settings
from authserver.store import keys as key_store
from authserver.store.db import Database
from authserver.store.keys import KeyStateConflict
from authserver.store.tables import signing_keys

OLD = key_encryption_keys(b"o" * 32)
NEW_ONLY = key_encryption_keys(b"n" * 32)
ROLLED_OUT = key_encryption_keys(b"n" * 32, b"o" * 32)  # the new KEK, the old one as previous
START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, jwks_max_age=300, access_token_ttl=900)


@pytest.fixture
async def old_keys(db: Database, settings: Settings) -> AsyncIterator[Database]:
    """Keys sealed under OLD in every state: current, next, retired, revoked. Emptied afterwards
    (later tests make their own under the suite's KEK)."""
    async with db.transaction() as conn:
        await conn.execute(delete(signing_keys))
    await ensure_signing_keys(db, settings, OLD, START)
    rotation = await key_lifecycle.rotate(db, settings, OLD, START, force=True)
    await key_lifecycle.rotate(db, settings, OLD, START, force=True)
    await key_lifecycle.revoke(db, settings, OLD, rotation.retired_kid, START)
    yield db
    async with db.transaction() as conn:
        await conn.execute(delete(signing_keys))


def plaintexts(records: list[SigningKeyRecord], keks: KeyEncryptionKeys) -> dict[str, bytes]:
    return {record.kid: open_private_key(keks, record)[0] for record in records}


def sealing(records: list[SigningKeyRecord]) -> dict[str, str | None]:
    return {record.kid: record.kek_id for record in records}


async def test_rekey_seals_every_key_under_the_new_kek_and_changes_nothing_else(
    old_keys: Database, settings: Settings
) -> None:
    before = await key_store.list_keys(old_keys)
    assert sorted(r.state for r in before) == ["current", "next", "retired", "revoked"]

    result = await key_rekey.rekey(old_keys, ROLLED_OUT)

    after = await key_store.list_keys(old_keys)
    assert result == key_rekey.Rekey(NEW_ONLY.current.id, 4, 4, (OLD.current.id,))
    assert set(sealing(after).values()) == {NEW_ONLY.current.id}
    assert plaintexts(after, NEW_ONLY) == plaintexts(before, OLD)  # the same private keys
    unchanged = ("kid", "state", "public_jwk", "created_at", "activated_at", "retired_at")
    for old, new in zip(before, after, strict=True):
        assert [getattr(old, f) for f in unchanged] == [getattr(new, f) for f in unchanged]
        assert old.private_key != new.private_key
    ring = build_key_ring(after, settings, NEW_ONLY, START)  # the old KEK is no longer needed
    assert ring.jwks == build_key_ring(before, settings, OLD, START).jwks


async def test_rekey_again_has_nothing_to_do(old_keys: Database) -> None:
    await key_rekey.rekey(old_keys, ROLLED_OUT)
    sealed = await key_store.list_keys(old_keys)
    again = await key_rekey.rekey(old_keys, ROLLED_OUT)
    assert again == key_rekey.Rekey(NEW_ONLY.current.id, 4, 0, ())
    assert await key_store.list_keys(old_keys) == sealed
    assert (await key_rekey.rekey(old_keys, NEW_ONLY)).resealed == 0


@pytest.mark.parametrize(
    "keks",
    [NEW_ONLY, key_encryption_keys(b"n" * 32, b"w" * 32)],
    ids=["old kek not configured", "a wrong previous kek"],
)
async def test_rekey_without_the_kek_that_sealed_the_keys_changes_nothing(
    old_keys: Database, keks: KeyEncryptionKeys
) -> None:
    before = await key_store.list_keys(old_keys)
    with pytest.raises(KeyDecryptionError) as refused:
        await key_rekey.rekey(old_keys, keks)
    assert OLD.current.id in str(refused.value)
    assert "PREVIOUS_KEY_ENCRYPTION_KEYS" in str(refused.value)
    assert await key_store.list_keys(old_keys) == before


async def test_rekey_names_the_kek_of_keys_stored_before_kek_ids(old_keys: Database) -> None:
    async with old_keys.transaction() as conn:
        await conn.execute(update(signing_keys).values(kek_id=None))
    result = await key_rekey.rekey(old_keys, ROLLED_OUT)
    assert result.from_kek_ids == (OLD.current.id,)
    assert set(sealing(await key_store.list_keys(old_keys)).values()) == {NEW_ONLY.current.id}


async def test_rekey_under_the_same_kek_names_keys_stored_before_kek_ids(
    old_keys: Database,
) -> None:
    """Run with the KEK they already have: only the legacy rows get their KEK's name."""
    async with old_keys.transaction() as conn:
        await conn.execute(update(signing_keys).values(kek_id=None))
    result = await key_rekey.rekey(old_keys, OLD)
    assert (result.resealed, result.kek_id) == (4, OLD.current.id)
    assert set(sealing(await key_store.list_keys(old_keys)).values()) == {OLD.current.id}


# --- all or nothing -----------------------------------------------------------------------------


async def test_a_failure_midway_leaves_every_key_as_it_was(old_keys: Database) -> None:
    """The second row changed under the rekey: the first one's new ciphertext is rolled back."""
    before = await key_store.list_keys(old_keys)
    changes = [
        key_store.Reseal(before[0].kid, before[0].private_key, b"\1" * 64),
        key_store.Reseal(before[1].kid, b"not what the row holds", b"\2" * 64),
    ]
    with pytest.raises(KeyStateConflict):
        await key_store.reseal(old_keys, changes, NEW_ONLY.current.id)
    assert await key_store.list_keys(old_keys) == before


async def test_a_crash_midway_leaves_every_key_as_it_was(old_keys: Database) -> None:
    """The statement for the third row fails (here: a NULL ciphertext the schema refuses), as a
    killed process or a lost connection would: the transaction rolls back."""
    before = await key_store.list_keys(old_keys)
    changes = [
        key_store.Reseal(record.kid, record.private_key, b"\1" * 64) for record in before[:2]
    ]
    changes.append(key_store.Reseal(before[2].kid, before[2].private_key, None))  # type: ignore[arg-type]
    with pytest.raises(Exception):  # noqa: B017, PT011 - the driver's own integrity error
        await key_store.reseal(old_keys, changes, NEW_ONLY.current.id)
    assert await key_store.list_keys(old_keys) == before


# --- key rotation during a rekey ----------------------------------------------------------------


def run_first_after_the_read(
    monkeypatch: pytest.MonkeyPatch, module: object, interloper: Callable[[], Awaitable[object]]
) -> None:
    """`module`'s next `key_store.list_keys` returns what it read, then lets `interloper`
    commit before the caller goes on to write: the worst interleaving, forced."""
    real = key_store.list_keys
    calls = 0

    async def list_keys(db: Database) -> list[SigningKeyRecord]:
        nonlocal calls
        calls += 1
        records = await real(db)
        if calls == 1:
            await interloper()
        return records

    monkeypatch.setattr(f"{module.__name__}.key_store.list_keys", list_keys)  # type: ignore[attr-defined]


async def test_a_rotation_that_commits_during_the_rekey_is_rekeyed_too(
    old_keys: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server still on the old KEK rotates between the rekey's read and its write: its new key
    (sealed under the old KEK) would be left behind; the rekey sees it and goes again."""
    rotations: list[key_lifecycle.Rotation] = []

    async def rotate_with_the_old_kek() -> None:
        rotations.append(await key_lifecycle.rotate(old_keys, settings, OLD, START, force=True))

    run_first_after_the_read(monkeypatch, key_rekey, rotate_with_the_old_kek)
    result = await key_rekey.rekey(old_keys, ROLLED_OUT)

    after = await key_store.list_keys(old_keys)
    assert rotations[0].next_kid in sealing(after)
    assert (result.keys, result.resealed) == (5, 5)
    assert set(sealing(after).values()) == {NEW_ONLY.current.id}
    build_key_ring(after, settings, NEW_ONLY, START + timedelta(seconds=1))


async def test_a_rotation_that_read_the_keys_before_a_rekey_does_not_commit_after_it(
    old_keys: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rotation sealed its new key under the KEK the current key had when it read it; a
    rekey committed since: the rotation rolls back instead of adding a key under the old KEK,
    and run again it seals under the new one."""
    before = await key_store.list_keys(old_keys)

    async def rekey() -> None:
        await key_rekey.rekey(old_keys, ROLLED_OUT)

    run_first_after_the_read(monkeypatch, key_lifecycle, rekey)
    with pytest.raises(KeyStateConflict, match="another process"):
        await key_lifecycle.rotate(old_keys, settings, ROLLED_OUT, START, force=True)
    rekeyed = await key_store.list_keys(old_keys)
    assert [(r.kid, r.state) for r in rekeyed] == [(r.kid, r.state) for r in before]
    assert set(sealing(rekeyed).values()) == {NEW_ONLY.current.id}

    monkeypatch.undo()
    rotation = await key_lifecycle.rotate(old_keys, settings, ROLLED_OUT, START, force=True)
    assert sealing(await key_store.list_keys(old_keys))[rotation.next_kid] == NEW_ONLY.current.id


async def test_revoking_the_next_key_before_a_rekey_does_not_commit_after_it(
    old_keys: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Revoking `next` creates a new next key too, sealed like the current key was."""
    [next_key] = [r for r in await key_store.list_keys(old_keys) if r.state == "next"]

    async def rekey() -> None:
        await key_rekey.rekey(old_keys, ROLLED_OUT)

    run_first_after_the_read(monkeypatch, key_lifecycle, rekey)
    with pytest.raises(KeyStateConflict):
        await key_lifecycle.revoke(old_keys, settings, ROLLED_OUT, next_key.kid, START)
    assert set(sealing(await key_store.list_keys(old_keys)).values()) == {NEW_ONLY.current.id}


async def test_a_rekey_to_the_wrong_new_kek_is_undone_by_a_rekey_to_the_right_one(
    old_keys: Database, settings: Settings
) -> None:
    """The operator's KEY_ENCRYPTION_KEY was not the one given to the servers: nothing is lost
    (the servers keep the keys they hold); rekey again, the wrong KEK as a previous one."""
    wrong = key_encryption_keys(b"w" * 32, b"o" * 32)
    await key_rekey.rekey(old_keys, wrong)
    right = key_encryption_keys(b"n" * 32, b"w" * 32)
    result = await key_rekey.rekey(old_keys, right)
    assert result.from_kek_ids == (wrong.current.id,)
    build_key_ring(await key_store.list_keys(old_keys), settings, NEW_ONLY, START)
