"""The pages of /authorize and /logout, with their context: the sign-in page, the consent page,
the error page (http/pages.py renders them with SPEC's security headers).

The sign-in and consent pages allow the app's origin in CSP `form-action`: Chromium and Safari
apply it to the redirect that follows the form's POST (w3c/webappsec-csp#8), so without it the
browser would stop before reaching the app (tests/browser prove it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from starlette.requests import Request
from starlette.responses import Response

from authserver.authorize.csrf import csrf_token
from authserver.authorize.response import form_action_source, redirect_origin
from authserver.authorize.wording import describe_scopes
from authserver.http.browser import RETRY_AFTER, CsrfAnchor, ErrorText, form_path
from authserver.http.pages import Pages

INVALID_LINK = "This sign-in link is not valid"
FORGED = ErrorText(
    "This form has expired",
    "The form was not sent from this browser's page, or your browser did not send its cookies. "
    "Allow cookies for this site, go back to the app and start again.",
)
EXPIRED = ErrorText(
    "This sign-in page has expired",
    "It was completed already, or left open too long. Go back to the app and start again.",
)
SIGNED_OUT = ErrorText(
    "You are no longer signed in",
    "You signed out, or your session ended, while this page was open. Go back to the app and "
    "start again.",
)
UNAVAILABLE = ErrorText(
    "Sign-in is unavailable right now",
    "The server cannot reach its database. Wait a minute, then go back to the app and try again.",
    503,
)

SIGN_IN_PATH = "/authorize/sign-in"
CONSENT_PATH = "/authorize/consent"
LOGOUT_PATH = "/logout"


def _pages(request: Request) -> Pages:
    pages: Pages = request.app.state.pages
    return pages


def _with_cookies(response: Response, cookies: Iterable[str | None]) -> Response:
    for cookie in cookies:
        if cookie is not None:
            response.headers.append("Set-Cookie", cookie)
    return response


def error_page(request: Request, text: ErrorText) -> Response:
    """The error page; a 503 says when to try again."""
    context = {"title": text.title, "message": text.message}
    headers: Mapping[str, str] = RETRY_AFTER if text.status == 503 else {}
    return _pages(request).render(
        request, "error.html", context, status=text.status, headers=headers
    )


def sign_in_page(
    request: Request,
    *,
    client_name: str,
    handle: str,
    anchor: CsrfAnchor,
    redirect_uri: str,
    username: str | None = None,
    error: str | None = None,
    retry_after: int | None = None,
    status: int = 200,
    cookies: Iterable[str | None] = (),
) -> Response:
    """The sign-in form (templates/sign_in.html); `error` is invalid_credentials or locked."""
    context = {
        "client_name": client_name,
        "form_action": form_path(request, SIGN_IN_PATH),
        "authorization_request": handle,
        "csrf_token": csrf_token(anchor.secret, "sign-in", handle),
        "username": username,
        "error": error,
        "retry_minutes": None if retry_after is None else max(1, math.ceil(retry_after / 60)),
    }
    headers = {} if retry_after is None else {"Retry-After": str(max(1, retry_after))}
    response = _pages(request).render(
        request,
        "sign_in.html",
        context,
        status=status,
        form_action=(form_action_source(redirect_uri),),
        headers=headers,
    )
    return _with_cookies(response, [anchor.set_cookie, *cookies])


def consent_page(
    request: Request,
    *,
    client_name: str,
    scope: str,
    username: str,
    handle: str,
    anchor: CsrfAnchor,
    redirect_uri: str,
    cookies: Iterable[str | None] = (),
) -> Response:
    """The consent form (templates/consent.html): the client's name, each scope in words."""
    context = {
        "client_name": client_name,
        "scopes": describe_scopes(scope.split()),
        "username": username,
        "redirect_origin": redirect_origin(redirect_uri),
        "form_action": form_path(request, CONSENT_PATH),
        "authorization_request": handle,
        "csrf_token": csrf_token(anchor.secret, "consent", handle),
    }
    response = _pages(request).render(
        request, "consent.html", context, form_action=(form_action_source(redirect_uri),)
    )
    return _with_cookies(response, [anchor.set_cookie, *cookies])


def logout_page(
    request: Request, *, username: str, session_id: str, anchor: CsrfAnchor
) -> Response:
    context = {
        "username": username,
        "form_action": form_path(request, LOGOUT_PATH),
        "csrf_token": csrf_token(anchor.secret, "logout", session_id),
    }
    response = _pages(request).render(request, "logout.html", context)
    return _with_cookies(response, [anchor.set_cookie])


def logged_out_page(request: Request, cookies: Iterable[str | None] = ()) -> Response:
    return _with_cookies(_pages(request).render(request, "logged_out.html"), cookies)
