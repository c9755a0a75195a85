"""What the HTML endpoints (/authorize, its forms, /logout) share: the two cookies, the strict
form reading, and the 303 redirect back to the app.

Cookies (SPEC "Sign-in page"; both without Max-Age: they end with the browser session, and the
server-side session ends at SESSION_TTL whatever the browser keeps):
- `authserver_session`: the login session, `HttpOnly; SameSite=Lax; Path=/`, plus `Secure`
  when ISSUER is https. Only its hash is stored.
- the CSRF anchor (authorize/csrf.py), set with the first page: the same attributes, named
  `__Host-authserver_csrf` on https (the prefix makes browsers refuse one set by a sibling
  subdomain, the one way to plant a known anchor) and `authserver_csrf` on plain http, where
  browsers refuse that prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from authserver.authorize.csrf import new_browser_secret
from authserver.errors import OAuthError
from authserver.http.forms import read_form
from authserver.settings import Settings

SESSION_COOKIE = "authserver_session"
CSRF_COOKIE = "authserver_csrf"
SECURE_CSRF_COOKIE = "__Host-authserver_csrf"
RETRY_AFTER = {"Retry-After": "5"}  # with a 503 page
REDIRECT_HEADERS = {  # a 303 to the app carries a code or an error: never cached, no referrer
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class ErrorText:
    """What the error page (templates/error.html) says: fixed words, never request input."""

    title: str
    message: str
    status: int = 400


class PageError(Exception):
    """Raised by a page's handler to answer with the error page."""

    def __init__(self, text: ErrorText) -> None:
        super().__init__(text.title)
        self.text = text


def is_https(settings: Settings) -> bool:
    return settings.issuer.startswith("https://")


def _cookie(name: str, value: str, settings: Settings) -> str:
    return f"{name}={value}; HttpOnly; SameSite=Lax; Path=/" + (
        "; Secure" if is_https(settings) else ""
    )


def session_cookie(value: str, settings: Settings) -> str:
    """The Set-Cookie value that starts a login session in the browser."""
    return _cookie(SESSION_COOKIE, value, settings)


def ended_session_cookie(settings: Settings) -> str:
    """The Set-Cookie value that removes the session cookie (after POST /logout)."""
    return _cookie(SESSION_COOKIE, "", settings) + "; Max-Age=0"


def csrf_cookie_name(settings: Settings) -> str:
    return SECURE_CSRF_COOKIE if is_https(settings) else CSRF_COOKIE


@dataclass(frozen=True)
class BrowserCookies:
    session: str | None  # the login session cookie's value
    csrf_secret: str | None  # the CSRF anchor


def browser_cookies(request: Request, settings: Settings) -> BrowserCookies:
    cookies = request.cookies
    return BrowserCookies(cookies.get(SESSION_COOKIE), cookies.get(csrf_cookie_name(settings)))


@dataclass(frozen=True)
class CsrfAnchor:
    secret: str
    set_cookie: str | None  # a Set-Cookie value when the browser had no anchor yet


def csrf_anchor(cookies: BrowserCookies, settings: Settings) -> CsrfAnchor:
    """The browser's CSRF secret, or a new one to set with the page that carries a form."""
    if cookies.csrf_secret:
        return CsrfAnchor(cookies.csrf_secret, None)
    secret = new_browser_secret()
    return CsrfAnchor(secret, _cookie(csrf_cookie_name(settings), secret, settings))


UNREADABLE_FORM = ErrorText(
    "This form could not be read", "The page sent something this server does not accept."
)


async def read_page_form(request: Request) -> dict[str, str]:
    """A form posted by one of the pages: the token endpoint's strict rules (urlencoded only,
    no repeats, no control characters), with a page instead of JSON when they are broken."""
    try:
        return await read_form(request)
    except OAuthError:
        raise PageError(UNREADABLE_FORM) from None


def redirect(location: str, set_cookie: str | None = None) -> Response:
    """303 See Other (SPEC): the browser follows with a GET, whatever method brought it here."""
    response = Response(status_code=303, headers={"Location": location, **REDIRECT_HEADERS})
    if set_cookie is not None:
        response.headers.append("Set-Cookie", set_cookie)
    return response


def form_path(request: Request, path: str) -> str:
    """An absolute path on this server for a form's action, behind any mount prefix."""
    return str(request.scope.get("root_path", "")) + path
