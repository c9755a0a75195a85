"""Signing-key generation, and making sure a `current` and a `next` key exist (SPEC "Details":
`db upgrade` and `serve` both do)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

from joserfc.jwk import RSAKey

from authserver.keys.kek import (
    Kek,
    KeyEncryptionKeys,
    open_private_key,
    seal_private_key,
    sealing_kek,
)
from authserver.keys.ring import is_published, public_jwk_of
from authserver.models import SigningKeyRecord
from authserver.settings import Settings
from authserver.store import keys as key_store
from authserver.store.db import Database
from authserver.verify import ALG


def generate_key(size: int) -> RSAKey:
    return RSAKey.generate_key(size, parameters={"use": "sig", "alg": ALG}, auto_kid=True)


def new_key_record(key: RSAKey, kek: Kek, state: str, now: datetime) -> SigningKeyRecord:
    kid = key.kid
    assert kid is not None
    public = key.as_dict(private=False)
    private_key, kek_id = seal_private_key(kek, kid, key.as_pem(private=True))
    return SigningKeyRecord(
        kid=kid,
        state=state,
        alg=ALG,
        size=key.raw_value.key_size,
        public_jwk=json.dumps(public, sort_keys=True),
        private_key=private_key,
        created_at=now,
        activated_at=now if state == "current" else None,
        retired_at=None,
        revoked_at=None,
        kek_id=kek_id,
    )


async def ensure_signing_keys(
    db: Database, settings: Settings, keks: KeyEncryptionKeys, now: datetime
) -> None:
    """Make sure a `current` and a `next` key exist (SPEC: `db upgrade` and `serve` both do).

    Processes racing on an empty database each try to insert; the unique indexes let exactly one
    `current` and one `next` in, and the losers simply use the winners' keys.
    """
    records = await key_store.list_keys(db)
    for record in records:  # refuse to go on with KEKs that cannot open the existing keys,
        if is_published(record, settings, now):  # or with a published key altered (finding 9)
            public_jwk_of(record, keks)
        elif record.state != "revoked":
            open_private_key(keks, record)
    states = {record.state for record in records}
    for state in ("current", "next"):
        if state not in states:
            key = await asyncio.to_thread(generate_key, settings.signing_key_size)
            kek = sealing_kek(keks, records)
            await key_store.insert_key(db, new_key_record(key, kek, state, now))
