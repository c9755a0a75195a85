"""TokenVerifier: offline verification of RFC 9068 JWT access tokens for resource servers.

The order of checks is fixed and cheap before dear: size, shape, header (`alg` must be RS256,
no `crit`/`b64`, `typ` at+jwt, a `kid`), the key by kid from the issuer's JWKS, the signature
(RSASSA-PKCS1-v1_5 with SHA-256 by `cryptography`, with the key joserfc imported from the JWKS:
the only algorithm ever used, the token's `alg` selects nothing), and only then the claims
(RFC 9068 §4, RFC 7519 §4.1). Each failure raises its own InvalidToken subclass.

Speed (bench/verify.py): the parsed header of each distinct header segment is memoised (every
token signed by one key has the same header); keys are imported once per JWKS fetch; JSON is
parsed by orjson; and the checked claims of a payload whose signature verified are memoised from
its second sighting, because a client presents the same token many times in its life. The
signature is verified and exp/iat/nbf are checked on every call, memo or not.
"""

from __future__ import annotations

import binascii
import math
import time
from collections.abc import Callable, Iterable
from types import MappingProxyType
from typing import Any

import httpx
import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256
from joserfc.jwk import RSAKey

from authserver.verify.claims import AccessTokenClaims
from authserver.verify.errors import (
    BadSignature,
    ExpiredToken,
    InvalidClaims,
    MalformedToken,
    NotYetValid,
    TokenTooLarge,
    UnknownKey,
    UnsupportedAlgorithm,
    UnsupportedHeader,
    WrongAudience,
    WrongIssuer,
    WrongTokenType,
    quoted,
)
from authserver.verify.jwks import ALG, FetchError, KeyCache, KeySource

DEFAULT_LEEWAY = 30.0
DEFAULT_REFETCH_INTERVAL = 10.0
DEFAULT_STALE_IF_ERROR = 900.0
DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_TOKEN_SIZE = 8192
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})  # RFC 9068 §4, case-insensitive
_HEADER_MEMO_LIMIT = 256
_PAYLOAD_MEMO_LIMIT = 1024

# RS256 (RFC 7518 §3.3), the one algorithm: joserfc's own RS256 makes the same call, plus a
# key-use check per call that parse_jwks has already made once per key.
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


def _numeric_date(value: object, name: str) -> float:
    """A NumericDate (RFC 7519 §2): an integer or a finite float, not a bool."""
    if value is None:
        raise InvalidClaims(f"{name} is missing")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidClaims(f"{name} is not a number")
    return value


def _string(value: object, name: str) -> str:
    if value is None:
        raise InvalidClaims(f"{name} is missing")
    if not isinstance(value, str):
        raise InvalidClaims(f"{name} is not a string")
    return value


