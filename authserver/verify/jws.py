"""An access token as a JWS compact serialization (RFC 7515 §7.1): split it, read its header,
check its signature. Nothing here looks at the claims or fetches anything.

The header must say `alg: RS256` (the one algorithm: the token's `alg` selects nothing, it is
only checked), `typ: at+jwt` (RFC 9068 §4), carry a `kid`, and use no extension we do not
implement (`crit`, `b64`). The signature is RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3),
verified by `cryptography` with a key joserfc imported from the issuer's JWKS. A token's `jku`,
`x5u`, `jwk` or `x5c` header is never looked at.
"""

from __future__ import annotations

import binascii
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256
from joserfc.jwk import RSAKey

from authserver.verify.errors import (
    BadSignature,
    MalformedToken,
    TokenTooLarge,
    UnknownKey,
    UnsupportedAlgorithm,
    UnsupportedHeader,
    WrongTokenType,
    quoted,
)

ALG = "RS256"  # the one signing algorithm of authserver's access tokens (RFC 7518 §3.3)
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 (RFC 9068 §2.1: the `typ` authserver writes)
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})  # RFC 9068 §4, case-insensitive
DEFAULT_MAX_TOKEN_SIZE = 8192

# RS256, the one algorithm: joserfc's own RS256 makes the same call, plus a key-use check per
# call that parse_jwks has already made once per key.
_PKCS1V15, _SHA256 = PKCS1v15(), SHA256()

# base64url -> base64, and `+`, `/`, `=` (not base64url) -> `!`, which strict a2b_base64 refuses.
_FROM_URLSAFE = bytes.maketrans(b"-_+/=", b"+/!!!")
_PADDING = (b"", b"", b"==", b"=")
# The last character of a canonical encoding that leaves 4 or 2 unused bits (RFC 4648 §3.5).
_CANONICAL_LAST = (b"", b"", b"AQgw", b"AEIMQUYcgkosw048")


def b64url_decode(segment: bytes) -> bytes:
    """Strict unpadded base64url (RFC 7515 §2): exactly one encoding per value, or ValueError.

    Characters outside the base64url alphabet, impossible lengths and non-zero unused bits are
    all refused, so no two different segments decode to the same bytes.
    """
    remainder = len(segment) & 3
    if remainder and (remainder == 1 or segment[-1] not in _CANONICAL_LAST[remainder]):
        raise ValueError("not canonical base64url")
    translated = segment.translate(_FROM_URLSAFE) + _PADDING[remainder]
    return binascii.a2b_base64(translated, strict_mode=True)  # binascii.Error is a ValueError


def json_object(segment: bytes) -> dict[str, Any]:
    """A base64url segment holding a JSON object (RFC 7519 §7.2 steps 7-10), or ValueError.

    orjson, not the stdlib: it refuses what RFC 8259 does (invalid UTF-8, lone surrogates, NaN,
    anything after the value) at three times the speed, a tenth of a new token's cost.
    """
    value = orjson.loads(b64url_decode(segment))  # orjson.JSONDecodeError is a ValueError
    if type(value) is not dict:
        raise ValueError("not a JSON object")
    return value


def split_token(token: str | bytes, max_size: int) -> list[bytes]:
    """The three segments of a compact JWS (header, payload, signature), still encoded.

    Too long (TokenTooLarge) is refused before anything is decoded; not ASCII, or not three
    segments, is MalformedToken.
    """
    if isinstance(token, str):
        if len(token) > max_size:
            raise TokenTooLarge(f"{len(token)} characters (at most {max_size})")
        try:
            raw = token.encode("ascii")
        except UnicodeEncodeError:
            raise MalformedToken("not ASCII") from None
    elif isinstance(token, bytes):
        raw = token
    else:
        raise MalformedToken(f"a {type(token).__name__}, not a string")
    if len(raw) > max_size:
        raise TokenTooLarge(f"{len(raw)} bytes (at most {max_size})")
    parts = raw.split(b".")
    if len(parts) != 3:
        raise MalformedToken(f"{len(parts)} segments, not the 3 of a JWS compact token")
    return parts


def read_header(segment: bytes) -> str:
    """The kid, once the header passed RFC 9068 §4 and RFC 7515 §4.1 checks."""
    try:
        header = json_object(segment)
    except ValueError:
        raise MalformedToken("the header is not a base64url-encoded JSON object") from None
    alg = header.get("alg")
    if alg != ALG:
        raise UnsupportedAlgorithm(f"alg {quoted(alg)}")
    if "crit" in header or "b64" in header:
        raise UnsupportedHeader("crit or b64 in the header")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
        raise WrongTokenType(f"typ {quoted(typ)}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise UnknownKey("no kid in the header")
    return kid


def check_signature(key: RSAKey, header: bytes, payload: bytes, signature: bytes) -> None:
    """The RS256 signature of `header.payload` verifies with `key`, or BadSignature."""
    try:
        signature_bytes = b64url_decode(signature)
    except ValueError:
        raise MalformedToken("the signature is not base64url") from None
    try:
        key.public_key.verify(signature_bytes, header + b"." + payload, _PKCS1V15, _SHA256)
    except (InvalidSignature, ValueError, TypeError):
        raise BadSignature(f"with kid {quoted(key.kid)}") from None


def read_payload(segment: bytes) -> dict[str, Any]:
    """The claims as a JSON object (after the signature verified), or MalformedToken."""
    try:
        return json_object(segment)
    except ValueError:
        raise MalformedToken("the payload is not a base64url-encoded JSON object") from None
