"""Refresh-token rotation, the hot path: use up the presented token and store its successor,
atomically (RFC 9700 §4.14.2).

The consuming statement is one conditional `UPDATE … RETURNING`: only a token that is usable
(store/liveness.py) and of the presenting client matches, so of two concurrent rotations of one
token exactly one gets a row back. On PostgreSQL that UPDATE and the INSERT of the successor are
one statement (a data-modifying CTE), compiled once from the expressions below and run on the
driver in autocommit: one round trip per refresh. SQLite has no data-modifying CTEs: the same
UPDATE and INSERT run as two statements inside one BEGIN IMMEDIATE transaction.

With a grace window (REFRESH_REUSE_GRACE > 0) a refused rotation gets one more, rarer statement,
`replay`: the immediately previous token, presented within the window counted from its own
rotation while its successor is still unused, revokes that successor and gets a fresh one. The
successor's row lock decides every race: the successor's own rotation, and any replay of its
parent, each update that one row only while it is unused and unrevoked, so exactly one of them
wins.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    FromClause,
    Insert,
    LargeBinary,
    Select,
    String,
    Update,
    Uuid,
    bindparam,
    case,
    exists,
    insert,
    literal_column,
    or_,
    select,
    true,
    update,
)

from authserver.models import RefreshGrant, StaleClient
from authserver.store.db import Database
from authserver.store.dialect import Prepared
from authserver.store.liveness import replayable_refresh_token, usable_refresh_token
from authserver.store.tables import UTCDateTime, clients, refresh_tokens

rt = refresh_tokens

# Every value is a named parameter, so the PostgreSQL statements compile once (store/dialect.py).
NOW = bindparam("now", type_=UTCDateTime)
OLD_HASH = bindparam("old_hash", type_=LargeBinary)
CLIENT_ID = bindparam("client", type_=String)  # not a column name: INSERT reserves those
NEW_ID = bindparam("new_id", type_=Uuid)
NEW_HASH = bindparam("new_hash", type_=LargeBinary)
NEW_EXPIRES_AT = bindparam("new_expires_at", type_=UTCDateTime)  # before the family's limit
WINDOW_START = bindparam("window_start", type_=UTCDateTime)  # now - REFRESH_REUSE_GRACE
PARENT_ID = bindparam("parent", type_=Uuid)
CLIENT_VERSION = bindparam("client_version", type_=BigInteger)

# PostgreSQL's row version of the client: `xmin` changes with every UPDATE of the row, whoever
# makes it (the CLI, or SQL by hand); xid is unsigned 32-bit, hence bigint.
CLIENT_ROW_VERSION = literal_column("clients.xmin::text::bigint", BigInteger)

# What the successor needs of its parent: the family's immutable copies and the parent's id.
PARENT_COLUMNS = (rt.c.id, rt.c.family_id, rt.c.user_id, rt.c.scope, rt.c.family_expires_at)


def consume() -> Update:
    """Mark the presented token used, if rotation may use it."""
    return (
        update(rt)
        .where(rt.c.token_hash == OLD_HASH, rt.c.client_id == CLIENT_ID)
        .where(usable_refresh_token(rt, NOW))
        .values(rotated_at=NOW)
        .returning(*PARENT_COLUMNS)
    )


def insert_successor(parent: FromClause) -> Insert:
    """The new token of `parent`'s family (rows with PARENT_COLUMNS); it never outlives the
    family (REFRESH_FAMILY_MAX_AGE)."""
    expires_at = case(
        (parent.c.family_expires_at > NEW_EXPIRES_AT, NEW_EXPIRES_AT),
        else_=parent.c.family_expires_at,
    )
    row = select(
        NEW_ID,
        NEW_HASH,
        parent.c.family_id,
        parent.c.id,
        CLIENT_ID,
        parent.c.user_id,
        parent.c.scope,
        NOW,
        expires_at,
        parent.c.family_expires_at,
    )
    columns = [
        "id",
        "token_hash",
        "family_id",
        "parent_id",
        "client_id",
        "user_id",
        "scope",
        "issued_at",
        "expires_at",
        "family_expires_at",
    ]
    return (
        insert(rt)
        .from_select(columns, row)
        .returning(rt.c.family_id, rt.c.user_id, rt.c.scope, rt.c.expires_at)
    )


def presented_replayable() -> Select[Any]:
    """The presented token, if a grace-window replay of it may be answered."""
    return (
        select(*PARENT_COLUMNS)
        .where(rt.c.token_hash == OLD_HASH, rt.c.client_id == CLIENT_ID)
        .where(replayable_refresh_token(rt, NOW, WINDOW_START))
    )


def supersede_successor(parent_id: Any, family_id: Any) -> Update:
    """Revoke the presented token's successor, if it is still unused and unrevoked. Its row
    lock is what every race is decided on."""
    return (
        update(rt)
        .where(
            rt.c.family_id == family_id,
            rt.c.parent_id == parent_id,
            rt.c.rotated_at.is_(None),
            rt.c.revoked_at.is_(None),
        )
        .values(revoked_at=NOW)
        .returning(rt.c.id)
    )


def _rotate_one_statement() -> Prepared:
    old = consume().cte("old")
    return Prepared(insert_successor(old))


def _replay_one_statement() -> Prepared:
    presented = presented_replayable().cte("presented")
    superseded = supersede_successor(presented.c.id, presented.c.family_id).cte("superseded")
    source = select(presented).where(exists(select(superseded.c.id))).subquery("replayed")
    return Prepared(insert_successor(source))


def _rotate_confirming_client() -> Prepared:
    """The rotation, only if the client's row is still at the version the request was
    authenticated against; it also returns the client's current version (no row: the client
    is gone), so a stale cached client is noticed in the same round trip, before anything
    was written (clients/cache.py)."""
    client = (
        select(CLIENT_ROW_VERSION.label("client_version"))
        .where(clients.c.client_id == CLIENT_ID)
        .cte("client")
    )
    confirmed = exists(
        select(1).select_from(client).where(client.c.client_version == CLIENT_VERSION)
    )
    old = consume().where(confirmed).cte("old")
    new = insert_successor(old).cte("new")
    return Prepared(select(client.c.client_version, new).select_from(client.outerjoin(new, true())))


ROTATE_ONE_STATEMENT = _rotate_one_statement()
ROTATE_CONFIRMING_CLIENT = _rotate_confirming_client()
REPLAY_ONE_STATEMENT = _replay_one_statement()
PARENT_BY_ID = select(*PARENT_COLUMNS).where(rt.c.id == PARENT_ID).subquery("parent")


async def rotate(
    db: Database,
    *,
    old_hash: bytes,
    new_hash: bytes,
    client_id: str,
    now: datetime,
    token_ttl: int,
    grace: int = 0,
    client_version: int | None = None,
) -> RefreshGrant | None:
    """Use up the presented token and store its successor, atomically.

    `client_version` (PostgreSQL: the client row's version it was authenticated against, see
    `store.clients.get_versioned_client`): the rotation happens only if the client's row is still
    at that version; raises StaleClient, having written nothing, if it changed or is gone.

    With `grace` > 0 (seconds), a token rotated less than `grace` seconds ago whose successor is
    still unused is replayed instead (see `replay`). Returns None when the token may not be
    used (unknown, used, revoked, expired, another client's, or its family or user is revoked or
    disabled); `refresh.find_token` tells which.
    """
    values: dict[str, Any] = {
        "old_hash": old_hash,
        "client": client_id,
        "now": now,
        "new_id": uuid.uuid4(),
        "new_hash": new_hash,
        "new_expires_at": now + timedelta(seconds=token_ttl),
    }
    if db.dialect.modifying_ctes and client_version is not None:
        row = await db.fetch_row(
            ROTATE_CONFIRMING_CLIENT, {**values, "client_version": client_version}
        )
        if row is None or row["client_version"] != client_version:
            raise StaleClient(client_id)
        if row["family_id"] is None:
            row = None
    elif db.dialect.modifying_ctes:
        row = await db.fetch_row(ROTATE_ONE_STATEMENT, values)
    else:
        async with db.transaction() as conn:  # BEGIN IMMEDIATE: no other writer until it ends
            parent = (await conn.execute(consume(), values)).first()
            if parent is None:
                row = None
            else:
                inserted = await conn.execute(
                    insert_successor(PARENT_BY_ID), {**values, "parent": parent.id}
                )
                row = cast(Mapping[str, Any], inserted.one()._mapping)
    if row is None and grace > 0:
        return await replay(db, values, window_start=now - timedelta(seconds=grace))
    return None if row is None else _grant(row, client_id)


async def replay(
    db: Database, values: dict[str, Any], *, window_start: datetime
) -> RefreshGrant | None:
    """The grace window (SPEC "Grace window"): a client whose network lost the response to a
    rotation presents the same token again.

    Allowed only for the immediately previous token: rotated less than REFRESH_REUSE_GRACE ago
    (the window counts from its first rotation, so replays cannot stretch it), not revoked, not
    expired, in a live family of an enabled user, and with an unused, unrevoked successor. That
    successor is revoked and a new one (a fresh random token, never one handed out before) takes
    its place. A token two rotations old has no unused successor, so it never qualifies.
    """
    values = {**values, "window_start": window_start}
    if db.dialect.modifying_ctes:
        row = await db.fetch_row(REPLAY_ONE_STATEMENT, values)
        return None if row is None else _grant(row, values["client"])
    async with db.transaction() as conn:  # BEGIN IMMEDIATE: no other writer until it ends
        presented = (await conn.execute(presented_replayable(), values)).first()
        if presented is None:
            return None
        superseded = await conn.execute(
            supersede_successor(presented.id, presented.family_id), values
        )
        if superseded.first() is None:
            return None
        inserted = await conn.execute(
            insert_successor(PARENT_BY_ID), {**values, "parent": presented.id}
        )
        return _grant(inserted.one()._mapping, values["client"])


async def rotatable_scope(
    db: Database, *, token_hash: bytes, client_id: str, now: datetime, grace: int = 0
) -> str | None:
    """The scope of the presented token if `rotate` would accept it now (usable, or with `grace`
    a replayable token whose successor is unused and unrevoked), else None.

    The grant checks a requested scope against it before rotating, so that an invalid_scope
    answer leaves the token usable. A token the rotation would refuse gets no scope check at all:
    its refusal (reuse, for a dead token) must not be masked by invalid_scope (security review,
    finding 5). The same expressions as the rotation's own (store/liveness.py); a change between
    this read and the rotation is the rotation's to decide.
    """
    accepted = usable_refresh_token(rt, NOW)
    if grace > 0:
        successor = rt.alias("successor")
        unused_successor = exists(
            select(successor.c.id).where(
                successor.c.family_id == rt.c.family_id,
                successor.c.parent_id == rt.c.id,
                successor.c.rotated_at.is_(None),
                successor.c.revoked_at.is_(None),
            )
        )
        accepted = or_(accepted, replayable_refresh_token(rt, NOW, WINDOW_START) & unused_successor)
    query = select(rt.c.scope).where(
        rt.c.token_hash == OLD_HASH, rt.c.client_id == CLIENT_ID, accepted
    )
    values = {
        "old_hash": token_hash,
        "client": client_id,
        "now": now,
        "window_start": now - timedelta(seconds=grace),
    }
    async with db.read() as conn:
        scope: str | None = (await conn.execute(query, values)).scalar_one_or_none()
    return scope


def _grant(row: Any, client_id: str) -> RefreshGrant:
    return RefreshGrant(
        row["family_id"], row["user_id"], client_id, row["scope"], row["expires_at"]
    )
