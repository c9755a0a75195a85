"""Offline verification of authserver's access tokens, for Python resource servers.

    from authserver.verify import TokenVerifier, InvalidToken

    verifier = TokenVerifier("https://auth.example", "https://api.example")
    claims = await verifier.verify(token)      # or verifier.verify_sync(token)
    claims.sub, claims.client_id, claims.scopes

See SPEC "Resource servers"; `authserver.verify.starlette` has the Starlette integration. This
package imports nothing else from authserver: a resource server needs no database or settings.
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
from authserver.verify.verifier import DEFAULT_LEEWAY, TokenVerifier

__all__ = [
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
]