class TokenVerifier:
    """Verifies the issuer's access tokens offline with its JWKS (SPEC "Resource servers").

    `audience` is one audience or several: a token passes when one of its `aud` values is one of
    them. Use `await verify(token)` in async code and `verify_sync(token)` elsewhere; both return
    AccessTokenClaims or raise an InvalidToken subclass. Thread-safe and event-loop-agnostic.
    """

    def __init__(
        self,
        issuer: str,
        audience: str | Iterable[str],
        *,
        jwks_uri: str | None = None,
        leeway: float = DEFAULT_LEEWAY,
        refetch_interval: float = DEFAULT_REFETCH_INTERVAL,
        stale_if_error: float = DEFAULT_STALE_IF_ERROR,
        timeout: float = DEFAULT_TIMEOUT,
        max_token_size: int = DEFAULT_MAX_TOKEN_SIZE,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        audiences = frozenset([audience] if isinstance(audience, str) else audience)
        if not issuer or not audiences or not all(isinstance(a, str) and a for a in audiences):
            raise ValueError("issuer and at least one audience are required")
        if leeway < 0 or refetch_interval < 0 or stale_if_error < 0 or timeout <= 0:
            raise ValueError("leeway, refetch_interval, stale_if_error must be >= 0, timeout > 0")
        self.issuer = issuer
        self.audiences = audiences
        self.leeway = float(leeway)
        self.max_token_size = max_token_size
        self._clock = clock
        self._monotonic = monotonic
        try:
            source = KeySource(
                issuer,
                jwks_uri,
                timeout=timeout,
                http_client=http_client,
                async_http_client=async_http_client,
            )
        except FetchError as exc:
            raise ValueError(str(exc)) from None
        self.keys = KeyCache(
            source,
            refetch_interval=refetch_interval,
            stale_if_error=stale_if_error,
            monotonic=monotonic,
        )
        self._headers: dict[bytes, str] = {}  # header segment -> kid, for headers that passed
        # payload segment -> its checked claims, for payloads whose signature verified: a client
        # presents the same token many times in its life, and its payload never changes. A
        # payload enters on its second sighting; its first leaves only its hash in `_seen`, so
        # that tokens which never come back do not fill the memo (2 µs each, bench/verify.py).
        # A hash collision only lets a payload in one sighting early: the memo is keyed by bytes.
        self._payloads: dict[bytes, AccessTokenClaims] = {}
        self._seen: set[int] = set()

    # --- public API -----------------------------------------------------------------------

    async def verify(self, token: str | bytes) -> AccessTokenClaims:
        """The token's claims, or an InvalidToken subclass. May fetch the JWKS (async)."""
        header, payload, signature, kid = self._split(token)
        snapshot = self.keys.snapshot
        key = snapshot.keys.get(kid)
        if key is None or self._monotonic() >= snapshot.fresh_until:
            key = await self.keys.get_key(kid)
        return self._check(key, header, payload, signature)

    def verify_sync(self, token: str | bytes) -> AccessTokenClaims:
        """As `verify`, for threads and WSGI: a JWKS fetch, if needed, blocks this thread."""
        header, payload, signature, kid = self._split(token)
        snapshot = self.keys.snapshot
        key = snapshot.keys.get(kid)
        if key is None or self._monotonic() >= snapshot.fresh_until:
            key = self.keys.get_key_sync(kid)
        return self._check(key, header, payload, signature)

    async def prefetch(self) -> bool:
        """Fetch the JWKS now (at start-up, say) rather than on the first token. Never raises;
        True when usable keys are loaded. Subject to the same one-fetch-per-interval limit."""
        return await self.keys.prefetch()

    def prefetch_sync(self) -> bool:
        """As `prefetch`, blocking."""
        return self.keys.prefetch_sync()

    # --- the steps ------------------------------------------------------------------------

    def _split(self, token: str | bytes) -> tuple[bytes, bytes, bytes, str]:
        if isinstance(token, str):
            if len(token) > self.max_token_size:
                raise TokenTooLarge(f"{len(token)} characters (at most {self.max_token_size})")
            try:
                raw = token.encode("ascii")
            except UnicodeEncodeError:
                raise MalformedToken("not ASCII") from None
        elif isinstance(token, bytes):
            raw = token
        else:
            raise MalformedToken(f"a {type(token).__name__}, not a string")
        if len(raw) > self.max_token_size:
            raise TokenTooLarge(f"{len(raw)} bytes (at most {self.max_token_size})")
        parts = raw.split(b".")
        if len(parts) != 3:
            raise MalformedToken(f"{len(parts)} segments, not the 3 of a JWS compact token")
        header, payload, signature = parts
        kid = self._headers.get(header)
        if kid is None:
            kid = self._read_header(header)
            if len(self._headers) >= _HEADER_MEMO_LIMIT:
                self._headers.clear()
            self._headers[header] = kid
        return header, payload, signature, kid

    @staticmethod
    def _read_header(segment: bytes) -> str:
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

    def _check(
        self, key: RSAKey, header: bytes, payload: bytes, signature: bytes
    ) -> AccessTokenClaims:
        try:
            signature_bytes = b64url_decode(signature)
        except ValueError:
            raise MalformedToken("the signature is not base64url") from None
        try:
            key.public_key.verify(signature_bytes, header + b"." + payload, _PKCS1V15, _SHA256)
        except (InvalidSignature, ValueError, TypeError):
            raise BadSignature(f"with kid {quoted(key.kid)}") from None
        known = self._payloads.get(payload)
        if known is not None:  # this very payload passed before: only time has moved on
            self._check_times(known.exp, known.iat, known.nbf)
            return known
        try:
            claims = json_object(payload)
        except ValueError:
            raise MalformedToken("the payload is not a base64url-encoded JSON object") from None
        checked = self._claims(claims)
        self._remember(payload, checked)
        return checked

    def _remember(self, payload: bytes, checked: AccessTokenClaims) -> None:
        """Memoise `checked` if its payload was seen before, else note its hash as seen."""
        fingerprint = hash(payload)  # computed once by the memo lookup, and cached
        if fingerprint in self._seen:
            memo = self._payloads
            if len(memo) >= _PAYLOAD_MEMO_LIMIT:
                memo.clear()
            memo[payload] = checked
        else:
            if len(self._seen) >= _PAYLOAD_MEMO_LIMIT:
                self._seen.clear()
            self._seen.add(fingerprint)

    def _check_times(self, exp: float, iat: float, nbf: float | None) -> None:
        """exp, iat and nbf against now, with the leeway (RFC 7519 §4.1.4-6)."""
        now, leeway = self._clock(), self.leeway
        if now >= exp + leeway:
            raise ExpiredToken(f"expired {now - exp:.0f} s ago")
        if iat > now + leeway:
            raise NotYetValid(f"iat {iat - now:.0f} s in the future")
        if nbf is not None and nbf > now + leeway:
            raise NotYetValid(f"nbf {nbf - now:.0f} s in the future")

    def _claims(self, claims: dict[str, Any]) -> AccessTokenClaims:
        """RFC 9068 §4 and RFC 7519 §4.1; the leeway absorbs clock skew both ways.

        Written for speed: `type(x) is int/str` is the common case, checked inline; anything
        else goes through the helpers, which accept floats and explain what is wrong.
        """
        get = claims.get
        iss = get("iss")
        if iss != self.issuer:
            raise WrongIssuer(f"iss {quoted(_string(iss, 'iss'))}")
        exp, iat, nbf = get("exp"), get("iat"), get("nbf")
        if type(exp) is not int:
            exp = _numeric_date(exp, "exp")
        if type(iat) is not int:
            iat = _numeric_date(iat, "iat")
        if nbf is not None and type(nbf) is not int:
            nbf = _numeric_date(nbf, "nbf")
        self._check_times(exp, iat, nbf)
        aud = get("aud")
        if type(aud) is str:
            if aud not in self.audiences:
                raise WrongAudience(f"aud {quoted(aud)}")
            audiences: tuple[str, ...] = (aud,)
        elif isinstance(aud, list) and aud and all(type(item) is str for item in aud):
            audiences = tuple(aud)
            if self.audiences.isdisjoint(audiences):
                raise WrongAudience(f"aud {quoted(audiences)}")
        else:
            raise InvalidClaims("aud is missing, or not a string or an array of strings")
        sub, client_id, jti = get("sub"), get("client_id"), get("jti")
        scope, sid = get("scope", ""), get("sid")
        if type(sub) is not str:
            sub = _string(sub, "sub")
        if type(client_id) is not str:
            client_id = _string(client_id, "client_id")
        if type(jti) is not str:
            jti = _string(jti, "jti")
        if type(scope) is not str:
            scope = _string(scope, "scope")
        if sid is not None and type(sid) is not str:
            sid = _string(sid, "sid")
        return AccessTokenClaims(  # positional: a third faster than by keyword
            iss,
            sub,
            audiences,
            client_id,
            scope,
            frozenset(scope.split()),
            int(iat),
            int(exp),
            jti,
            None if nbf is None else int(nbf),
            sid,
            MappingProxyType(claims),
        )
