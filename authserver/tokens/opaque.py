"""Opaque secrets: refresh tokens (and client secrets) are 256-bit random strings that the
server hands out once and stores only as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import secrets

REFRESH_TOKEN_PREFIX = "asrt_"  # noqa: S105 (a prefix, greppable in logs and secret scanners)


def new_refresh_token() -> str:
    """256 bits from the OS CSPRNG, URL-safe."""
    return REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> bytes:
    """What the database keeps instead of a refresh token or client secret.

    A plain SHA-256 is enough: the inputs are 256-bit random values, not guessable passwords.
    """
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
