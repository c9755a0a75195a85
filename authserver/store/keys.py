"""Signing-key rows. The database enforces one `current` and one `next` (partial unique indexes).

Every state change is a conditional UPDATE on the state the caller saw (`WHERE kid = … AND state =
…`): two operators rotating at once both read the same keys, the first commit wins, and the
other's UPDATE matches no row, so it rolls back and reports the conflict. On PostgreSQL the same
transaction sends NOTIFY on `KEYS_CHANNEL`, delivered on commit, so every serving process reloads
at once instead of at its next poll (each listens with `postgresql.listen`).

A new key is sealed under the KEK of the `current` key (keys/kek.py), so the transaction that
stores it is also conditional on the current key's ciphertext being the one read: a `keys rekey`
that committed in between (every key moved to another KEK) makes it roll back, and a rekey never
leaves a key under the KEK it moved away from. A rekey itself is one transaction of UPDATEs, each
conditional on the row still holding the ciphertext it read, followed by a check that no key
under another KEK appeared meanwhile (a rotation's new key): all keys move, or none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from authserver.models import SigningKeyRecord
from authserver.store.db import Database
from authserver.store.tables import signing_keys

KEYS_CHANNEL = "authserver_keys"
_RACED = "another process changed the signing keys at the same time; see `authserver keys list`"


class KeyStateConflict(Exception):
    """A key was not in the state the caller saw: another process changed the keys first."""


async def list_keys(db: Database) -> list[SigningKeyRecord]:
    async with db.read() as conn:
        rows = (await conn.execute(select(signing_keys).order_by(signing_keys.c.created_at))).all()
    return [SigningKeyRecord(**row._mapping) for row in rows]


async def key_states(db: Database) -> frozenset[tuple[str, str]]:
    """(kid, state) pairs: the cheap poll that tells a process whether to reload its keys."""
    async with db.read() as conn:
        rows = (await conn.execute(select(signing_keys.c.kid, signing_keys.c.state))).all()
    return frozenset((row.kid, row.state) for row in rows)


async def insert_key(db: Database, record: SigningKeyRecord) -> bool:
    """Store a new key; False if another process stored one in that state first."""
    try:
        async with db.transaction() as conn:
            await conn.execute(insert(signing_keys).values(_values(record)))
            await _notify(db, conn)
    except IntegrityError:
        return False
    return True


async def promote_next(
    db: Database,
    *,
    current: SigningKeyRecord,
    next_kid: str,
    new_next: SigningKeyRecord,
    now: datetime,
    old_current_becomes: str,
) -> None:
    """current → `old_current_becomes` (retired or revoked), next → current, `new_next` → next.

    One transaction; raises KeyStateConflict (and changes nothing) if either key moved meanwhile,
    or if `current` was re-encrypted since it was read (`new_next` is sealed like it was).
    """
    ended = {"retired_at": now} if old_current_becomes == "retired" else {"revoked_at": now}
    try:
        async with db.transaction() as conn:
            await _move(
                conn, current.kid, "current", old_current_becomes, current.private_key, **ended
            )
            await _move(conn, next_kid, "next", "current", None, activated_at=now)
            await conn.execute(insert(signing_keys).values(_values(new_next)))
            await _notify(db, conn)
    except IntegrityError:  # a concurrent writer inserted a `next` first
        raise KeyStateConflict(_RACED) from None


async def revoke_key(
    db: Database,
    *,
    kid: str,
    state: str,
    now: datetime,
    new_next: SigningKeyRecord | None,
    current: SigningKeyRecord | None,
) -> None:
    """A `next` or `retired` key → revoked; for `next`, `new_next` takes its place, provided
    `current` (whose KEK sealed it) was not re-encrypted since it was read."""
    try:
        async with db.transaction() as conn:
            await _move(conn, kid, state, "revoked", None, revoked_at=now)
            if new_next is not None:
                assert current is not None
                await _move(conn, current.kid, "current", "current", current.private_key)
                await conn.execute(insert(signing_keys).values(_values(new_next)))
            await _notify(db, conn)
    except IntegrityError:
        raise KeyStateConflict(_RACED) from None


async def _move(
    conn: AsyncConnection,
    kid: str,
    from_state: str,
    to_state: str,
    sealed_as: bytes | None,
    **times: datetime,
) -> None:
    """`kid`: from_state → to_state, if it still is in from_state (and, with `sealed_as`, still
    holds that ciphertext); else KeyStateConflict. Locks the row until the transaction ends."""
    condition = [signing_keys.c.kid == kid, signing_keys.c.state == from_state]
    if sealed_as is not None:
        condition.append(signing_keys.c.private_key == sealed_as)
    result = await conn.execute(
        update(signing_keys).where(*condition).values(state=to_state, **times)
    )
    if result.rowcount != 1:
        raise KeyStateConflict(
            f"key {kid} is no longer {from_state}"
            + (" under the same KEK" if sealed_as is not None else "")
            + ": another process changed the signing keys at the same time; run it again"
        )


@dataclass(frozen=True)
class Reseal:
    """One key's private key sealed anew (same PEM, another KEK and nonce)."""

    kid: str
    read: bytes  # the ciphertext the row held when it was read
    sealed: bytes  # the new one


async def reseal(db: Database, changes: list[Reseal], kek_id: str) -> None:
    """Store every new ciphertext, naming `kek_id`, in one transaction; afterwards every key is
    sealed under `kek_id`. Raises KeyStateConflict (and changes nothing) if a row no longer holds
    the ciphertext read, or if a key under another KEK appeared meanwhile (a rotation)."""
    async with db.transaction() as conn:
        for change in changes:
            result = await conn.execute(
                update(signing_keys)
                .where(signing_keys.c.kid == change.kid, signing_keys.c.private_key == change.read)
                .values(private_key=change.sealed, kek_id=kek_id)
            )
            if result.rowcount != 1:
                raise KeyStateConflict(f"key {change.kid} changed during the rekey")
        others = await conn.execute(
            select(signing_keys.c.kid).where(
                or_(signing_keys.c.kek_id.is_(None), signing_keys.c.kek_id != kek_id)
            )
        )
        if others.first() is not None:
            raise KeyStateConflict("a signing key was added during the rekey")


async def _notify(db: Database, conn: AsyncConnection) -> None:
    """PostgreSQL: wake every serving process's key watcher when this transaction commits."""
    if db.dialect.notifies:
        await conn.execute(text("SELECT pg_notify(:channel, 'changed')"), {"channel": KEYS_CHANNEL})


def _values(record: SigningKeyRecord) -> dict[str, object]:
    return {name: getattr(record, name) for name in SigningKeyRecord.__slots__}
