"""RFC 6750 bearer-token authentication, without a framework: what the Starlette and WSGI
integrations share.

It reads the token from the `Authorization` header (§2.1; never from the query string or a
form body), and says how to refuse a request: 401 `invalid_token` with a `WWW-Authenticate`
challenge (§3; SPEC asks for the error code even when the token is missing, where §3.1 merely
suggests leaving it out), 403 `insufficient_scope` naming the scopes needed (§3.1), or 503 when
the issuer's keys cannot be had at all (the client's token is not at fault and must not be
thrown away).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from authserver.verify.errors import InvalidToken, KeySetUnavailable, MalformedToken

logger = logging.getLogger("authserver.verify")

DEFAULT_REALM = "api"
RETRY_AFTER_SECONDS = 10
INSUFFICIENT_SCOPE = "The access token lacks the scope this resource requires."
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 §2.1
# RFC 6750 §3: the characters an auth-param value may hold here (no `"` and no `\`).
_PARAM_VALUE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")
# RFC 6749 §3.3 scope-token.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


class MissingToken(InvalidToken):
    """No `Authorization: Bearer` header."""

    reason = "missing"
    description = "An access token is required."


@dataclass(frozen=True)
class Refusal:
    """An HTTP answer refusing a request: status, headers and the JSON body."""

    status: int
    headers: dict[str, str]
    body: dict[str, str]


def token_from_authorization(values: Sequence[str]) -> str:
    """The token of the one `Authorization: Bearer` header among `values` (all the request's
    Authorization headers), or MissingToken / MalformedToken."""
    if not values:
        raise MissingToken("no Authorization header")
    if len(values) > 1:
        raise MalformedToken("more than one Authorization header")
    scheme, _, token = values[0].strip().partition(" ")
    if scheme.lower() != "bearer":
        raise MissingToken("the Authorization header is not Bearer")
    token = token.strip()
    if not _B64TOKEN.fullmatch(token):
        raise MalformedToken("the Bearer credentials are not a b64token")
    return token


def challenge(realm: str, error: str, description: str, scope: str | None = None) -> str:
    """The RFC 6750 §3 `WWW-Authenticate` value."""
    params = [f'realm="{realm}"', f'error="{error}"', f'error_description="{description}"']
    if scope is not None:
        params.append(f'scope="{scope}"')
    return "Bearer " + ", ".join(params)


def unauthorized(realm: str, exc: InvalidToken) -> Refusal:
    """401 invalid_token, or 503 when the issuer's keys are unavailable."""
    if isinstance(exc, KeySetUnavailable):
        return Refusal(
            503,
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
            {"error": "temporarily_unavailable", "error_description": exc.description},
        )
    return Refusal(
        401,
        {"WWW-Authenticate": challenge(realm, "invalid_token", exc.description)},
        {"error": "invalid_token", "error_description": exc.description},
    )


def refusal_for(realm: str, exc: InvalidToken, *, required: bool) -> Refusal | None:
    """How a middleware answers a token that did not verify; None: let the request through
    anonymously (no token at all, and authentication not `required`). Refusals are logged
    with their reason, never the token."""
    if isinstance(exc, MissingToken):
        return unauthorized(realm, exc) if required else None
    log = logger.warning if isinstance(exc, KeySetUnavailable) else logger.info
    log("bearer token refused: %s", exc)  # reason and detail; never the token
    return unauthorized(realm, exc)


def forbidden(realm: str, scopes: Collection[str]) -> Refusal:
    """403 insufficient_scope (RFC 6750 §3.1), naming the scopes the resource needs."""
    needed = " ".join(scopes)
    return Refusal(
        403,
        {"WWW-Authenticate": challenge(realm, "insufficient_scope", INSUFFICIENT_SCOPE, needed)},
        {"error": "insufficient_scope", "error_description": INSUFFICIENT_SCOPE, "scope": needed},
    )


def check_realm(realm: str) -> str:
    """`realm`, if it can stand in a challenge's quoted string as it is; else ValueError."""
    if not _PARAM_VALUE.fullmatch(realm):
        raise ValueError("realm must be printable ASCII without '\"' or '\\'")
    return realm


def check_scopes(scopes: tuple[str, ...]) -> tuple[str, ...]:
    """`scopes`, if one or more RFC 6749 §3.3 scope tokens; else ValueError."""
    if not scopes or not all(_SCOPE_TOKEN.fullmatch(scope) for scope in scopes):
        raise ValueError("requires_scope needs one or more RFC 6749 §3.3 scope tokens")
    return scopes
