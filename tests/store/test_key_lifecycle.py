"""Signing-key lifecycle in the store (SPEC "Signing keys"), on both backends: rotation is refused
until the next key has been published for JWKS_MAX_AGE, races have exactly one winner, revocation
never stops signing, and a wrong key-encryption key changes nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete

from authserver.keys import lifecycle as key_lifecycle
from authserver.keys.bootstrap import ensure_signing_keys
from authserver.keys.kek import KeyDecryptionError, key_encryption_keys
from authserver.keys.lifecycle import KeyLifecycleError, RotationTooEarly
from authserver.keys.ring import RETIRED_KEY_LEEWAY, build_key_ring, public_jwks
from authserver.models import SigningKeyRecord
from authserver.settings import Settings
from authserver.store import keys as key_store
from authserver.store.db import Database, open_database
from authserver.store.keys import KeyStateConflict
from authserver.store.tables import signing_keys

KEK = key_encryption_keys(
    b"k" * 32
)  # the test suite's KEK (conftest.TEST_KEK): later tests reuse these keys
OTHER_KEK = key_encryption_keys(b"o" * 32)
START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MAX_AGE = 300


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, jwks_max_age=MAX_AGE, access_token_ttl=900)


@pytest.fixture
async def keyed_db(db: Database, settings: Settings) -> Database:
    """A fresh `current` and `next`, both created at START."""
    async with db.transaction() as conn:
        await conn.execute(delete(signing_keys))
    await ensure_signing_keys(db, settings, KEK, START)
    return db


async def by_state(db: Database) -> dict[str, list[SigningKeyRecord]]:
    grouped: dict[str, list[SigningKeyRecord]] = {}
    for record in await key_store.list_keys(db):
        grouped.setdefault(record.state, []).append(record)
    return grouped


def published_kids(records: list[SigningKeyRecord], settings: Settings, now: datetime) -> set[str]:
    return {jwk["kid"] for jwk in public_jwks(records, settings, KEK, now)}


async def test_rotation_is_refused_until_the_next_key_was_published_for_jwks_max_age(
    keyed_db: Database, settings: Settings
) -> None:
    before = await key_store.list_keys(keyed_db)
    with pytest.raises(RotationTooEarly) as refused:
        await key_lifecycle.rotate(keyed_db, settings, KEK, START + timedelta(seconds=100))
    assert refused.value.wait_seconds == 200
    assert "wait 200 s" in str(refused.value).lower()
    assert "--now" in str(refused.value)
    assert await key_store.list_keys(keyed_db) == before  # nothing changed

    rotation = await key_lifecycle.rotate(keyed_db, settings, KEK, START + timedelta(seconds=300))
    assert rotation.early_by == 0
    states = await by_state(keyed_db)
    old_current = next(r for r in before if r.state == "current")
    old_next = next(r for r in before if r.state == "next")
    assert [r.kid for r in states["current"]] == [old_next.kid] == [rotation.current_kid]
    assert [r.kid for r in states["retired"]] == [old_current.kid] == [rotation.retired_kid]
    assert [r.kid for r in states["next"]] == [rotation.next_kid]
    assert states["current"][0].activated_at == START + timedelta(seconds=300)
    assert states["retired"][0].retired_at == START + timedelta(seconds=300)
    assert states["next"][0].created_at == START + timedelta(seconds=300)


async def test_rotation_now_promotes_at_once_and_says_how_early(
    keyed_db: Database, settings: Settings
) -> None:
    rotation = await key_lifecycle.rotate(
        keyed_db, settings, KEK, START + timedelta(seconds=10), force=True
    )
    assert rotation.early_by == 290
    assert [r.kid for r in (await by_state(keyed_db))["current"]] == [rotation.current_kid]


async def test_the_new_next_key_must_wait_its_own_jwks_max_age(
    keyed_db: Database, settings: Settings
) -> None:
    first = START + timedelta(seconds=MAX_AGE)
    await key_lifecycle.rotate(keyed_db, settings, KEK, first)
    with pytest.raises(RotationTooEarly):
        await key_lifecycle.rotate(keyed_db, settings, KEK, first + timedelta(seconds=MAX_AGE - 1))
    await key_lifecycle.rotate(keyed_db, settings, KEK, first + timedelta(seconds=MAX_AGE))


async def test_concurrent_rotations_leave_exactly_one_current(
    keyed_db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two operators (two processes, two connection pools) rotate at the same moment: both have
    read the keys before either writes. The overlap is forced (a barrier in front of the write):
    left to asyncio.gather, on a loaded machine one rotation could finish before the other read
    anything, and the second then rotated again, legitimately (seen: 2 winners, 0 losers)."""
    both_have_read = asyncio.Barrier(2)
    promote_next = key_store.promote_next

    async def promote_after_both_read(*args: Any, **kwargs: Any) -> None:
        async with asyncio.timeout(60):  # bounded: a rotation that never gets here fails the test
            await both_have_read.wait()
        await promote_next(*args, **kwargs)

    monkeypatch.setattr(key_store, "promote_next", promote_after_both_read)
    second_db = open_database(settings)
    try:
        now = START + timedelta(seconds=MAX_AGE)
        results = await asyncio.gather(
            key_lifecycle.rotate(keyed_db, settings, KEK, now, force=True),
            key_lifecycle.rotate(second_db, settings, KEK, now, force=True),
            return_exceptions=True,
        )
    finally:
        await second_db.dispose()
    winners = [r for r in results if isinstance(r, key_lifecycle.Rotation)]
    losers = [r for r in results if isinstance(r, KeyStateConflict)]
    assert (len(winners), len(losers)) == (1, 1), results
    states = await by_state(keyed_db)
    assert {state: len(rows) for state, rows in states.items()} == {
        "current": 1,
        "next": 1,
        "retired": 1,
    }
    assert states["current"][0].kid == winners[0].current_kid


