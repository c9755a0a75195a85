"""Starlette integration: bearer-token authentication (RFC 6750) over TokenVerifier.

    app = Starlette(
        routes=[Route("/profile", profile)],
        middleware=[Middleware(BearerAuthMiddleware, verifier=verifier, realm="api")],
    )

    @requires_scope("profile:read")
    async def profile(request: Request) -> Response:
        claims = access_token(request)

BearerAuthMiddleware reads `Authorization: Bearer …` (RFC 6750 §2.1; tokens in the query string
or a form body are not accepted), verifies it, and puts the AccessTokenClaims in
`request.auth`. A missing or bad token answers 401 with `WWW-Authenticate: Bearer realm=…,
error="invalid_token", error_description=…` (SPEC asks for the error code even when the token is
missing, where RFC 6750 §3.1 merely suggests leaving it out). `requires_scope` answers 403
`insufficient_scope` (RFC 6750 §3.1) naming the scopes needed. When the issuer's keys cannot be
had at all, the answer is 503: the client's token is not at fault and must not be thrown away.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Collection
from typing import Any, TypeVar, cast

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from authserver.verify.claims import AccessTokenClaims
from authserver.verify.errors import InvalidToken, KeySetUnavailable, MalformedToken
from authserver.verify.verifier import TokenVerifier

logger = logging.getLogger("authserver.verify")

DEFAULT_REALM = "api"
RETRY_AFTER_SECONDS = 10
_REALM_KEY = "authserver_bearer_realm"  # in scope["state"], for requires_scope
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 §2.1
# RFC 6750 §3: the characters an auth-param value may hold here (no `"` and no `\`).
_PARAM_VALUE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")
# RFC 6749 §3.3 scope-token.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


class MissingToken(InvalidToken):
    """No `Authorization: Bearer` header."""

    reason = "missing"
    description = "An access token is required."


def challenge(realm: str, error: str, description: str, scope: str | None = None) -> str:
    """The RFC 6750 §3 `WWW-Authenticate` value."""
    params = [f'realm="{realm}"', f'error="{error}"', f'error_description="{description}"']
    if scope is not None:
        params.append(f'scope="{scope}"')
    return "Bearer " + ", ".join(params)


def unauthorized(realm: str, exc: InvalidToken) -> Response:
    """401 invalid_token, or 503 when the issuer's keys are unavailable."""
    if isinstance(exc, KeySetUnavailable):
        return JSONResponse(
            {"error": "temporarily_unavailable", "error_description": exc.description},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return JSONResponse(
        {"error": "invalid_token", "error_description": exc.description},
        status_code=401,
        headers={"WWW-Authenticate": challenge(realm, "invalid_token", exc.description)},
    )


def forbidden(realm: str, scopes: Collection[str]) -> Response:
    """403 insufficient_scope (RFC 6750 §3.1), naming the scopes the resource needs."""
    description = "The access token lacks the scope this resource requires."
    needed = " ".join(scopes)
    return JSONResponse(
        {"error": "insufficient_scope", "error_description": description, "scope": needed},
        status_code=403,
        headers={"WWW-Authenticate": challenge(realm, "insufficient_scope", description, needed)},
    )


def bearer_token(headers: Headers) -> str:
    """The token of the one `Authorization: Bearer` header (RFC 6750 §2.1), or MissingToken /
    MalformedToken."""
    values = headers.getlist("authorization")
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


def _check_realm(realm: str) -> str:
    if not _PARAM_VALUE.fullmatch(realm):
        raise ValueError("realm must be printable ASCII without '\"' or '\\'")
    return realm


class BearerAuthMiddleware:
    """Pure ASGI middleware. `required=False` lets requests without a token through with
    `request.auth` set to None (a token that is present must still be valid); `exempt_paths`
    are passed through untouched (health checks, say)."""

    def __init__(
        self,
        app: ASGIApp,
        verifier: TokenVerifier,
        *,
        realm: str = DEFAULT_REALM,
        required: bool = True,
        exempt_paths: Collection[str] = (),
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.realm = _check_realm(realm)
        self.required = required
        self.exempt_paths = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})[_REALM_KEY] = self.realm
        try:
            token = bearer_token(Headers(scope=scope))
            scope["auth"] = await self.verifier.verify(token)
        except MissingToken as exc:
            if self.required:
                await unauthorized(self.realm, exc)(scope, receive, send)
                return
            scope["auth"] = None
        except InvalidToken as exc:
            log = logger.warning if isinstance(exc, KeySetUnavailable) else logger.info
            log("bearer token refused: %s", exc)  # reason and detail; never the token
            await unauthorized(self.realm, exc)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def access_token(request: Request) -> AccessTokenClaims:
    """The verified claims BearerAuthMiddleware put on the request; LookupError if none."""
    claims = request.scope.get("auth")
    if not isinstance(claims, AccessTokenClaims):
        raise LookupError("no verified access token on this request")
    return claims


def _denial(request: Request, scopes: tuple[str, ...]) -> Response | None:
    realm = request.scope.get("state", {}).get(_REALM_KEY, DEFAULT_REALM)
    claims = request.scope.get("auth")
    if not isinstance(claims, AccessTokenClaims):  # no middleware, or required=False
        return unauthorized(realm, MissingToken())
    if not claims.has_scopes(*scopes):
        return forbidden(realm, scopes)
    return None


def requires_scope(*scopes: str) -> Callable[[Endpoint], Endpoint]:
    """Decorate a Starlette endpoint (function or HTTPEndpoint method, async or sync): 401
    without a verified token, 403 insufficient_scope unless every one of `scopes` was granted."""
    if not scopes or not all(_SCOPE_TOKEN.fullmatch(scope) for scope in scopes):
        raise ValueError("requires_scope needs one or more RFC 6749 §3.3 scope tokens")

    def decorate(endpoint: Endpoint) -> Endpoint:
        if inspect.iscoroutinefunction(endpoint):

            @functools.wraps(endpoint)
            async def checked(*args: Any, **kwargs: Any) -> Any:
                denied = _denial(args[-1], scopes)  # the Request is the last positional
                if denied is not None:
                    return denied
                return await cast(Callable[..., Awaitable[Any]], endpoint)(*args, **kwargs)

            return cast(Endpoint, checked)

        @functools.wraps(endpoint)
        def checked_sync(*args: Any, **kwargs: Any) -> Any:
            denied = _denial(args[-1], scopes)
            if denied is not None:
                return denied
            return endpoint(*args, **kwargs)

        return cast(Endpoint, checked_sync)

    return decorate
