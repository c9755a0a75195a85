"""`keys rekey`: re-encrypt every private signing key under KEY_ENCRYPTION_KEY (KEK rotation).

The private keys themselves do not change (same kids, same JWKS, every token stays valid): each
is opened with the KEK its row names (any configured one: KEY_ENCRYPTION_KEY or a previous one)
and sealed again under KEY_ENCRYPTION_KEY, in one transaction, each row conditional on still
holding the ciphertext read (keys/kek.py, store/keys.py). Nothing is written unless every key
opens; a key rotation that slips in between makes the transaction roll back, and it is tried
again with the keys as they are then.
"""

from __future__ import annotations

from dataclasses import dataclass

from authserver.keys.kek import (
    KeyDecryptionError,
    KeyEncryptionKeys,
    decrypt_private_key,
    open_private_key,
    seal_private_key,
)
from authserver.keys.lifecycle import KeyLifecycleError
from authserver.observability.audit import AuditEvent
from authserver.store import keys as key_store
from authserver.store.db import Database

ATTEMPTS = 3  # a rotation (every KEYS_REFRESH_INTERVAL at most) rarely overlaps even once


@dataclass(frozen=True)
class Rekey:
    kek_id: str  # KEY_ENCRYPTION_KEY's id: every key is sealed under it now
    keys: int  # how many keys the database holds
    resealed: int  # how many of them this run moved (0: there was nothing to do)
    from_kek_ids: tuple[str, ...]  # the KEKs they were sealed under


def rekey_event(result: Rekey, actor: str) -> AuditEvent:
    """The audit record of a rekey (KEK ids only: they are public fingerprints)."""
    return AuditEvent(
        "key.rekeyed",
        "success",
        actor=actor,
        subject=result.kek_id,
        detail={"keys": result.resealed, "previous_kek_ids": ",".join(result.from_kek_ids)},
    )


async def rekey(db: Database, keks: KeyEncryptionKeys) -> Rekey:
    """Seal every stored private key under `keks.current`; KeyDecryptionError (nothing written)
    if one of them does not open with `keks`."""
    for _attempt in range(ATTEMPTS):
        records = await key_store.list_keys(db)
        changes: list[key_store.Reseal] = []
        sources: dict[str, None] = {}
        for record in records:
            pem, kek = open_private_key(keks, record)  # every key, the revoked ones too
            if record.kek_id == keks.current.id:
                continue
            sealed, _kek_id = seal_private_key(keks.current, record.kid, pem)
            if decrypt_private_key(keks.current.key, record.kid, sealed) != pem:
                raise KeyDecryptionError(f"signing key {record.kid}: re-encryption did not verify")
            changes.append(key_store.Reseal(record.kid, record.private_key, sealed))
            sources[kek.id] = None
        if not changes:
            return Rekey(keks.current.id, len(records), 0, ())
        try:
            await key_store.reseal(db, changes, keks.current.id)
        except key_store.KeyStateConflict:
            continue  # a rotation or another rekey got in between: read the keys again
        return Rekey(keks.current.id, len(records), len(changes), tuple(sources))
    raise KeyLifecycleError(
        f"the signing keys changed during each of {ATTEMPTS} attempts (rotations, or another "
        "rekey); nothing was re-encrypted: run it again"
    )
