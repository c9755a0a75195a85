"""TokenVerifier: offline verification of RFC 9068 JWT access tokens for resource servers.

The order of checks is fixed and cheap before dear: size, shape, header (authserver.verify.jws:
`alg` must be RS256, no `crit`/`b64`, `typ` at+jwt, a `kid`), the key by kid from the issuer's
JWKS (authserver.verify.cache), the signature (jws), and only then the claims (RFC 9068 §4,
RFC 7519 §4.1; authserver.verify.claims). Each failure raises its own InvalidToken subclass.

Speed (bench/verify.py): the parsed header of each distinct header segment is memoised (every
token signed by one key has the same header); keys are imported once per JWKS fetch; JSON is
parsed by orjson; and the checked claims of a payload whose signature verified are memoised from
its second sighting, because a client presents the same token many times in its life. The
signature is verified and exp/iat/nbf are checked on every call, memo or not.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

import httpx
from joserfc.jwk import RSAKey

from authserver.verify.cache import KeyCache
from authserver.verify.claims import AccessTokenClaims, check_claims, check_times
from authserver.verify.fetch import KeySource
from authserver.verify.jwks import FetchError
from authserver.verify.jws import (
    DEFAULT_MAX_TOKEN_SIZE,
    check_signature,
    read_header,
    read_payload,
    split_token,
)

DEFAULT_LEEWAY = 30.0
DEFAULT_REFETCH_INTERVAL = 10.0
DEFAULT_STALE_IF_ERROR = 900.0
DEFAULT_TIMEOUT = 5.0
_HEADER_MEMO_LIMIT = 256
_PAYLOAD_MEMO_LIMIT = 1024


class TokenVerifier:
    """Verifies the issuer's access tokens offline with its JWKS (SPEC "Resource servers").

    `audience` is one audience or several: a token passes when one of its `aud` values is one of
    them. Use `await verify(token)` in async code and `verify_sync(token)` elsewhere; both return
    AccessTokenClaims or raise an InvalidToken subclass. Thread-safe and event-loop-agnostic.

    Options (all keyword-only; times in seconds):

    - `jwks_uri`: where the JWKS is; by default found by discovery from `issuer`.
    - `leeway` (30): clock skew allowed each way on exp, iat and nbf.
    - `allow_insecure_http` (False): the issuer and JWKS must be fetched over https, or over
      plain http on a loopback host (`localhost`, 127.0.0.0/8, ::1), else ValueError. True
      accepts plain http anywhere: whoever can tamper with that traffic can hand the verifier
      their own keys and sign tokens it accepts. Never downgrades an https issuer's JWKS.
    - `stale_if_error` (900): when the JWKS cannot be refetched (the issuer down or
      unreachable), how long past its freshness the last good keys keep verifying tokens; then
      every token fails with KeySetUnavailable (503 from the integrations). It trades
      availability for revocation: a longer window rides out a longer issuer outage, but a key
      the issuer has since revoked or unpublished keeps verifying for that much longer, for as
      long as this verifier cannot reach the issuer (and someone able to cut that traffic
      decides how long that is). 0 fails closed as soon as the keys are stale.
    - `refetch_interval` (10): at most one JWKS fetch per interval, whatever the reason.
    - `timeout` (5): per HTTP request. `max_token_size` (8192): longer tokens are refused
      before any decoding.
    - `http_client` / `async_http_client`: httpx clients to fetch with (never closed here);
      `clock` / `monotonic`: time sources, for tests.
    """

    def __init__(
        self,
        issuer: str,
        audience: str | Iterable[str],
        *,
        jwks_uri: str | None = None,
        leeway: float = DEFAULT_LEEWAY,
        allow_insecure_http: bool = False,
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
        for name, value in (
            ("leeway", leeway),
            ("refetch_interval", refetch_interval),
            ("stale_if_error", stale_if_error),
            ("timeout", timeout),
        ):  # a NaN leeway would make `now >= exp + leeway` false: nothing would ever expire
            if not 0 <= value < math.inf or (name == "timeout" and value == 0):
                raise ValueError(f"{name} must be a finite number of seconds >= 0 (timeout > 0)")
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
                allow_insecure_http=allow_insecure_http,
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
        header, payload, signature = split_token(token, self.max_token_size)
        kid = self._headers.get(header)
        if kid is None:
            kid = read_header(header)
            if len(self._headers) >= _HEADER_MEMO_LIMIT:
                self._headers.clear()
            self._headers[header] = kid
        return header, payload, signature, kid

    def _check(
        self, key: RSAKey, header: bytes, payload: bytes, signature: bytes
    ) -> AccessTokenClaims:
        check_signature(key, header, payload, signature)
        known = self._payloads.get(payload)
        if known is not None:  # this very payload passed before: only time has moved on
            check_times(known.exp, known.iat, known.nbf, self._clock(), self.leeway)
            return known
        checked = check_claims(
            read_payload(payload), self.issuer, self.audiences, self._clock(), self.leeway
        )
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
