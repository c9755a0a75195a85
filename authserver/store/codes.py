"""Authorization codes (RFC 6749 §4.1.2): issue one, and redeem one at /token.

Only the SHA-256 of a code is stored, with what it is bound to: the client, the redirect URI,
the PKCE challenge, the user, the scope and the login session (whose time of sign-in the
refresh-token family counts from).

Redeeming is one transaction that begins with one conditional `UPDATE … SET used_at … RETURNING`:
only an unused code of the presenting client matches, so of two concurrent exchanges exactly one
gets the row (PostgreSQL: the second waits for the first's row lock, then finds it used; SQLite:
BEGIN IMMEDIATE serialises them). The code is burnt by that statement whatever follows: an
exchange refused afterwards (expired, wrong verifier or redirect URI, session ended) still uses
it up, as Keycloak does. The family starts, and is linked to the code, in the same transaction,
so the loser of a race always finds the winner's family to revoke (RFC 6749 §4.1.2).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, LargeBinary, String, Uuid, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from authserver.models import CodeGrant, LoginSession, PendingAuthorization, RefreshGrant
from authserver.store import consents
from authserver.store.authorization_requests import take_request
from authserver.store.db import Database
from authserver.store.dialect import Prepared
from authserver.store.refresh import CredentialsChanged, OwnerGone, start_session_family
from authserver.store.tables import UTCDateTime, authorization_codes

ac = authorization_codes

_COLUMNS = (
    ac.c.id,
    ac.c.client_id,
    ac.c.user_id,
    ac.c.session_id,
    ac.c.redirect_uri,
    ac.c.redirect_uri_sent,
    ac.c.code_challenge,
    ac.c.scope,
    ac.c.auth_time,
    ac.c.expires_at,
    ac.c.used_at,
    ac.c.family_id,
)


def _code(row: Sequence[Any]) -> CodeGrant:
    return CodeGrant(*row)


@dataclass(frozen=True)
class NewCode:
    """What a code is issued for (the request's part; the session gives the user and time)."""

    code_hash: bytes
    client_id: str
    redirect_uri: str
    redirect_uri_sent: bool
    code_challenge: str
    scope: str


def _values(code: NewCode, session: LoginSession, now: datetime, ttl: int) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "code_hash": code.code_hash,
        "client_id": code.client_id,
        "user_id": session.user_id,
        "session_id": session.id,
        "redirect_uri": code.redirect_uri,
        "redirect_uri_sent": code.redirect_uri_sent,
        "code_challenge": code.code_challenge,
        "scope": code.scope,
        "auth_time": session.auth_time,
        "issued_at": now,
        "expires_at": now + timedelta(seconds=ttl),
    }


# A session reuse's one write (GET /authorize with nothing to ask): a Prepared statement.
_TYPES: dict[str, Any] = {
    "id": Uuid,
    "code_hash": LargeBinary,
    "client_id": String,
    "user_id": Uuid,
    "session_id": Uuid,
    "redirect_uri": String,
    "redirect_uri_sent": Boolean,
    "code_challenge": String,
    "scope": String,
    "auth_time": UTCDateTime,
    "issued_at": UTCDateTime,
    "expires_at": UTCDateTime,
}
_INSERT_CODE = Prepared(
    insert(ac)
    .values({name: bindparam(f"v_{name}", type_=kind) for name, kind in _TYPES.items()})
    .returning(ac.c.id)
)


async def issue_code(
    db: Database, code: NewCode, session: LoginSession, *, now: datetime, ttl: int
) -> None:
    """GET /authorize with a live session and nothing to ask: one INSERT."""
    values = {f"v_{name}": value for name, value in _values(code, session, now, ttl).items()}
    try:
        await db.fetch_row(_INSERT_CODE, values)
    except db.dialect.integrity_errors as exc:  # a foreign key: the client, user or session is gone
        raise OwnerGone(code.client_id) from exc


