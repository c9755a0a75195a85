"""POST /authorize/consent: the consent page's form (SPEC "Consent page"), `decision=allow` or
`decision=deny`.

The CSRF token must be the one this browser's page carried for this pending request, and the
browser must still be signed in with the session the page was shown to (else 400, nothing
changes). Deny → 303 with access_denied. Allow → the approval is remembered (widened to cover
this request's scopes) and the code is issued, in one transaction that also deletes the pending
request, so a double click completes once.
"""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from authserver.authorize.codes import answer_with_code, decline
from authserver.authorize.csrf import csrf_token_matches
from authserver.authorize.login_session import current_session
from authserver.authorize.steps import widened_consent
from authserver.http.authorize_pages import EXPIRED, FORGED, SIGNED_OUT, UNAVAILABLE, error_page
from authserver.http.browser import (
    ErrorText,
    PageError,
    browser_cookies,
    read_page_form,
    redirect,
)
from authserver.http.client_ip import client_ip
from authserver.services import Services
from authserver.store import authorization_requests as pending_store
from authserver.store import consents
from authserver.tokens.opaque import token_digest

NO_DECISION = ErrorText("Choose Allow or Deny", "The form was sent without a decision.")


async def consent_endpoint(request: Request) -> Response:
    svc: Services = request.app.state.services
    try:
        return await _consent(request, svc, svc.clock())
    except PageError as error:
        return error_page(request, error.text)
    except svc.db.dialect.unavailable:
        return error_page(request, UNAVAILABLE)


async def _consent(request: Request, svc: Services, now: datetime) -> Response:
    form = await read_page_form(request)
    cookies = browser_cookies(request, svc.settings)
    handle = form.get("authorization_request", "")
    if not csrf_token_matches(cookies.csrf_secret, "consent", handle, form.get("csrf_token")):
        raise PageError(FORGED)
    decision = form.get("decision")
    if decision not in ("allow", "deny"):
        raise PageError(NO_DECISION)
    session = await current_session(svc, cookies.session, now)
    if session is None:
        raise PageError(SIGNED_OUT)
    ip = client_ip(request, svc.settings.trusted_proxies)
    if decision == "deny":
        location = await decline(svc, handle=handle, session=session, ip=ip, now=now)
    else:
        pending = await pending_store.find_request(svc.db, token_digest(handle), now)
        if pending is None or pending.session_id != session.id:
            raise PageError(EXPIRED)
        remembered = await consents.remembered_scope(svc.db, session.user_id, pending.client_id)
        location = await answer_with_code(
            svc,
            handle=handle,
            session=session,
            remember_scope=widened_consent(remembered, pending.scope),
            ip=ip,
            now=now,
        )
    if location is None:  # answered already (a double click), expired, or another session's
        raise PageError(EXPIRED)
    return redirect(location)
