"""Signing keys: the key-encryption key, key generation, and the KeyRing every request reads.

A KeyRing is an immutable snapshot: the key that signs (`current`), and the JWKS document bytes,
prepared once per key change. Private keys are stored encrypted with AES-256-GCM under
KEY_ENCRYPTION_KEY, with the kid as associated data (a ciphertext cannot be moved to another row).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc.jwk import KeySet, RSAKey

from authserver.models import SigningKeyRecord
from authserver.settings import ConfigError, Settings
from authserver.store import keys as key_store
from authserver.store.db import Database

ALG = "RS256"
RETIRED_KEY_LEEWAY = timedelta(seconds=60)


class KeyDecryptionError(Exception):
    """KEY_ENCRYPTION_KEY does not open the stored keys (wrong key, or tampered rows)."""


class NoSigningKey(Exception):
    """The database holds no `current` key."""


# --- the key-encryption key -------------------------------------------------------------------


def load_kek(settings: Settings, *, create: bool = True) -> bytes:
    """KEY_ENCRYPTION_KEY, or the file `keys/kek`, created (mode 0600) if absent and `create`."""
    if settings.key_encryption_key is not None:
        return _decode_kek(settings.key_encryption_key.get_secret_value(), "key_encryption_key")
    path = settings.key_encryption_key_file
    if not path.exists():
        if not create:
            raise ConfigError(
                f"key_encryption_key: not set, and {path} does not exist "
                "(run from the directory the server runs in, or set AUTHSERVER_KEY_ENCRYPTION_KEY)"
            )
        _create_kek_file(path)
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"key_encryption_key: cannot read {path}: {exc.__class__.__name__}"
        ) from None
    return _decode_kek(text, f"key_encryption_key (file {path})")


def _decode_kek(text: str, name: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ConfigError(f"{name}: must be the URL-safe base64 of 32 random bytes")
    return raw


def _create_kek_file(path: Path) -> None:
    """Write a fresh KEK atomically: a concurrent first start keeps whichever file landed first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def encrypt_private_key(kek: bytes, kid: str, pem: bytes) -> bytes:
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(kek).encrypt(nonce, pem, kid.encode())


def decrypt_private_key(kek: bytes, kid: str, blob: bytes) -> bytes:
    try:
        return AESGCM(kek).decrypt(blob[:12], blob[12:], kid.encode())
    except InvalidTag:
        raise KeyDecryptionError(
            f"KEY_ENCRYPTION_KEY does not decrypt signing key {kid}: "
            "it is not the key these keys were stored with"
        ) from None


# --- generation and bootstrap -----------------------------------------------------------------


def generate_key(size: int) -> RSAKey:
    return RSAKey.generate_key(size, parameters={"use": "sig", "alg": ALG}, auto_kid=True)


def new_key_record(key: RSAKey, kek: bytes, state: str, now: datetime) -> SigningKeyRecord:
    kid = key.kid
    assert kid is not None
    public = key.as_dict(private=False)
    return SigningKeyRecord(
        kid=kid,
        state=state,
        alg=ALG,
        size=key.raw_value.key_size,
        public_jwk=json.dumps(public, sort_keys=True),
        private_key=encrypt_private_key(kek, kid, key.as_pem(private=True)),
        created_at=now,
        activated_at=now if state == "current" else None,
        retired_at=None,
        revoked_at=None,
    )


async def ensure_signing_keys(db: Database, settings: Settings, kek: bytes, now: datetime) -> None:
    """Make sure a `current` and a `next` key exist (SPEC: `db upgrade` and `serve` both do).

    Processes racing on an empty database each try to insert; the unique indexes let exactly one
    `current` and one `next` in, and the losers simply use the winners' keys.
    """
    records = await key_store.list_keys(db)
    for record in records:  # refuse to go on with a KEK that cannot open the existing keys
        if record.state != "revoked":
            decrypt_private_key(kek, record.kid, record.private_key)
    states = {record.state for record in records}
    for state in ("current", "next"):
        if state not in states:
            key = await asyncio.to_thread(generate_key, settings.signing_key_size)
            await key_store.insert_key(db, new_key_record(key, kek, state, now))


# --- the key ring -----------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyRing:
    signing_key: RSAKey
    kid: str
    activated_at: datetime | None
    jwks: bytes  # the JWKS document, public members only
    public_keys: KeySet  # the same published keys, for verifying our own tokens (introspection)
    states: frozenset[tuple[str, str]]  # what it was built from, to notice changes
    changes_at: datetime | None  # when the next retired key leaves the JWKS (rebuild then)


def published_until(record: SigningKeyRecord, settings: Settings) -> datetime | None:
    """When `record` leaves the JWKS: None while `next` or `current` (published indefinitely).

    A retired key stays until every token it signed has expired: a process may go on signing
    with it for up to KEYS_REFRESH_INTERVAL after the rotation, and its tokens then live for
    ACCESS_TOKEN_TTL (client TTLs are capped at it); RETIRED_KEY_LEEWAY covers clock skew and a
    missed poll. A revoked key is unpublished at once.
    """
    if record.state in ("next", "current"):
        return None
    if record.state == "retired" and record.retired_at is not None:
        window = timedelta(seconds=settings.access_token_ttl + settings.keys_refresh_interval)
        return record.retired_at + window + RETIRED_KEY_LEEWAY
    return record.created_at  # revoked: never published again


def is_published(record: SigningKeyRecord, settings: Settings, now: datetime) -> bool:
    until = published_until(record, settings)
    return until is None or now < until


def public_jwks(
    records: list[SigningKeyRecord], settings: Settings, now: datetime
) -> list[dict[str, Any]]:
    """The JWKS `keys` array: public members of every published key."""
    return [
        json.loads(record.public_jwk) for record in records if is_published(record, settings, now)
    ]


def build_key_ring(
    records: list[SigningKeyRecord], settings: Settings, kek: bytes, now: datetime
) -> KeyRing:
    current = [record for record in records if record.state == "current"]
    if not current:
        raise NoSigningKey("no current signing key in the database; run `authserver db upgrade`")
    pem = decrypt_private_key(kek, current[0].kid, current[0].private_key)
    signing_key = RSAKey.import_key(pem, parameters={"use": "sig", "alg": ALG})
    signing_key.ensure_kid()
    if signing_key.kid != current[0].kid:
        raise KeyDecryptionError(f"signing key {current[0].kid} does not match its kid")
    published = public_jwks(records, settings, now)
    jwks = json.dumps({"keys": published}, separators=(",", ":")).encode()
    public_keys = KeySet.import_key_set({"keys": published})
    states = frozenset((record.kid, record.state) for record in records)
    ends = [
        until
        for record in records
        if record.state == "retired" and (until := published_until(record, settings)) is not None
        if until > now
    ]
    return KeyRing(
        signing_key,
        current[0].kid,
        current[0].activated_at,
        jwks,
        public_keys,
        states,
        min(ends, default=None),
    )


async def load_key_ring(db: Database, settings: Settings, kek: bytes, now: datetime) -> KeyRing:
    return build_key_ring(await key_store.list_keys(db), settings, kek, now)
