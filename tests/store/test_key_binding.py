"""Review finding 9: a published key is the public half of the private key stored with it. The
JWKS is computed from the decrypted private keys (AES-GCM-authenticated under the KEK, the kid
as associated data), so someone who can write the database but does not hold the KEK cannot
publish a key of theirs: not by editing a row's public JWK, nor by copying a ciphertext into a
row of their own."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, insert, update

from authserver.keys import lifecycle as key_lifecycle
from authserver.keys.bootstrap import ensure_signing_keys, generate_key
from authserver.keys.kek import KeyDecryptionError, key_encryption_keys
from authserver.keys.ring import build_key_ring, public_jwks
from authserver.models import SigningKeyRecord
from authserver.settings import Settings
from authserver.store import keys as key_store
from authserver.store.db import Database
from authserver.store.tables import signing_keys

KEK = key_encryption_keys(b"k" * 32)  # the suite's KEK: the keys left behind are usable later
START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, jwks_max_age=300, access_token_ttl=900)


@pytest.fixture
async def keyed_db(db: Database, settings: Settings) -> AsyncIterator[Database]:
    """A current, a next, and a retired key still published; emptied afterwards (the tampered
    rows must not reach later tests)."""
    async with db.transaction() as conn:
        await conn.execute(delete(signing_keys))
    await ensure_signing_keys(db, settings, KEK, START)
    await key_lifecycle.rotate(db, settings, KEK, START + timedelta(seconds=300))
    yield db
    async with db.transaction() as conn:
        await conn.execute(delete(signing_keys))


def foreign_public_jwk(kid: str) -> str:
    """Someone else's public key, dressed as the row's own (same kid, alg and use)."""
    foreign = json.loads(json.dumps(generate_key(2048).as_dict(private=False)))
    foreign["kid"] = kid
    return json.dumps(foreign, sort_keys=True)


async def records_of(db: Database) -> list[SigningKeyRecord]:
    return await key_store.list_keys(db)


@pytest.mark.parametrize("state", ["current", "next", "retired"])
async def test_a_published_row_whose_public_key_was_swapped_is_refused(
    keyed_db: Database, settings: Settings, state: str
) -> None:
    now = START + timedelta(seconds=301)
    before = await records_of(keyed_db)
    honest = build_key_ring(before, settings, KEK, now)
    [target] = [record for record in before if record.state == state]
    async with keyed_db.transaction() as conn:
        await conn.execute(
            update(signing_keys)
            .where(signing_keys.c.kid == target.kid)
            .values(public_jwk=foreign_public_jwk(target.kid))
        )
    tampered = await records_of(keyed_db)
    with pytest.raises(KeyDecryptionError, match=f"{target.kid}.*not the public half"):
        build_key_ring(tampered, settings, KEK, now)
    with pytest.raises(KeyDecryptionError, match=target.kid):
        public_jwks(tampered, settings, KEK, now)  # `keys export-jwks`
    assert honest.jwks == build_key_ring(before, settings, KEK, now).jwks


async def test_an_unpublished_row_is_not_opened_to_build_the_jwks(
    keyed_db: Database, settings: Settings
) -> None:
    """A revoked key is never published again: what its row says does not matter."""
    [retired] = [record for record in await records_of(keyed_db) if record.state == "retired"]
    await key_lifecycle.revoke(keyed_db, settings, KEK, retired.kid, START + timedelta(seconds=301))
    async with keyed_db.transaction() as conn:
        await conn.execute(
            update(signing_keys)
            .where(signing_keys.c.kid == retired.kid)
            .values(public_jwk=foreign_public_jwk(retired.kid), private_key=b"\0" * 64)
        )
    ring = build_key_ring(await records_of(keyed_db), settings, KEK, START + timedelta(seconds=301))
    assert retired.kid not in ring.verify_keys


async def test_a_row_of_ones_own_with_a_copied_ciphertext_is_refused(
    keyed_db: Database, settings: Settings
) -> None:
    """The kid is the AES-GCM associated data: a ciphertext opens only in its own row."""
    records = await records_of(keyed_db)
    [retired] = [record for record in records if record.state == "retired"]
    # Make room among the published keys: revoke the retired one, and add a row of one's own.
    await key_lifecycle.revoke(keyed_db, settings, KEK, retired.kid, START + timedelta(seconds=301))
    intruder = generate_key(2048)
    assert intruder.kid is not None
    async with keyed_db.transaction() as conn:
        await conn.execute(
            insert(signing_keys).values(
                kid=intruder.kid,
                state="retired",
                alg="RS256",
                size=2048,
                public_jwk=json.dumps(intruder.as_dict(private=False), sort_keys=True),
                private_key=retired.private_key,
                created_at=START,
                activated_at=START,
                retired_at=START + timedelta(seconds=300),
                revoked_at=None,
                kek_id=KEK.current.id,
            )
        )
    with pytest.raises(KeyDecryptionError, match=intruder.kid):
        build_key_ring(await records_of(keyed_db), settings, KEK, START + timedelta(seconds=301))


async def test_the_published_keys_are_computed_from_the_private_keys(
    keyed_db: Database, settings: Settings
) -> None:
    records = await records_of(keyed_db)
    now = START + timedelta(seconds=301)
    published = public_jwks(records, settings, KEK, now)
    assert {jwk["kid"] for jwk in published} == {record.kid for record in records}
    stored = {record.kid: json.loads(record.public_jwk) for record in records}
    for jwk in published:
        assert jwk == stored[jwk["kid"]]
        assert set(jwk) == {"kty", "kid", "use", "alg", "n", "e"}
