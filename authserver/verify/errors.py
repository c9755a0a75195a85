"""Why a token was refused: one exception class per reason, all deriving from InvalidToken.

`reason` is a short stable code for logs and metrics; `description` is a fixed sentence that is
safe to send back in an RFC 6750 §3 `error_description` (it contains only the characters that
section allows). Neither ever contains the token: `detail` (the message) may name a header value
such as a `kid`, always shortened and `repr`-quoted, never a signature or payload.
"""

from __future__ import annotations

from typing import ClassVar

_DETAIL_LIMIT = 80


def quoted(value: object) -> str:
    """A token-supplied value as it may appear in a message: repr, at most 80 characters."""
    text = repr(value)
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 3] + "..."


class InvalidToken(Exception):
    """The access token must not be accepted (RFC 6750 §3.1 `invalid_token`)."""

    reason: ClassVar[str] = "invalid_token"
    description: ClassVar[str] = "The access token is invalid."

    def __init__(self, detail: str = "") -> None:
        self.detail = detail
        super().__init__(f"{self.reason}: {detail}" if detail else self.reason)


class MalformedToken(InvalidToken):
    """Not a JWS compact serialization we can read: segments, base64url, JSON, header members."""

    reason = "malformed"
    description = "The access token is malformed."


class TokenTooLarge(MalformedToken):
    """Longer than `max_token_size`: refused before any decoding."""

    reason = "too_large"
    description = "The access token is too large."


class UnsupportedAlgorithm(InvalidToken):
    """`alg` is anything but RS256 (`none`, HS256 keyed with our public key, ES256, PS256…)."""

    reason = "unsupported_alg"
    description = "The access token is not signed with RS256."


class UnsupportedHeader(InvalidToken):
    """A `crit` (RFC 7515 §4.1.11) or `b64` (RFC 7797) header: extensions we do not implement."""

    reason = "unsupported_header"
    description = "The access token uses an unsupported header."


class WrongTokenType(InvalidToken):
    """`typ` is not `at+jwt` (RFC 9068 §4): an ID token or another JWT must not pass."""

    reason = "wrong_typ"
    description = "The token is not an access token."


class UnknownKey(InvalidToken):
    """No `kid`, or a `kid` the issuer's JWKS does not hold even after the allowed refetch."""

    reason = "unknown_kid"
    description = "The access token is signed with an unknown key."


class BadSignature(InvalidToken):
    """The RS256 signature does not verify: tampered, truncated or signed by another key."""

    reason = "bad_signature"
    description = "The access token signature is invalid."


class InvalidClaims(InvalidToken):
    """A claim RFC 9068 §2.2 requires is missing, or a claim has the wrong JSON type."""

    reason = "invalid_claims"
    description = "The access token claims are invalid."


class ExpiredToken(InvalidToken):
    """`exp` is in the past, beyond the leeway (RFC 7519 §4.1.4)."""

    reason = "expired"
    description = "The access token has expired."


class NotYetValid(InvalidToken):
    """`nbf` or `iat` is in the future, beyond the leeway (RFC 7519 §4.1.5, §4.1.6)."""

    reason = "not_yet_valid"
    description = "The access token is not valid yet."


class WrongIssuer(InvalidToken):
    """`iss` is not the configured issuer (RFC 9068 §4)."""

    reason = "wrong_issuer"
    description = "The access token is from another issuer."


class WrongAudience(InvalidToken):
    """None of the token's `aud` values is one of ours (RFC 9068 §4)."""

    reason = "wrong_audience"
    description = "The access token is not meant for this resource server."


class KeySetUnavailable(InvalidToken):
    """The JWKS cannot be had: never fetched, or the issuer has been unreachable for longer
    than the stale-if-error window. Not the token's fault: the Starlette integration answers
    503, not 401, so that clients keep their tokens."""

    reason = "jwks_unavailable"
    description = "The issuer's keys are unavailable; try again later."
