"""Browser login sessions of /authorize (SPEC "Sign-in page"): start one after a password check,
find the live one behind a cookie, end one (POST /logout) or all of a user's (password change,
disable, `tokens revoke --user`).

Only the SHA-256 of the cookie's value is stored. A session lasts SESSION_TTL from the sign-in
(absolute, not sliding) and, once ended, is never reopened.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import LargeBinary, Update, Uuid, bindparam, insert, literal, select, update

from authserver.models import LoginSession
from authserver.store.db import Database
from authserver.store.dialect import Prepared
from authserver.store.liveness import live_session
from authserver.store.refresh import CredentialsChanged
from authserver.store.tables import UTCDateTime, authorization_requests, login_sessions, users

ls = login_sessions

LOGOUT = "logout"
REPLACED = "replaced"  # a new sign-in in the same browser
PASSWORD_CHANGED = "password_changed"  # noqa: S105 (a reason, not a password)
USER_DISABLED = "user_disabled"
OPERATOR_REVOKED = "operator_revoked"  # `authserver tokens revoke --user`


# GET /authorize with a session cookie: a hot path (a session reuse), so a Prepared statement.
_LIVE_SESSION = Prepared(
    select(ls.c.id, ls.c.user_id, users.c.username, ls.c.auth_time)
    .select_from(ls.join(users, users.c.id == ls.c.user_id))
    .where(
        ls.c.token_hash == bindparam("token_hash", type_=LargeBinary),
        live_session(ls, users, bindparam("now", type_=UTCDateTime)),
    )
)


async def find_live_session(db: Database, token_hash: bytes, now: datetime) -> LoginSession | None:
    """The live session whose cookie hashes to `token_hash` (one read, joined with its user)."""
    values = {"token_hash": token_hash, "now": now}
    row = await db.fetch_row(_LIVE_SESSION, values, read_only=True)
    if row is None:
        return None
    return LoginSession(row["id"], row["user_id"], row["username"], row["auth_time"])


async def start_session(
    db: Database,
    *,
    user_id: uuid.UUID,
    verified_password_hash: str,
    token_hash: bytes,
    now: datetime,
    ttl: int,
    replaces: bytes | None,
    answering: uuid.UUID | None,
) -> uuid.UUID:
    """Record a sign-in: a new session, in one transaction with ending the browser's previous
    session (`replaces`, its cookie's hash: a new id at every sign-in, so no session fixation)
    and attaching the session to the pending authorization request it answers (`answering`).

    As for a password-grant login (store/refresh.py `start_family`), the session is inserted
    only if the user row still holds `verified_password_hash` and is enabled, in the same
    statement, under a share lock on the user row: a concurrent password change or disable
    either commits first (CredentialsChanged) or waits, then ends this session with the others.
    """
    session_id = uuid.uuid4()
    row = select(
        literal(session_id, Uuid),
        literal(token_hash),
        users.c.id,
        literal(now, UTCDateTime),
        literal(now + timedelta(seconds=ttl), UTCDateTime),
    ).where(
        users.c.id == user_id,
        users.c.password_hash == verified_password_hash,
        users.c.disabled.is_(False),
    )
    columns = ["id", "token_hash", "user_id", "auth_time", "expires_at"]
    async with db.transaction() as conn:
        started = await conn.execute(
            insert(ls).from_select(columns, row.with_for_update(read=True))
        )
        if started.rowcount != 1:
            raise CredentialsChanged(user_id)
        if replaces is not None:
            await conn.execute(
                update(ls)
                .where(ls.c.token_hash == replaces, ls.c.ended_at.is_(None))
                .values(ended_at=now, ended_reason=REPLACED)
            )
        if answering is not None:
            requests = authorization_requests
            await conn.execute(
                update(requests).where(requests.c.id == answering).values(session_id=session_id)
            )
    return session_id


async def end_session(db: Database, session_id: uuid.UUID, *, reason: str, now: datetime) -> bool:
    """End one session (POST /logout). True if it was still open."""
    async with db.statement() as conn:
        result = await conn.execute(
            update(ls)
            .where(ls.c.id == session_id, ls.c.ended_at.is_(None))
            .values(ended_at=now, ended_reason=reason)
        )
    return bool(result.rowcount)


def end_user_sessions(user_id: uuid.UUID, *, reason: str, now: datetime) -> Update:
    """The statement that ends every open session of a user, run inside the caller's
    transaction (a password change or disable ends them in the same commit, SPEC), before the
    families are revoked: a code exchange that holds the session's share lock then commits its
    family first, and the revocation that follows sees it."""
    return (
        update(ls)
        .where(ls.c.user_id == user_id, ls.c.ended_at.is_(None))
        .values(ended_at=now, ended_reason=reason)
    )