async def test_retired_key_stays_published_until_its_tokens_expire_then_drops_out(
    keyed_db: Database, settings: Settings
) -> None:
    rotated_at = START + timedelta(seconds=MAX_AGE)
    rotation = await key_lifecycle.rotate(keyed_db, settings, KEK, rotated_at)
    records = await key_store.list_keys(keyed_db)
    # A process may sign with the old key until it polls, then the token lives ACCESS_TOKEN_TTL.
    last_token_expiry = rotated_at + timedelta(
        seconds=settings.keys_refresh_interval + settings.access_token_ttl
    )
    assert rotation.retired_kid in published_kids(records, settings, last_token_expiry)
    drop = last_token_expiry + RETIRED_KEY_LEEWAY
    assert rotation.retired_kid in published_kids(records, settings, drop - timedelta(seconds=1))
    assert published_kids(records, settings, drop) == {rotation.current_kid, rotation.next_kid}

    ring = build_key_ring(records, settings, KEK, rotated_at)
    assert ring.kid == rotation.current_kid
    assert ring.changes_at == drop  # the serving process rebuilds its JWKS at that moment
    assert build_key_ring(records, settings, KEK, drop).changes_at is None


async def test_revoking_the_current_key_promotes_next_and_unpublishes_it_at_once(
    keyed_db: Database, settings: Settings
) -> None:
    before = await by_state(keyed_db)
    current, next_key = before["current"][0], before["next"][0]
    now = START + timedelta(seconds=5)  # long before JWKS_MAX_AGE: revocation does not wait
    revocation = await key_lifecycle.revoke(keyed_db, settings, KEK, current.kid, now)
    assert revocation.previous_state == "current"
    assert revocation.promoted is not None
    assert revocation.promoted.current_kid == next_key.kid
    after = await by_state(keyed_db)
    assert [r.kid for r in after["revoked"]] == [current.kid]
    assert after["revoked"][0].revoked_at == now
    assert [r.kid for r in after["current"]] == [next_key.kid]
    assert [r.kid for r in after["next"]] == [revocation.promoted.next_kid]
    records = await key_store.list_keys(keyed_db)
    assert current.kid not in published_kids(records, settings, now)
    assert build_key_ring(records, settings, KEK, now).kid == next_key.kid  # signing goes on


async def test_revoking_the_next_key_creates_a_new_next(
    keyed_db: Database, settings: Settings
) -> None:
    before = await by_state(keyed_db)
    revocation = await key_lifecycle.revoke(keyed_db, settings, KEK, before["next"][0].kid, START)
    after = await by_state(keyed_db)
    assert [r.kid for r in after["current"]] == [before["current"][0].kid]
    assert [r.kid for r in after["next"]] == [revocation.new_next_kid]
    assert revocation.new_next_kid != before["next"][0].kid
    records = await key_store.list_keys(keyed_db)
    assert before["next"][0].kid not in published_kids(records, settings, START)


async def test_revoking_a_retired_key_unpublishes_it_before_its_window_ends(
    keyed_db: Database, settings: Settings
) -> None:
    rotated_at = START + timedelta(seconds=MAX_AGE)
    rotation = await key_lifecycle.rotate(keyed_db, settings, KEK, rotated_at)
    await key_lifecycle.revoke(keyed_db, settings, KEK, rotation.retired_kid, rotated_at)
    records = await key_store.list_keys(keyed_db)
    assert rotation.retired_kid not in published_kids(records, settings, rotated_at)
    assert {r.state for r in records} == {"current", "next", "revoked"}


