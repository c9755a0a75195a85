"""`tokens purge` and the tables of sign-in through /authorize, on both backends: expired codes
that no family needs, ended or expired login sessions, expired pending requests go; a used code
stays while the family it started exists (a late replay must still revoke it)."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from authserver.store.db import Database
from authserver.store.purge import PurgeCounts, purge
from authserver.store.tables import (
    authorization_codes,
    authorization_requests,
    login_sessions,
    refresh_families,
)
from tests.store.test_purge import (
    ACCESS_TTL,
    POLICY,
    ago,
    family_row,
    insert_rows,
    keys_of,
    owner,
)

CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def session_row(
    user_id: uuid.UUID, now: datetime, *, expires_in: float, ended: bool = False
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "token_hash": secrets.token_bytes(32),
        "user_id": user_id,
        "auth_time": ago(now, 60),
        "expires_at": now + timedelta(seconds=expires_in),
        "ended_at": ago(now, 1) if ended else None,
        "ended_reason": "logout" if ended else None,
    }


def code_row(
    user_id: uuid.UUID,
    client_id: str,
    now: datetime,
    *,
    expires_in: float,
    family: dict[str, Any] | None = None,
    session: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "code_hash": secrets.token_bytes(32),
        "client_id": client_id,
        "user_id": user_id,
        "session_id": None if session is None else session["id"],
        "redirect_uri": "https://app.example/cb",
        "redirect_uri_sent": True,
        "code_challenge": CHALLENGE,
        "scope": "read",
        "auth_time": ago(now, 60),
        "issued_at": ago(now, 60),
        "expires_at": now + timedelta(seconds=expires_in),
        "used_at": None if family is None else ago(now, 30),
        "family_id": None if family is None else family["id"],
    }


def request_row(
    client_id: str, now: datetime, *, expires_in: float, session: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "handle_hash": secrets.token_bytes(32),
        "client_id": client_id,
        "redirect_uri": "https://app.example/cb",
        "redirect_uri_sent": True,
        "scope": "read",
        "state": None,
        "code_challenge": CHALLENGE,
        "prompt": None,
        "session_id": None if session is None else session["id"],
        "created_at": ago(now, 60),
        "expires_at": now + timedelta(seconds=expires_in),
    }


async def test_purge_deletes_the_sign_in_rows_that_can_no_longer_matter(db: Database) -> None:
    now = datetime.now(UTC)
    user_id, client_id = await owner(db, now)
    live_family = family_row(user_id, client_id, now)
    dead_family = family_row(user_id, client_id, now, expires_in=-(ACCESS_TTL + 1))
    await insert_rows(db, refresh_families, [live_family, dead_family])

    live = session_row(user_id, now, expires_in=60)
    ended = session_row(user_id, now, expires_in=60, ended=True)
    expired = session_row(user_id, now, expires_in=0)
    await insert_rows(db, login_sessions, [live, ended, expired])

    keep_codes = {
        "unexpired": code_row(user_id, client_id, now, expires_in=1, session=live),
        "unexpired, its session ended": code_row(
            user_id, client_id, now, expires_in=1, session=ended
        ),
        "used, its family lives (replay)": code_row(
            user_id, client_id, now, expires_in=-600, family=live_family
        ),
    }
    drop_codes = {
        "expired unused": code_row(user_id, client_id, now, expires_in=0, session=live),
        "used, its family purged now": code_row(
            user_id, client_id, now, expires_in=-600, family=dead_family
        ),
    }
    await insert_rows(db, authorization_codes, [*keep_codes.values(), *drop_codes.values()])

    kept_request = request_row(client_id, now, expires_in=1)
    await insert_rows(
        db,
        authorization_requests,
        [
            kept_request,
            request_row(client_id, now, expires_in=0),
            request_row(client_id, now, expires_in=600, session=ended),  # goes with its session
        ],
    )

    counts = await purge(db, POLICY, now)

    assert (counts.authorization_codes, counts.login_sessions, counts.authorization_requests) == (
        2,
        2,
        1,
    )
    assert counts.refresh_families == 1
    assert await keys_of(db, authorization_codes.c.id) == {r["id"] for r in keep_codes.values()}
    assert await keys_of(db, login_sessions.c.id) == {live["id"]}
    assert await keys_of(db, authorization_requests.c.id) == {kept_request["id"]}
    assert await keys_of(db, authorization_codes.c.session_id) == {live["id"], None}
    assert await purge(db, POLICY, now) == PurgeCounts()
