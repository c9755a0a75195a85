"""The verified claims of an RFC 9068 access token, typed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple


class AccessTokenClaims(NamedTuple):
    """What a resource server needs from a verified token (RFC 9068 §2.2), plus every claim.

    `aud` is always a tuple, whether the token carried a string or an array; `scopes` is the
    space-separated `scope` claim as a set (RFC 6749 §3.3). `claims` is the whole payload,
    read-only, for claims this class does not name.

    A NamedTuple rather than a frozen dataclass: just as immutable, and built in a fifth of the
    time (0.3 µs, not 1.7), which is 5 % of verifying a token (bench/verify.py).
    """

    iss: str
    sub: str
    aud: tuple[str, ...]
    client_id: str
    scope: str
    scopes: frozenset[str]
    iat: int
    exp: int
    jti: str
    nbf: int | None
    sid: str | None
    claims: Mapping[str, Any]

    def has_scopes(self, *required: str) -> bool:
        """True when every one of `required` was granted."""
        return self.scopes.issuperset(required)
