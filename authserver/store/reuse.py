"""A session reuse, the hot path of GET /authorize: a signed-in browser asks for a code for an
app that needs no consent page. Issue the code if the cookie's login session is live, and
record `code.issued`, in one statement.

On PostgreSQL it is one Prepared statement on the driver (store/dialect.py): the live session
(store/liveness.py), the code inserted from it, and the audit row inserted from both, as
data-modifying CTEs. On SQLite the same INSERTs run as two statements in one BEGIN IMMEDIATE
transaction. Either way no code is issued without its audit row, and nothing is written when
the session is not live (the caller then shows the sign-in page).

The audit row is the one `observability.audit.record` would write for `code.issued`: the same
columns, and a `detail` of `{"scope": …, "session": …}` with the keys sorted, as json.dumps
writes it (the session id, a UUID, needs no escaping).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    LargeBinary,
    String,
    Uuid,
    bindparam,
    cast,
    insert,
    select,
)

from authserver.store.codes import NewCode
from authserver.store.db import Database
from authserver.store.dialect import Prepared
from authserver.store.liveness import live_session
from authserver.store.refresh import OwnerGone
from authserver.store.tables import (
    UTCDateTime,
    audit_events,
    authorization_codes,
    login_sessions,
    users,
)

ac = authorization_codes
ls = login_sessions
CODE_ISSUED = "code.issued"

NOW = bindparam("now", type_=UTCDateTime)
SESSION = (
    select(ls.c.id, ls.c.user_id, ls.c.auth_time)
    .select_from(ls.join(users, users.c.id == ls.c.user_id))
    .where(
        ls.c.token_hash == bindparam("token_hash", type_=LargeBinary),
        live_session(ls, users, NOW),
    )
)


def insert_code(session: Any) -> Any:
    """The code, for the session row(s) of `session`."""
    row = select(
        bindparam("code_id", type_=Uuid),
        bindparam("code_hash", type_=LargeBinary),
        bindparam("client_id", type_=String),
        session.c.user_id,
        session.c.id,
        bindparam("redirect_uri", type_=String),
        bindparam("redirect_uri_sent", type_=Boolean),
        bindparam("code_challenge", type_=String),
        bindparam("scope", type_=String),
        session.c.auth_time,
        NOW,
        bindparam("expires_at", type_=UTCDateTime),
    )
    columns = [
        "id",
        "code_hash",
        "client_id",
        "user_id",
        "session_id",
        "redirect_uri",
        "redirect_uri_sent",
        "code_challenge",
        "scope",
        "auth_time",
        "issued_at",
        "expires_at",
    ]
    return insert(ac).from_select(columns, row).returning(ac.c.user_id, ac.c.session_id)


def insert_audit(source: Any, user_id: Any, subject: Any, session_id_text: Any) -> Any:
    """`code.issued` for the user `user_id` (a column of `source`, or a value), actor their
    username; `subject` and `session_id_text` are the user's and the session's ids as text."""
    detail = (
        bindparam("detail_prefix", type_=String)
        + session_id_text
        + bindparam("detail_suffix", type_=String)
    )
    row = (
        select(
            NOW,
            bindparam("event", type_=String),
            bindparam("outcome", type_=String),
            users.c.username,
            bindparam("client_id", type_=String),
            bindparam("ip", type_=String),
            subject,
            detail,
        )
        .select_from(source)
        .where(users.c.id == user_id)
    )
    columns = ["occurred_at", "event", "outcome", "actor", "client_id", "ip", "subject", "detail"]
    return insert(audit_events).from_select(columns, row).returning(audit_events.c.subject)


def _one_statement() -> Prepared:
    """PostgreSQL: session, code and audit row in one statement (the UUIDs cast to text are
    the canonical lower-case form, as str(uuid) writes them)."""
    session = SESSION.cte("live_session")
    code = insert_code(session).cte("code")
    source = code.join(users, users.c.id == code.c.user_id)
    as_text = (cast(code.c.user_id, String), cast(code.c.session_id, String))
    return Prepared(insert_audit(source, code.c.user_id, *as_text))


ISSUE_ONE_STATEMENT = _one_statement()


async def issue_code_if_signed_in(
    db: Database,
    code: NewCode,
    *,
    session_token_hash: bytes,
    now: datetime,
    ttl: int,
    ip: str,
) -> uuid.UUID | None:
    """Issue `code` for the live session whose cookie hashes to `session_token_hash`, and
    audit it. Returns the user's id, or None (and writes nothing) when there is no such
    session."""
    values: dict[str, Any] = {
        "token_hash": session_token_hash,
        "now": now,
        "code_id": uuid.uuid4(),
        "code_hash": code.code_hash,
        "client_id": code.client_id,
        "redirect_uri": code.redirect_uri,
        "redirect_uri_sent": code.redirect_uri_sent,
        "code_challenge": code.code_challenge,
        "scope": code.scope,
        "expires_at": now + timedelta(seconds=ttl),
        "ip": ip,
        "event": CODE_ISSUED,
        "outcome": "success",
        "detail_prefix": _detail_prefix(code.scope),
        "detail_suffix": '"}',
    }
    row: Mapping[str, Any] | None
    try:
        if db.dialect.modifying_ctes:
            row = await db.fetch_row(ISSUE_ONE_STATEMENT, values)
        else:
            async with db.transaction() as conn:  # BEGIN IMMEDIATE
                issued = (await conn.execute(insert_code(SESSION.subquery()), values)).first()
                row = None
                if issued is not None:  # SQLite keeps UUIDs as hex: the text comes from here
                    user_id = bindparam("user_id", type_=Uuid)
                    audit = insert_audit(users, user_id, bindparam("subject"), bindparam("none"))
                    more = {
                        "user_id": issued.user_id,
                        "subject": str(issued.user_id),
                        "none": "",
                        "detail_prefix": values["detail_prefix"] + str(issued.session_id),
                    }
                    row = dict((await conn.execute(audit, {**values, **more})).one()._mapping)
    except db.dialect.integrity_errors as exc:  # a foreign key: the client was deleted meanwhile
        raise OwnerGone(code.client_id) from exc
    return None if row is None else uuid.UUID(row["subject"])


def _detail_prefix(scope: str) -> str:
    """json.dumps({"scope": scope, "session": X}, sort_keys=True) up to X."""
    whole = json.dumps({"scope": scope, "session": ""}, sort_keys=True)
    return whole.removesuffix('"}')
