"""Offline verification of authserver's access tokens, for Python resource servers.

    from authserver.verify import TokenVerifier, InvalidToken

    verifier = TokenVerifier("https://auth.example", "https://api.example")
    claims = await verifier.verify(token)      # or verifier.verify_sync(token)
    claims.sub, claims.client_id, claims.scopes

See SPEC "Resource servers"; `authserver.verify.starlette` has the Starlette integration,
`authserver.verify.wsgi` the WSGI one. This package imports nothing else from authserver (it is
the separate distribution `authserver-verify`): a resource server needs no database or settings.

The server shares its definitions: `ALG` and `ACCESS_TOKEN_TYPE` (what it writes in an access
token's header), and `read_access_token(token, parse_jwks(jwks), issuer=...)`, the one reader of
access tokens, for the keys it already holds.
"""

from authserver.verify.claims import AccessTokenClaims
from authserver.verify.errors import (
    BadSignature,
    ExpiredToken,
    InvalidClaims,
    InvalidToken,
    KeySetUnavailable,
    MalformedToken,
    NotYetValid,
    TokenTooLarge,
    UnknownKey,
    UnsupportedAlgorithm,
    UnsupportedHeader,
    WrongAudience,
    WrongIssuer,
    WrongTokenType,
)
from authserver.verify.jwks import parse_jwks
from authserver.verify.jws import ACCESS_TOKEN_TYPE, ALG
from authserver.verify.reader import read_access_token
from authserver.verify.verifier import DEFAULT_LEEWAY, TokenVerifier

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "ALG",
    "DEFAULT_LEEWAY",
    "AccessTokenClaims",
    "BadSignature",
    "ExpiredToken",
    "InvalidClaims",
    "InvalidToken",
    "KeySetUnavailable",
    "MalformedToken",
    "NotYetValid",
    "TokenTooLarge",
    "TokenVerifier",
    "UnknownKey",
    "UnsupportedAlgorithm",
    "UnsupportedHeader",
    "WrongAudience",
    "WrongIssuer",
    "WrongTokenType",
    "parse_jwks",
    "read_access_token",
]
