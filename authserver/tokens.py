"""Token formats: RFC 9068 JWT access tokens and opaque refresh tokens (stored as SHA-256)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime

from joserfc import jwt

from authserver.keys.ring import ALG, KeyRing

REFRESH_TOKEN_PREFIX = "asrt_"  # noqa: S105 (a prefix, greppable in logs and secret scanners)


def new_refresh_token() -> str:
    """256 bits from the OS CSPRNG, URL-safe."""
    return REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> bytes:
    """What the database keeps instead of a refresh token or client secret.

    A plain SHA-256 is enough: the inputs are 256-bit random values, not guessable passwords.
    """
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def audience_claim(audiences: Sequence[str]) -> str | list[str]:
    """RFC 7519 §4.1.3: a string for one audience, an array for several."""
    return audiences[0] if len(audiences) == 1 else list(audiences)


def issue_access_token(
    keys: KeyRing,
    *,
    issuer: str,
    subject: str,
    audiences: Sequence[str],
    client_id: str,
    scope: str,
    now: datetime,
    ttl: int,
    family_id: uuid.UUID | None,
) -> str:
    """RFC 9068 §2: `typ: at+jwt`, RS256, the current key's kid in the header."""
    iat = int(now.timestamp())
    claims: dict[str, object] = {
        "iss": issuer,
        "sub": subject,
        "aud": audience_claim(audiences),
        "client_id": client_id,
        "scope": scope,
        "iat": iat,
        "exp": iat + ttl,
        "jti": secrets.token_urlsafe(16),
    }
    if family_id is not None:
        claims["sid"] = str(family_id)
    header = {"alg": ALG, "typ": "at+jwt", "kid": keys.kid}
    return jwt.encode(header, claims, keys.signing_key, algorithms=[ALG])
