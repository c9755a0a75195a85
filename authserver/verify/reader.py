"""The one reader of authserver's access tokens, for whoever already holds the issuer's keys.

    keys = parse_jwks(jwks_document)  # once per key change
    claims = read_access_token(token, keys, issuer="https://auth.example")

The same steps as TokenVerifier (header, key by kid, signature, claims; authserver.verify.jws
and authserver.verify.claims), without HTTP and without memos: the server reads its own tokens
back with it (introspection), from the JWKS it publishes. A resource server wants TokenVerifier,
which fetches and caches the JWKS.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping

from joserfc.jwk import RSAKey

from authserver.verify.claims import AccessTokenClaims, check_claims
from authserver.verify.errors import UnknownKey, quoted
from authserver.verify.jws import (
    DEFAULT_MAX_TOKEN_SIZE,
    check_signature,
    read_header,
    read_payload,
    split_token,
)


def read_access_token(
    token: str | bytes,
    keys: Mapping[str, RSAKey],
    *,
    issuer: str,
    audience: str | Iterable[str] | None = None,
    now: float | None = None,
    leeway: float = 0.0,
    max_token_size: int = DEFAULT_MAX_TOKEN_SIZE,
) -> AccessTokenClaims:
    """The claims of an RFC 9068 access token signed by one of `keys`, or an InvalidToken
    subclass saying why not.

    `keys` maps kid to public key, as `parse_jwks` returns them. The header must be `alg` RS256,
    `typ` at+jwt, no `crit`/`b64`, a `kid` among `keys`; the RS256 signature must verify; `iss`
    must be `issuer`. `audience` (one or several) requires one of the token's `aud` values to be
    among them; None accepts any audience (the issuer's introspection answers for all of its
    resource servers). exp, iat and nbf are checked against `now` (seconds since the epoch;
    default the current time) with `leeway` seconds each way: 0 means a token whose `exp` is
    `now` has expired.
    """
    if not 0 <= leeway < math.inf:  # a NaN would make `now >= exp + leeway` false: never expired
        raise ValueError("leeway must be a finite number of seconds >= 0")
    header, payload, signature = split_token(token, max_token_size)
    kid = read_header(header)
    key = keys.get(kid)
    if key is None:
        raise UnknownKey(f"kid {quoted(kid)} is not among the issuer's keys")
    check_signature(key, header, payload, signature)
    audiences = None
    if audience is not None:
        audiences = frozenset([audience] if isinstance(audience, str) else audience)
    return check_claims(
        read_payload(payload),
        issuer,
        audiences,
        time.time() if now is None else now,
        leeway,
    )
