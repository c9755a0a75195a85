"""Proving that the key-encryption keys open the stored signing keys, before a command shows or
publishes them: a wrong or stale KEY_ENCRYPTION_KEY must stop `keys list`, `keys export-jwks`
and `authserver check` as it stops `serve`, not pass unnoticed until a server cannot sign.

Every stored key counts, revoked ones too: each was sealed under a KEK this deployment holds
(KEY_ENCRYPTION_KEY or one of PREVIOUS_KEY_ENCRYPTION_KEYS, and `keys rekey` moves them all), so
a key that does not open means a wrong or missing KEK or an edited row, either worth stopping for.
"""

from __future__ import annotations

from authserver.keys.kek import KeyDecryptionError, KeyEncryptionKeys, open_private_key
from authserver.models import SigningKeyRecord


def undecryptable(
    records: list[SigningKeyRecord], keks: KeyEncryptionKeys
) -> list[KeyDecryptionError]:
    """Why each stored key that `keks` do not open does not (one line each, naming the key and
    the KEK it names)."""
    failed = []
    for record in records:
        try:
            open_private_key(keks, record)
        except KeyDecryptionError as error:
            failed.append(error)
    return failed


def summary(failed: list[KeyDecryptionError], stored: int) -> str:
    """One line: how many keys do not open, and why the first one does not."""
    return f"{len(failed)} of {stored} stored keys do not open: {failed[0]}"


def verify_keks(records: list[SigningKeyRecord], keks: KeyEncryptionKeys) -> None:
    """Raise KeyDecryptionError (one line) unless `keks` open every stored key."""
    failed = undecryptable(records, keks)
    if failed:
        raise KeyDecryptionError(summary(failed, len(records)))
