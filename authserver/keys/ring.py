"""The KeyRing every request reads: an immutable snapshot of the key that signs (`current`) and
the JWKS document bytes, prepared once per key change; and the rules of publication (which keys
the JWKS holds, and until when).

Review finding 9: every published key is computed from its decrypted private key, never taken
from the row's `public_jwk` as it stands, so a row edited by someone who can write the database
but lacks the KEK cannot publish a key of theirs. Each build opens each published key (2 to 4
keys: `next`, `current`, retired ones until their tokens expire): an AES-GCM decryption and a
PEM parse, about 0.1 ms a key; only the signing key also gets RSA's full consistency check (tens
of milliseconds). A build happens at start, at each key change and when a retired key leaves the
JWKS, never per request, and off the event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from joserfc.jwk import RSAKey

from authserver.keys.kek import KeyDecryptionError, KeyEncryptionKeys, open_private_key
from authserver.keys.signer import CompactSigner, compact_signer
from authserver.models import SigningKeyRecord
from authserver.settings import Settings
from authserver.store import keys as key_store
from authserver.store.db import Database
from authserver.verify import ACCESS_TOKEN_TYPE, ALG, parse_jwks

RETIRED_KEY_LEEWAY = timedelta(seconds=60)


class NoSigningKey(Exception):
    """The database holds no `current` key."""


@dataclass(frozen=True)
class KeyRing:
    signing_key: RSAKey
    kid: str
    activated_at: datetime | None
    jwks: bytes  # the JWKS document, public members only
    verify_keys: Mapping[str, RSAKey]  # the same published keys by kid (introspection reads)
    states: frozenset[tuple[str, str]]  # what it was built from, to notice changes
    changes_at: datetime | None  # when the next retired key leaves the JWKS (rebuild then)

    @cached_property
    def signer(self) -> CompactSigner:
        """Access tokens' signer (RFC 9068 §2.1 header: `typ: at+jwt`, RS256, the key's kid),
        prepared once per ring."""
        header = {"typ": ACCESS_TOKEN_TYPE, "alg": ALG, "kid": self.kid}
        return compact_signer(self.signing_key, header)


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
    records: list[SigningKeyRecord], settings: Settings, keks: KeyEncryptionKeys, now: datetime
) -> list[dict[str, Any]]:
    """The JWKS `keys` array: the public half of every published key, computed from its private
    key. Raises KeyDecryptionError if one does not open or does not match its row."""
    return [
        public_jwk_of(record, keks) for record in records if is_published(record, settings, now)
    ]


def public_jwk_of(record: SigningKeyRecord, keks: KeyEncryptionKeys) -> dict[str, Any]:
    """`record`'s public JWK as computed from its private key; refused unless the row's kid (the
    RFC 7638 thumbprint) and stored public JWK are exactly that key's."""
    pem, _kek = open_private_key(keks, record)
    # RSA's consistency check is skipped: the PEM is authenticated by AES-GCM under a KEK, so it
    # is a key this server generated, and only its public numbers are read here.
    private = load_pem_private_key(pem, None, unsafe_skip_rsa_key_validation=True)
    if not isinstance(private, RSAPrivateKey):
        raise KeyDecryptionError(f"signing key {record.kid} is not an RSA key")
    public = RSAKey.import_key(private.public_key(), parameters={"use": "sig", "alg": ALG})
    public.ensure_kid()
    jwk = public.as_dict(private=False)
    if public.kid != record.kid or jwk != json.loads(record.public_jwk):
        raise KeyDecryptionError(
            f"signing key {record.kid}: the public key stored with it is not the public half of "
            "its private key (the row was altered); refusing to publish it"
        )
    return dict(sorted(jwk.items()))  # members in the stored order: the JWKS bytes stay the same


def build_key_ring(
    records: list[SigningKeyRecord], settings: Settings, keks: KeyEncryptionKeys, now: datetime
) -> KeyRing:
    current = [record for record in records if record.state == "current"]
    if not current:
        raise NoSigningKey("no current signing key in the database; run `authserver db upgrade`")
    pem, _kek = open_private_key(keks, current[0])
    signing_key = RSAKey.import_key(pem, parameters={"use": "sig", "alg": ALG})
    signing_key.ensure_kid()
    if signing_key.kid != current[0].kid:
        raise KeyDecryptionError(f"signing key {current[0].kid} does not match its kid")
    published = public_jwks(records, settings, keks, now)
    jwks = json.dumps({"keys": published}, separators=(",", ":")).encode()
    verify_keys = parse_jwks(jwks)
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
        verify_keys,
        states,
        min(ends, default=None),
    )


async def load_key_ring(
    db: Database, settings: Settings, keks: KeyEncryptionKeys, now: datetime
) -> KeyRing:
    records = await key_store.list_keys(db)
    return await asyncio.to_thread(build_key_ring, records, settings, keks, now)