async def test_revoking_an_unknown_or_already_revoked_key_is_refused(
    keyed_db: Database, settings: Settings
) -> None:
    with pytest.raises(KeyLifecycleError, match="no signing key with kid nope"):
        await key_lifecycle.revoke(keyed_db, settings, KEK, "nope", START)
    kid = (await by_state(keyed_db))["next"][0].kid
    await key_lifecycle.revoke(keyed_db, settings, KEK, kid, START)
    with pytest.raises(KeyLifecycleError, match="already revoked"):
        await key_lifecycle.revoke(keyed_db, settings, KEK, kid, START)


async def test_a_wrong_kek_rotates_and_revokes_nothing(
    keyed_db: Database, settings: Settings
) -> None:
    before = await key_store.list_keys(keyed_db)
    later = START + timedelta(seconds=MAX_AGE)
    with pytest.raises(KeyDecryptionError):
        await key_lifecycle.rotate(keyed_db, settings, OTHER_KEK, later)
    current = next(r for r in before if r.state == "current")
    with pytest.raises(KeyDecryptionError):
        await key_lifecycle.revoke(keyed_db, settings, OTHER_KEK, current.kid, later)
    assert await key_store.list_keys(keyed_db) == before


async def test_automatic_rotation_waits_for_its_interval_and_for_publication(
    keyed_db: Database, database_url: str
) -> None:
    settings = Settings(database_url=database_url, jwks_max_age=600, key_rotation_interval=3600)
    assert await key_lifecycle.rotate_if_due(keyed_db, settings, KEK, START) is None
    # Due by age, and the next key is old enough.
    due = START + timedelta(seconds=3600)
    rotation = await key_lifecycle.rotate_if_due(keyed_db, settings, KEK, due)
    assert rotation is not None
    # The new current was activated just now: not due again for an hour.
    assert await key_lifecycle.rotate_if_due(keyed_db, settings, KEK, due) is None
    # An hour later the current key is due, but the new next key must also have been
    # published for JWKS_MAX_AGE; with JWKS_MAX_AGE longer than the interval it waits.
    slow = Settings(database_url=database_url, jwks_max_age=7200, key_rotation_interval=3600)
    later = due + timedelta(seconds=3600)
    assert await key_lifecycle.rotate_if_due(keyed_db, slow, KEK, later) is None
    assert await key_lifecycle.rotate_if_due(keyed_db, slow, KEK, due + timedelta(hours=2))


async def test_automatic_rotation_happens_once_across_processes(
    keyed_db: Database, database_url: str
) -> None:
    settings = Settings(database_url=database_url, jwks_max_age=60, key_rotation_interval=3600)
    others = [open_database(settings) for _ in range(3)]
    due = START + timedelta(seconds=3600)
    try:
        results = await asyncio.gather(
            *(key_lifecycle.rotate_if_due(db, settings, KEK, due) for db in (keyed_db, *others))
        )
    finally:
        for db in others:
            await db.dispose()
    assert sum(result is not None for result in results) == 1
    states = await by_state(keyed_db)
    assert {state: len(rows) for state, rows in states.items()} == {
        "current": 1,
        "next": 1,
        "retired": 1,
    }


async def test_automatic_rotation_is_off_by_default(keyed_db: Database, settings: Settings) -> None:
    assert settings.key_rotation_interval == 0
    far = START + timedelta(days=3650)
    assert await key_lifecycle.rotate_if_due(keyed_db, settings, KEK, far) is None


async def test_until_rekey_new_keys_are_sealed_under_the_kek_of_the_current_key(
    keyed_db: Database, settings: Settings
) -> None:
    """A process given a new KEY_ENCRYPTION_KEY (the old one as previous) rotates: the new `next`
    key is sealed under the old KEK like the others, so processes not yet given the new one can
    still open it. Only `keys rekey` moves the keys to the new KEK."""
    rolled_out = key_encryption_keys(b"n" * 32, b"k" * 32)
    rotation = await key_lifecycle.rotate(keyed_db, settings, rolled_out, START, force=True)
    records = {record.kid: record for record in await key_store.list_keys(keyed_db)}
    assert records[rotation.next_kid].kek_id == KEK.current.id
    build_key_ring(list(records.values()), settings, KEK, START)  # the old KEK alone opens all
