"""WSGI integration: bearer-token authentication (RFC 6750) over TokenVerifier.verify_sync, for
a plain WSGI app, or Flask or Django underneath.

    app = BearerAuth(wsgi_app, verifier, realm="api")

    @requires_scope("profile:read")
    def profile(environ, start_response):
        claims = access_token(environ)

BearerAuth reads `Authorization: Bearer …`, verifies it, and puts the AccessTokenClaims in
`environ["authserver.access_token"]`. It answers exactly as the Starlette integration does
(authserver/verify/bearer.py): 401 invalid_token with a challenge, 503 when the issuer's keys
cannot be had; `requires_scope` wraps a WSGI callable and answers 403 insufficient_scope (in a
Flask view, check `access_token(flask.request.environ).has_scopes(...)` instead). verify_sync
blocks the worker thread only while the JWKS is fetched: on the first token, on an unknown kid
(at most once per refetch interval) and when the cached JWKS is stale.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Collection, Iterable
from http import HTTPStatus
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

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

__all__ = ["CLAIMS_KEY", "BearerAuth", "access_token", "requires_scope"]


CLAIMS_KEY = "authserver.access_token"
_REALM_KEY = "authserver.bearer_realm"  # for requires_scope


def _respond(refusal: Refusal, start_response: StartResponse) -> list[bytes]:
    body = json.dumps(refusal.body).encode()
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        *refusal.headers.items(),
    ]
    start_response(f"{refusal.status} {HTTPStatus(refusal.status).phrase}", headers)
    return [body]


class BearerAuth:
    """WSGI middleware. `required=False` lets requests without a token through with the claims
    set to None (a token that is present must still be valid); `exempt_paths` (PATH_INFO) are
    passed through untouched (health checks, say)."""

    def __init__(
        self,
        app: WSGIApplication,
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

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") in self.exempt_paths:
            return self.app(environ, start_response)
        environ[_REALM_KEY] = self.realm
        authorization = environ.get("HTTP_AUTHORIZATION")
        try:
            token = token_from_authorization([] if authorization is None else [authorization])
            environ[CLAIMS_KEY] = self.verifier.verify_sync(token)
        except InvalidToken as exc:
            refusal = refusal_for(self.realm, exc, required=self.required)
            if refusal is not None:
                return _respond(refusal, start_response)
            environ[CLAIMS_KEY] = None
        return self.app(environ, start_response)


def access_token(environ: WSGIEnvironment) -> AccessTokenClaims:
    """The verified claims BearerAuth put in the environ; LookupError if none."""
    claims = environ.get(CLAIMS_KEY)
    if not isinstance(claims, AccessTokenClaims):
        raise LookupError("no verified access token on this request")
    return claims


def requires_scope(*scopes: str) -> Callable[[WSGIApplication], WSGIApplication]:
    """Decorate a WSGI callable: 401 without a verified token, 403 insufficient_scope unless
    every one of `scopes` was granted."""
    check_scopes(scopes)

    def decorate(app: WSGIApplication) -> WSGIApplication:
        @functools.wraps(app)
        def checked(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            realm = environ.get(_REALM_KEY, DEFAULT_REALM)
            claims = environ.get(CLAIMS_KEY)
            if not isinstance(claims, AccessTokenClaims):  # no BearerAuth, or required=False
                return _respond(unauthorized(realm, MissingToken()), start_response)
            if not claims.has_scopes(*scopes):
                return _respond(forbidden(realm, scopes), start_response)
            return app(environ, start_response)

        return checked

    return decorate
