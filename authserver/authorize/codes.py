"""Answering the app (RFC 6749 §4.1.2): a code when the person is signed in and nothing is left
to ask, or access_denied when they declined on the consent page.

A code is 256 random bits (SPEC: at least 256), URL-safe; only its SHA-256 is stored, bound to
the client, the redirect URI, the PKCE challenge, the user, the scope and the login session
(store/codes.py). It is valid CODE_TTL seconds, once (grants/authorization_code.py).
"""

from __future__ import annotations

import secrets
from datetime import datetime

from authserver.authorize.events import audit_session_event
from authserver.authorize.login_session import MAX_COOKIE_LENGTH
from authserver.authorize.request import AuthorizationError, AuthorizationRequest, Prompt
from authserver.authorize.response import code_location, error_location
from authserver.models import LoginSession, PendingAuthorization
from authserver.services import Services
from authserver.store import authorization_requests as pending_store
from authserver.store import codes, reuse
from authserver.tokens.opaque import token_digest

DECLINED = "The user declined to give the app access."


def new_code() -> str:
    return secrets.token_urlsafe(32)


async def issue_code(
    svc: Services,
    request: AuthorizationRequest,
    session: LoginSession,
    *,
    ip: str,
    now: datetime,
) -> str:
    """GET /authorize with a live session and nothing to ask: the Location of the answer."""
    code = new_code()
    new = codes.NewCode(
        token_digest(code),
        request.client_id,
        request.redirect_uri,
        request.redirect_uri_sent,
        request.code_challenge,
        request.scope,
    )
    await codes.issue_code(svc.db, new, session, now=now, ttl=svc.settings.code_ttl)
    await _audit_issued(svc, session, request.client_id, request.scope, ip, now)
    return code_location(
        request.redirect_uri, code, state=request.state, issuer=svc.settings.issuer
    )


async def issue_code_if_signed_in(
    svc: Services,
    request: AuthorizationRequest,
    cookie_value: str | None,
    *,
    ip: str,
    now: datetime,
) -> str | None:
    """A session reuse, for an app that needs no consent page: the Location of a code when the
    browser's session is live, else None (nothing written). One statement on PostgreSQL
    (store/reuse.py): this is what a signed-in browser costs each time an app signs it in."""
    if not cookie_value or len(cookie_value) > MAX_COOKIE_LENGTH:
        return None
    code = new_code()
    new = codes.NewCode(
        token_digest(code),
        request.client_id,
        request.redirect_uri,
        request.redirect_uri_sent,
        request.code_challenge,
        request.scope,
    )
    issued = await reuse.issue_code_if_signed_in(
        svc.db,
        new,
        session_token_hash=token_digest(cookie_value),
        now=now,
        ttl=svc.settings.code_ttl,
        ip=ip,
    )
    if issued is None:
        return None
    return code_location(
        request.redirect_uri, code, state=request.state, issuer=svc.settings.issuer
    )


async def answer_with_code(
    svc: Services,
    *,
    handle: str,
    session: LoginSession,
    remember_scope: str | None,
    ip: str,
    now: datetime,
) -> str | None:
    """A sign-in or consent form completed the pending request `handle`: the Location of the
    code, or None when the request is gone (answered already, expired, signed out meanwhile).
    `remember_scope` (the consent page's Allow) is stored as the user's approval."""
    code = new_code()
    pending = await codes.issue_code_for_request(
        svc.db,
        handle_hash=token_digest(handle),
        code_hash=token_digest(code),
        session=session,
        now=now,
        ttl=svc.settings.code_ttl,
        remember_scope=remember_scope,
    )
    if pending is None:
        return None
    if remember_scope is not None:
        await audit_session_event(
            svc,
            "consent.granted",
            "success",
            session=session,
            client_id=pending.client_id,
            ip=ip,
            now=now,
            scope=pending.scope,
        )
    await _audit_issued(svc, session, pending.client_id, pending.scope, ip, now)
    return code_location(
        pending.redirect_uri, code, state=pending.state, issuer=svc.settings.issuer
    )


async def decline(
    svc: Services, *, handle: str, session: LoginSession, ip: str, now: datetime
) -> str | None:
    """The consent page's Deny: the Location of access_denied, or None when the request is gone."""
    pending = await pending_store.deny_request(svc.db, token_digest(handle), session.id, now)
    if pending is None:
        return None
    await audit_session_event(
        svc,
        "consent.denied",
        "denied",
        session=session,
        client_id=pending.client_id,
        ip=ip,
        now=now,
    )
    error = AuthorizationError("access_denied", DECLINED, pending.redirect_uri, pending.state)
    return error_location(error, issuer=svc.settings.issuer)


def as_request(pending: PendingAuthorization) -> AuthorizationRequest:
    """The validated request a pending row holds, for `authorize.steps.next_step`."""
    prompt: Prompt | None = "login" if pending.prompt == "login" else None
    return AuthorizationRequest(
        client_id=pending.client_id,
        redirect_uri=pending.redirect_uri,
        redirect_uri_sent=pending.redirect_uri_sent,
        scope=pending.scope,
        state=pending.state,
        code_challenge=pending.code_challenge,
        prompt=prompt,
    )


async def _audit_issued(
    svc: Services, session: LoginSession, client_id: str, scope: str, ip: str, now: datetime
) -> None:
    await audit_session_event(
        svc,
        "code.issued",
        "success",
        session=session,
        client_id=client_id,
        ip=ip,
        now=now,
        scope=scope,
    )
