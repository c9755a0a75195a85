"""POST /authorize/sign-in: the sign-in page's form (SPEC "Sign-in page").

1. The CSRF token must be the one this browser's page carried for this pending request
   (authorize/csrf.py); else 400 and nothing happens (no login-limit count, no password check).
2. The pending request must still wait (30 minutes, store/authorization_requests.py).
3. THE password check (authorize/login_session.py → login/check.py): a wrong username and a
   wrong password get the same page after the same work; a locked account gets the lock
   message with 429 and Retry-After.
4. A new login session (a new cookie value at every sign-in: no session fixation), then the
   consent page or the code, by the same rule as GET /authorize (authorize/steps.py).
"""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from authserver.authorize.codes import answer_with_code, as_request
from authserver.authorize.csrf import csrf_token_matches
from authserver.authorize.login_session import SIGN_IN_PAGE, sign_in
from authserver.authorize.steps import consent_needed, next_step
from authserver.http.authorize_pages import (
    EXPIRED,
    FORGED,
    UNAVAILABLE,
    consent_page,
    error_page,
    sign_in_page,
)
from authserver.http.browser import (
    CsrfAnchor,
    PageError,
    browser_cookies,
    read_page_form,
    redirect,
    session_cookie,
)
from authserver.http.client_ip import client_ip
from authserver.login.check import MAX_USERNAME_LENGTH, BadCredentials, LoginAttempt, LoginLocked
from authserver.services import Services
from authserver.store import authorization_requests as pending_store
from authserver.store import clients as client_store
from authserver.store import consents
from authserver.tokens.opaque import token_digest


async def sign_in_endpoint(request: Request) -> Response:
    svc: Services = request.app.state.services
    try:
        return await _sign_in(request, svc, svc.clock())
    except PageError as error:
        return error_page(request, error.text)
    except svc.db.dialect.unavailable:
        return error_page(request, UNAVAILABLE)


async def _sign_in(request: Request, svc: Services, now: datetime) -> Response:
    settings = svc.settings
    form = await read_page_form(request)
    cookies = browser_cookies(request, settings)
    handle = form.get("authorization_request", "")
    if not csrf_token_matches(cookies.csrf_secret, "sign-in", handle, form.get("csrf_token")):
        raise PageError(FORGED)
    assert cookies.csrf_secret is not None
    pending = await pending_store.find_request(svc.db, token_digest(handle), now)
    client = None if pending is None else await client_store.get_client(svc.db, pending.client_id)
    if pending is None or client is None:
        raise PageError(EXPIRED)
    username = form.get("username", "")
    anchor = CsrfAnchor(cookies.csrf_secret, None)
    client_name, redirect_uri = client.name, pending.redirect_uri

    def again(error: str, status: int, retry_after: int | None = None) -> Response:
        return sign_in_page(
            request,
            client_name=client_name,
            handle=handle,
            anchor=anchor,
            redirect_uri=redirect_uri,
            username=username if len(username) <= MAX_USERNAME_LENGTH else None,
            error=error,
            retry_after=retry_after,
            status=status,
        )

    password = form.get("password")
    if not username or password is None:  # the page's `required` inputs make this rare
        return again("invalid_credentials", 400)
    ip = client_ip(request, settings.trusted_proxies)
    attempt = LoginAttempt(username, password, client.client_id, ip, now, via=SIGN_IN_PAGE)
    try:
        signed_in = await sign_in(svc, attempt, answering=pending.id, replaces=cookies.session)
    except LoginLocked as locked:
        return again("locked", 429, locked.retry_after)
    except BadCredentials:
        return again("invalid_credentials", 400)

    session = signed_in.session
    cookie = session_cookie(signed_in.cookie_value, settings)
    remembered = None
    if client.consent:
        remembered = await consents.remembered_scope(svc.db, session.user_id, client.client_id)
    step = next_step(
        as_request(pending),
        session="fresh",
        consent_needed=consent_needed(client.consent, remembered, pending.scope),
    )
    if step == "consent":
        return consent_page(
            request,
            client_name=client.name,
            scope=pending.scope,
            username=session.username,
            handle=handle,
            anchor=anchor,
            redirect_uri=pending.redirect_uri,
            cookies=[cookie],
        )
    location = await answer_with_code(
        svc, handle=handle, session=session, remember_scope=None, ip=ip, now=now
    )
    if location is None:  # the same form, submitted twice: the other submission answered it
        response = error_page(request, EXPIRED)
        response.headers.append("Set-Cookie", cookie)
        return response
    return redirect(location, set_cookie=cookie)
