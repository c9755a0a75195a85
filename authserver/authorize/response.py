"""The answer to the app: a 303 to its redirect URI (RFC 6749 §4.1.2, §4.1.2.1, RFC 9207).

Every answer carries `state` when the request had one and `iss`, the issuer (RFC 9207 §2: the app
can then tell which server answered, which defeats mix-up attacks). The parameters are appended
to the query the registered URI already has, which RFC 6749 §3.1.2 says must be kept; the
registration rules (authserver/clients/redirect_uris.py) forbid a fragment and the names added
here, so appending is all the merging needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

from authserver.authorize.request import AuthorizationError


def redirect_location(
    redirect_uri: str, params: Mapping[str, str], *, state: str | None, issuer: str
) -> str:
    """`redirect_uri` with `params`, then `state` (when given) and `iss`, in its query.

    Encoded as application/x-www-form-urlencoded (RFC 6749 Appendix B).
    """
    added = dict(params)
    if state is not None:
        added["state"] = state
    added["iss"] = issuer
    encoded = urlencode(added)
    if "?" not in redirect_uri:
        return f"{redirect_uri}?{encoded}"
    if redirect_uri.endswith(("?", "&")):
        return redirect_uri + encoded
    return f"{redirect_uri}&{encoded}"


def code_location(redirect_uri: str, code: str, *, state: str | None, issuer: str) -> str:
    """The success answer: `code=...&state=...&iss=...`."""
    return redirect_location(redirect_uri, {"code": code}, state=state, issuer=issuer)


def error_location(error: AuthorizationError, *, issuer: str) -> str:
    """An error answer: `error=...&error_description=...&state=...&iss=...`."""
    if error.redirect_uri is None:
        raise ValueError("this error is shown as a page, not redirected")
    params = {"error": error.error, "error_description": error.description}
    return redirect_location(error.redirect_uri, params, state=error.state, issuer=issuer)


def form_action_source(redirect_uri: str) -> str:
    """The CSP source that lets a page's form end in a redirect to `redirect_uri`.

    Chromium and Safari apply `form-action` to the redirects that follow a form's POST
    (w3c/webappsec-csp#8), so the sign-in and consent pages must allow the app's origin, or the
    browser stops at the last step. Private-use schemes become a scheme source (`com.example.app:`);
    CSP has no syntax for IPv6 literals, so an `http://[::1]` app gets the scheme source `http:`.
    """
    parts = urlsplit(redirect_uri)
    if parts.scheme not in ("http", "https"):
        return f"{parts.scheme}:"
    host = parts.netloc.rpartition("@")[2]
    if host.startswith("["):
        return f"{parts.scheme}:"
    return f"{parts.scheme}://{host}"


def redirect_origin(redirect_uri: str) -> str:
    """Where the person goes back to, as the consent page shows it: `https://app.example`,
    `http://127.0.0.1:8001`, or a private-use scheme (`com.example.app:`) for a mobile app."""
    parts = urlsplit(redirect_uri)
    if parts.scheme in ("http", "https"):
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    return f"{parts.scheme}:"
