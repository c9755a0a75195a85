"""CSRF tokens for the sign-in, consent and logout forms (SPEC: "a POST without the page's CSRF
token is refused").

The anchor is a per-browser secret in a cookie set with the first page (HttpOnly, SameSite=Lax),
not the login session: the sign-in form is posted before any session exists, and login CSRF
(a victim's browser signed in as the attacker) is exactly what it must stop. Hydra (a CSRF cookie
per login/consent flow) and node-oidc-provider (an interaction cookie) do the same.

A token is HMAC-SHA256 keyed by that secret over the form's purpose and what it acts on (the
pending authorization request's handle, or the login session). A token made in the attacker's
browser is keyed by the attacker's secret, so it fails in the victim's; no token serves another
form or another request; and nothing is stored server-side for it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Literal

Purpose = Literal["sign-in", "consent", "logout"]


def new_browser_secret() -> str:
    """256 bits from the OS CSPRNG, URL-safe: the value of the CSRF cookie."""
    return secrets.token_urlsafe(32)


def csrf_token(browser_secret: str, purpose: Purpose, binding: str) -> str:
    """The hidden `csrf_token` input of a form for `purpose` acting on `binding`."""
    message = f"authserver csrf v1\x00{purpose}\x00{binding}".encode()
    mac = hmac.new(browser_secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def csrf_token_matches(
    browser_secret: str | None, purpose: Purpose, binding: str, presented: str | None
) -> bool:
    """True when `presented` is the token for this browser, form and binding (constant time)."""
    if not browser_secret or not presented:
        return False
    expected = csrf_token(browser_secret, purpose, binding)
    return hmac.compare_digest(expected.encode(), presented.encode("utf-8", "surrogateescape"))