async def issue_code_for_request(
    db: Database,
    *,
    handle_hash: bytes,
    code_hash: bytes,
    session: LoginSession,
    now: datetime,
    ttl: int,
    remember_scope: str | None = None,
) -> PendingAuthorization | None:
    """Answer a pending request (sign-in or consent page) with a code, in one transaction: take
    the request (so a form completes once), remember the approval when `remember_scope` is
    given (the consent page's Allow), insert the code. None when the request is gone (answered
    already, expired, or not this session's)."""
    try:
        return await _answer(db, handle_hash, code_hash, session, now, ttl, remember_scope)
    except IntegrityError as exc:  # a foreign key: the user or session is gone meanwhile
        raise OwnerGone(session.username) from exc


async def _answer(
    db: Database,
    handle_hash: bytes,
    code_hash: bytes,
    session: LoginSession,
    now: datetime,
    ttl: int,
    remember_scope: str | None,
) -> PendingAuthorization | None:
    async with db.transaction() as conn:
        pending = await take_request(conn, handle_hash, session.id, now)
        if pending is None:
            return None
        if remember_scope is not None:
            await consents.remember(
                conn,
                db.dialect,
                user_id=session.user_id,
                client_id=pending.client_id,
                scope=remember_scope,
                now=now,
            )
        code = NewCode(
            code_hash,
            pending.client_id,
            pending.redirect_uri,
            pending.redirect_uri_sent,
            pending.code_challenge,
            pending.scope,
        )
        await conn.execute(insert(ac).values(_values(code, session, now, ttl)))
    return pending


@dataclass(frozen=True)
class Redeemed:
    code: CodeGrant
    family: RefreshGrant


@dataclass(frozen=True)
class Refused:
    """The code was burnt by this presentation, but does not give tokens."""

    code: CodeGrant
    reason: str  # for the log: expired, redirect_uri, code_verifier, session_ended


async def redeem_code(
    db: Database,
    *,
    code_hash: bytes,
    client_id: str,
    now: datetime,
    problem: Callable[[CodeGrant], str | None],
    token_hash: bytes | None,
    token_ttl: int,
    family_max_age: int,
) -> Redeemed | Refused | None:
    """Use the code up and, if `problem(code)` finds none and its session is live, start its
    family (with a first refresh token when `token_hash` is given). None: no unused code of
    this client has this hash (unknown, another client's, or used before: `find_code` tells)."""
    consume = (
        update(ac)
        .where(ac.c.code_hash == code_hash, ac.c.client_id == client_id, ac.c.used_at.is_(None))
        .values(used_at=now)
        .returning(*_COLUMNS)
    )
    try:
        async with db.transaction() as conn:
            row = (await conn.execute(consume)).first()
            if row is None:
                return None
            code = _code(row)
            reason = problem(code)
            if reason is not None:
                return Refused(code, reason)
            if code.session_id is None:
                return Refused(code, "session_ended")
            try:
                family = await start_session_family(
                    conn,
                    session_id=code.session_id,
                    user_id=code.user_id,
                    client_id=client_id,
                    scope=code.scope,
                    token_hash=token_hash,
                    now=now,
                    token_ttl=token_ttl,
                    family_expires_at=code.auth_time + timedelta(seconds=family_max_age),
                )
            except CredentialsChanged:
                return Refused(code, "session_ended")
            await conn.execute(
                update(ac).where(ac.c.id == code.id).values(family_id=family.family_id)
            )
    except IntegrityError as exc:  # a foreign key: the client was deleted meanwhile
        raise OwnerGone(client_id) from exc
    return Redeemed(code, family)


async def find_code(db: Database, code_hash: bytes) -> CodeGrant | None:
    """A code read back to explain a refused exchange (replay, another client's code)."""
    async with db.read() as conn:
        row = (await conn.execute(select(*_COLUMNS).where(ac.c.code_hash == code_hash))).first()
    return None if row is None else _code(row)
