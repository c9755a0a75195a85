"""Signing-key lifecycle: rotation and revocation (SPEC "Signing keys").

States: next → current → retired → (unpublished once its last token has expired), and revoked.
Rotation is safe by construction: the `next` key is promoted only once it has been in the JWKS
for JWKS_MAX_AGE (counted from its creation), so a resource server's cached JWKS already holds
it. `--now` skips that wait for emergencies. Revocation unpublishes a key at once; revoking the
`current` key promotes `next` in the same transaction so signing never stops.

Every operation first proves KEY_ENCRYPTION_KEY opens the stored keys, so a wrong key-encryption
key can never add a key the servers could not decrypt.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from authserver.keys.bootstrap import generate_key, new_key_record
from authserver.keys.kek import Kek, KeyEncryptionKeys, open_private_key, sealing_kek
from authserver.models import SigningKeyRecord
from authserver.observability.audit import AuditEvent
from authserver.settings import Settings
from authserver.store import keys as key_store
from authserver.store.db import Database


class KeyLifecycleError(Exception):
    """An operator's key command cannot be done; the message says why, in one line."""


class UnknownKey(KeyLifecycleError):
    """No stored key has the kid named."""


class RotationTooEarly(KeyLifecycleError):
    def __init__(self, next_kid: str, wait_seconds: int, settings: Settings) -> None:
        self.wait_seconds = wait_seconds
        super().__init__(
            f"refusing to rotate: the next key {next_kid} has been published for less than "
            f"JWKS_MAX_AGE ({settings.jwks_max_age} s); resource servers may not have it yet. "
            f"Wait {wait_seconds} s, or use --now in an emergency"
        )


@dataclass(frozen=True)
class Rotation:
    retired_kid: str  # the old current (state `retired`, or `revoked` after `keys revoke`)
    current_kid: str  # the promoted key, signing from now on
    next_kid: str  # the key created to be promoted next time
    early_by: int  # seconds the promoted key was short of JWKS_MAX_AGE (0 = fully safe)


def rotation_event(rotation: Rotation, actor: str, *, forced: bool) -> AuditEvent:
    """The audit record of a rotation (kids only: they are public)."""
    return AuditEvent(
        "key.rotated",
        "success",
        actor=actor,
        subject=rotation.current_kid,
        detail={
            "retired": rotation.retired_kid,
            "next": rotation.next_kid,
            "forced": forced,
            "early_by_seconds": rotation.early_by,
        },
    )


def next_rotation_wait(records: list[SigningKeyRecord], settings: Settings, now: datetime) -> int:
    """Seconds until `keys rotate` is allowed (0 = now)."""
    next_key = _one(records, "next")
    published_for = (now - next_key.created_at).total_seconds()
    return max(0, math.ceil(settings.jwks_max_age - published_for))


async def rotate(
    db: Database,
    settings: Settings,
    keks: KeyEncryptionKeys,
    now: datetime,
    *,
    force: bool = False,
) -> Rotation:
    """Promote `next`, retire `current`, create a new `next` (SPEC: `keys rotate [--now]`)."""
    records = await key_store.list_keys(db)
    _check_keks(records, keks)
    current, next_key = _one(records, "current"), _one(records, "next")
    wait = next_rotation_wait(records, settings, now)
    if wait and not force:
        raise RotationTooEarly(next_key.kid, wait, settings)
    new_next = await _new_next_key(settings, sealing_kek(keks, records), now)
    await key_store.promote_next(
        db,
        current=current,
        next_kid=next_key.kid,
        new_next=new_next,
        now=now,
        old_current_becomes="retired",
    )
    return Rotation(current.kid, next_key.kid, new_next.kid, wait)


@dataclass(frozen=True)
class Revocation:
    kid: str
    previous_state: str
    promoted: Rotation | None  # set when the revoked key was `current`
    new_next_kid: str | None  # set when a new `next` was created


async def revoke(
    db: Database, settings: Settings, keks: KeyEncryptionKeys, kid: str, now: datetime
) -> Revocation:
    """Unpublish `kid` at once (SPEC: `keys revoke KID`); signing never stops."""
    records = await key_store.list_keys(db)
    target = next((record for record in records if record.kid == kid), None)
    if target is None:
        raise UnknownKey(f"no signing key with kid {kid}; see `authserver keys list`")
    if target.state == "revoked":
        raise KeyLifecycleError(f"key {kid} is already revoked")
    _check_keks(records, keks)
    kek = sealing_kek(keks, records)
    if target.state == "current":
        next_key = _one(records, "next")
        new_next = await _new_next_key(settings, kek, now)
        await key_store.promote_next(
            db,
            current=target,
            next_kid=next_key.kid,
            new_next=new_next,
            now=now,
            old_current_becomes="revoked",
        )
        wait = next_rotation_wait(records, settings, now)
        return Revocation(kid, "current", Rotation(kid, next_key.kid, new_next.kid, wait), None)
    new_next_record = await _new_next_key(settings, kek, now) if target.state == "next" else None
    await key_store.revoke_key(
        db,
        kid=kid,
        state=target.state,
        now=now,
        new_next=new_next_record,
        current=_one(records, "current") if new_next_record is not None else None,
    )
    return Revocation(
        kid, target.state, None, new_next_record.kid if new_next_record is not None else None
    )


async def rotate_if_due(
    db: Database, settings: Settings, keks: KeyEncryptionKeys, now: datetime
) -> Rotation | None:
    """KEY_ROTATION_INTERVAL: rotate once the current key is that old and rotation is safe.

    Every serving process calls this; the conditional UPDATEs let exactly one of them rotate.
    """
    if not settings.key_rotation_interval:
        return None
    records = await key_store.list_keys(db)
    current = _one(records, "current")
    activated = current.activated_at or current.created_at
    if now < activated + timedelta(seconds=settings.key_rotation_interval):
        return None
    if next_rotation_wait(records, settings, now):
        return None
    try:
        return await rotate(db, settings, keks, now)
    except key_store.KeyStateConflict:
        return None  # another process rotated first


def _one(records: list[SigningKeyRecord], state: str) -> SigningKeyRecord:
    found = [record for record in records if record.state == state]
    if not found:
        raise KeyLifecycleError(
            f"no {state} signing key in the database; run `authserver db upgrade` first"
        )
    return found[0]


def _check_keks(records: list[SigningKeyRecord], keks: KeyEncryptionKeys) -> None:
    """Raises KeyDecryptionError unless `keks` open every key that may still sign."""
    for record in records:
        if record.state in ("current", "next"):
            open_private_key(keks, record)


async def _new_next_key(settings: Settings, kek: Kek, now: datetime) -> SigningKeyRecord:
    key = await asyncio.to_thread(generate_key, settings.signing_key_size)
    return new_key_record(key, kek, "next", now)
