"""GET /authorize (RFC 6749 §4.1.1, RFC 7636 §4.3, RFC 9207; SPEC "GET /authorize").

1. Validate the query (authorize/request.py). Until the client and its redirect URI are trusted
   an error is the error page (400), never a redirect (RFC 6749 §4.1.2.1); after that every
   outcome is a 303 to the redirect URI with `state` and `iss`.
2. For an app without a consent page (and no prompt=login), issue the code at once if the
   browser's login session is live: a session reuse, one statement (store/reuse.py). Else find
   the session and the user's remembered consent.
3. Decide (authorize/steps.py): answer with a code (no page, no password), an error for
   prompt=none, or a page. A page's request waits in a pending row
   (store/authorization_requests.py) whose random handle the page's form carries.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from authserver.authorize.codes import issue_code, issue_code_if_signed_in
from authserver.authorize.login_session import current_session
from authserver.authorize.request import (
    AuthorizationError,
    AuthorizationRequest,
    requested_client_id,
    validate_authorization_request,
)
from authserver.authorize.response import error_location
from authserver.authorize.steps import consent_needed, next_step
from authserver.clients.policy import allowed_scopes
from authserver.http.authorize_pages import (
    INVALID_LINK,
    UNAVAILABLE,
    consent_page,
    error_page,
    sign_in_page,
)
from authserver.http.browser import ErrorText, browser_cookies, csrf_anchor, redirect
from authserver.http.client_ip import client_ip
from authserver.models import Client, LoginSession
from authserver.services import Services
from authserver.store import authorization_requests as pending_store
from authserver.store import clients as client_store
from authserver.store import consents
from authserver.store.refresh import OwnerGone
from authserver.tokens.opaque import token_digest

log = logging.getLogger("authserver.authorize")

MAX_PARAMETERS = 64


async def authorize_endpoint(request: Request) -> Response:
    svc: Services = request.app.state.services
    now = svc.clock()
    try:
        query = parse_qsl(request.url.query, keep_blank_values=True, max_num_fields=MAX_PARAMETERS)
    except ValueError:
        return error_page(request, ErrorText(INVALID_LINK, "The link has too many parameters."))
    client_id = requested_client_id(query)
    if isinstance(client_id, AuthorizationError):
        return _refusal(request, svc, client_id)
    try:
        client = await client_store.get_client(svc.db, client_id)
    except svc.db.dialect.unavailable:
        return error_page(request, UNAVAILABLE)
    scopes = allowed_scopes(client, svc.settings) if client is not None else ()
    checked = validate_authorization_request(query, client, scopes)
    if isinstance(checked, AuthorizationError):
        return _refusal(request, svc, checked)
    assert client is not None
    try:
        return await _answer(request, svc, client, checked, now)
    except svc.db.dialect.unavailable:
        return _redirected(svc, checked, "temporarily_unavailable", "Try again in a minute.")
    except OwnerGone:  # the client (or user) was deleted a moment ago
        return _redirected(svc, checked, "unauthorized_client", "This app is not registered.")
    except Exception:  # a bug: the app still gets an answer it can handle (SPEC: server_error)
        log.exception("GET /authorize failed")
        return _redirected(svc, checked, "server_error", "The server encountered an error.")


async def _answer(
    request: Request,
    svc: Services,
    client: Client,
    checked: AuthorizationRequest,
    now: datetime,
) -> Response:
    cookies = browser_cookies(request, svc.settings)
    ip = client_ip(request, svc.settings.trusted_proxies)
    if not client.consent and checked.prompt != "login":  # the usual case: one statement
        location = await issue_code_if_signed_in(svc, checked, cookies.session, ip=ip, now=now)
        if location is not None:
            return redirect(location)
        session = None  # not signed in in this browser
    else:
        session = await current_session(svc, cookies.session, now)
    remembered = None
    if session is not None and client.consent:
        remembered = await consents.remembered_scope(svc.db, session.user_id, client.client_id)
    step = next_step(
        checked,
        session="none" if session is None else "live",
        consent_needed=consent_needed(client.consent, remembered, checked.scope),
    )
    if isinstance(step, AuthorizationError):  # prompt=none and a page would be needed
        return redirect(error_location(step, issuer=svc.settings.issuer))
    if step == "issue_code":
        assert session is not None
        return redirect(await issue_code(svc, checked, session, ip=ip, now=now))
    handle = secrets.token_urlsafe(32)
    answering: LoginSession | None = session if step == "consent" else None
    await pending_store.create_request(
        svc.db,
        handle_hash=token_digest(handle),
        client_id=client.client_id,
        redirect_uri=checked.redirect_uri,
        redirect_uri_sent=checked.redirect_uri_sent,
        scope=checked.scope,
        state=checked.state,
        code_challenge=checked.code_challenge,
        prompt=checked.prompt,
        session_id=None if answering is None else answering.id,
        now=now,
    )
    anchor = csrf_anchor(cookies, svc.settings)
    if answering is not None:
        return consent_page(
            request,
            client_name=client.name,
            scope=checked.scope,
            username=answering.username,
            handle=handle,
            anchor=anchor,
            redirect_uri=checked.redirect_uri,
        )
    return sign_in_page(
        request,
        client_name=client.name,
        handle=handle,
        anchor=anchor,
        redirect_uri=checked.redirect_uri,
    )


def _refusal(request: Request, svc: Services, error: AuthorizationError) -> Response:
    """A page while the redirect URI is not trusted, else the redirect (nothing is stored)."""
    if error.shown_as_page:
        return error_page(request, ErrorText(INVALID_LINK, error.description))
    return redirect(error_location(error, issuer=svc.settings.issuer))


def _redirected(
    svc: Services, checked: AuthorizationRequest, error: str, description: str
) -> Response:
    answer = AuthorizationError(error, description, checked.redirect_uri, checked.state)
    return redirect(error_location(answer, issuer=svc.settings.issuer))
