"""The browser login session of /authorize (SPEC "Sign-in page"): sign in with a password, find
the live session behind the cookie, sign out.

Signing in is THE password check the password grant uses (login/check.py: the login limits,
argon2id in a thread, one answer for an unknown user, a wrong password and a disabled user),
and the session is written by `start_login`, only while the user still holds the verified hash
and is enabled (security review, finding 1). The cookie's value is 256 random bits; only its
SHA-256 is stored (store/sessions.py).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from authserver.authorize.events import audit_session_event
from authserver.login.check import LoginAttempt, audit_login, check_password, start_login
from authserver.models import LoginSession
from authserver.services import Services
from authserver.store import sessions
from authserver.tokens.opaque import token_digest

SIGN_IN_PAGE = "sign_in_page"  # the `via` of its login.* audit events
MAX_COOKIE_LENGTH = 128  # ours are 43 characters; anything much longer is not worth a lookup


@dataclass(frozen=True)
class SignedIn:
    session: LoginSession
    cookie_value: str = field(repr=False)  # for the Set-Cookie header only, never logged


async def sign_in(
    svc: Services, attempt: LoginAttempt, *, answering: uuid.UUID, replaces: str | None
) -> SignedIn:
    """Check the password and start a session that answers the pending request `answering`,
    ending the browser's previous session (`replaces`, its cookie value) in the same commit.

    Raises LoginLocked or BadCredentials (login/check.py), exactly as the password grant does.
    """
    cookie_value = secrets.token_urlsafe(32)
    login = await check_password(svc, attempt)

    async def start(password_hash: str) -> uuid.UUID:
        return await sessions.start_session(
            svc.db,
            user_id=login.user.id,
            verified_password_hash=password_hash,
            token_hash=token_digest(cookie_value),
            now=attempt.now,
            ttl=svc.settings.login_session_ttl,
            replaces=None if replaces is None else token_digest(replaces),
            answering=answering,
        )

    session_id = await start_login(svc, login, start)
    subject = str(login.user.id)
    await audit_login(svc, attempt, "login.success", "success", subject, session=str(session_id))
    session = LoginSession(session_id, login.user.id, login.user.username, attempt.now)
    return SignedIn(session, cookie_value)


async def current_session(
    svc: Services, cookie_value: str | None, now: datetime
) -> LoginSession | None:
    """The live session of the browser that sent `cookie_value`, if any."""
    if not cookie_value or len(cookie_value) > MAX_COOKIE_LENGTH:
        return None
    return await sessions.find_live_session(svc.db, token_digest(cookie_value), now)


async def sign_out(svc: Services, session: LoginSession, *, ip: str, now: datetime) -> None:
    """POST /logout: end the session (SPEC: it revokes no refresh token; apps keep theirs)."""
    if await sessions.end_session(svc.db, session.id, reason=sessions.LOGOUT, now=now):
        await audit_session_event(
            svc, "logout", "success", session=session, client_id=None, ip=ip, now=now
        )
