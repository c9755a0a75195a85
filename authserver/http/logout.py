"""GET /logout (a confirmation page) and POST /logout (SPEC: a CSRF-protected form that ends the
login session; it revokes no refresh token, apps keep theirs until revoked at /revoke).

The confirmation step is what Keycloak and Hydra do too: a GET that signed people out could be
triggered by any page (an <img> tag), so only the page's own form, with its CSRF token bound to
this session, ends it.
"""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from authserver.authorize.csrf import csrf_token_matches
from authserver.authorize.login_session import current_session, sign_out
from authserver.http.authorize_pages import UNAVAILABLE, error_page, logged_out_page, logout_page
from authserver.http.browser import (
    ErrorText,
    PageError,
    browser_cookies,
    csrf_anchor,
    ended_session_cookie,
    read_page_form,
)
from authserver.http.client_ip import client_ip
from authserver.services import Services

FORGED = ErrorText(
    "You are still signed in",
    "The sign-out form was not sent from this browser's sign-out page. Open the sign-out page "
    "again and use its button.",
)


async def logout_page_endpoint(request: Request) -> Response:
    """The confirmation page, or "signed out" when this browser has no live session."""
    svc: Services = request.app.state.services
    cookies = browser_cookies(request, svc.settings)
    try:
        session = await current_session(svc, cookies.session, svc.clock())
    except svc.db.dialect.unavailable:
        return error_page(request, UNAVAILABLE)
    if session is None:
        return logged_out_page(request)
    anchor = csrf_anchor(cookies, svc.settings)
    return logout_page(
        request, username=session.username, session_id=str(session.id), anchor=anchor
    )


async def logout_endpoint(request: Request) -> Response:
    svc: Services = request.app.state.services
    try:
        return await _logout(request, svc, svc.clock())
    except PageError as error:
        return error_page(request, error.text)
    except svc.db.dialect.unavailable:
        return error_page(request, UNAVAILABLE)


async def _logout(request: Request, svc: Services, now: datetime) -> Response:
    form = await read_page_form(request)
    cookies = browser_cookies(request, svc.settings)
    presented = form.get("csrf_token")
    if not presented or not cookies.csrf_secret:
        raise PageError(FORGED)
    ended = ended_session_cookie(svc.settings)
    session = await current_session(svc, cookies.session, now)
    if session is None:  # nothing to end: signed out already
        return logged_out_page(request, [ended])
    if not csrf_token_matches(cookies.csrf_secret, "logout", str(session.id), presented):
        raise PageError(FORGED)
    ip = client_ip(request, svc.settings.trusted_proxies)
    await sign_out(svc, session, ip=ip, now=now)
    return logged_out_page(request, [ended])
