"""Starlette integration: bearer-token authentication (RFC 6750) over TokenVerifier.

    app = Starlette(
        routes=[Route("/profile", profile)],
        middleware=[Middleware(BearerAuthMiddleware, verifier=verifier, realm="api")],
    )

    @requires_scope("profile:read")
    async def profile(request: Request) -> Response:
        claims = access_token(request)

BearerAuthMiddleware reads `Authorization: Bearer …`, verifies it, and puts the
AccessTokenClaims in `request.auth`. A missing or bad token answers 401 with `WWW-Authenticate:
Bearer realm=…, error="invalid_token", error_description=…`; `requires_scope` answers 403
`insufficient_scope`; 503 when the issuer's keys cannot be had (authserver/verify/bearer.py).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Collection
from typing import Any, TypeVar, cast

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from authserver.verify.bearer import (
    DEFAULT_REALM,
    MissingToken,
    Refusal,
    check_realm,
    check_scopes,
    forbidden,
    refusal_for,
    token_from_authorization,
    unauthorized,
)
from authserver.verify.claims import AccessTokenClaims
from authserver.verify.errors import InvalidToken
from authserver.verify.verifier import TokenVerifier

__all__ = ["BearerAuthMiddleware", "MissingToken", "access_token", "bearer_token", "requires_scope"]


_REALM_KEY = "authserver_bearer_realm"  # in scope["state"], for requires_scope

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def _response(refusal: Refusal) -> Response:
    return JSONResponse(refusal.body, status_code=refusal.status, headers=refusal.headers)


def bearer_token(headers: Headers) -> str:
    """The token of the one `Authorization: Bearer` header (RFC 6750 §2.1), or MissingToken /
    MalformedToken."""
    return token_from_authorization(headers.getlist("authorization"))


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
        self.realm = check_realm(realm)
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
        except InvalidToken as exc:
            refusal = refusal_for(self.realm, exc, required=self.required)
            if refusal is not None:
                await _response(refusal)(scope, receive, send)
                return
            scope["auth"] = None
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
        return _response(unauthorized(realm, MissingToken()))
    if not claims.has_scopes(*scopes):
        return _response(forbidden(realm, scopes))
    return None


def requires_scope(*scopes: str) -> Callable[[Endpoint], Endpoint]:
    """Decorate a Starlette endpoint (function or HTTPEndpoint method, async or sync): 401
    without a verified token, 403 insufficient_scope unless every one of `scopes` was granted."""
    check_scopes(scopes)

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
