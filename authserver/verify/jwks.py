"""The issuer's signing keys for a resource server: discovery, fetching, parsing and caching.

`KeySource` finds `jwks_uri` (RFC 8414 §3, then OpenID Connect discovery) and fetches the JWKS
with httpx, sync or async. `KeyCache` keeps the imported keys by `kid` and decides when to fetch:

- a JWKS is fresh for its `Cache-Control: max-age` (minus `Age`; RFC 9111 §4.2), 300 s without one;
- at most one fetch starts per `refetch_interval` (10 s), whatever the reason: an unknown `kid`,
  a stale set, a failed fetch. A flood of bogus kids therefore costs the issuer one request per
  interval, and callers that arrive while a fetch runs wait for it instead of starting another;
- when a fetch fails the last good keys stay usable for `stale_if_error` seconds past their
  freshness (RFC 5861 §4 semantics), then verification fails with KeySetUnavailable.

Only keys named by the JWKS are ever used: a token's `jku`, `x5u`, `jwk` or `x5c` header is never
looked at, let alone fetched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from joserfc.jwk import RSAKey

from authserver.verify.errors import KeySetUnavailable, UnknownKey, quoted

logger = logging.getLogger("authserver.verify")

ALG = "RS256"
DEFAULT_TTL = 300.0  # freshness of a JWKS served without max-age
MAX_TTL = 86400.0  # never trust a JWKS for longer than a day without asking again
MAX_DOCUMENT_BYTES = 1 << 20
MAX_KEYS = 100
MIN_RSA_BITS = 2048


class FetchError(Exception):
    """Discovery or the JWKS could not be fetched or understood. The message is safe to log."""


# --- parsing ----------------------------------------------------------------------------------


def parse_jwks(document: bytes) -> dict[str, RSAKey]:
    """The usable keys of a JWKS document, by kid (RFC 7517 §5).

    Usable means RSA, at least 2048 bits, with a kid, `use` absent or `sig`, `alg` absent or
    RS256, `key_ops` absent or containing `verify`. Only `n` and `e` are imported, so a private
    member published by mistake is never used. Other keys are skipped, not fatal (a JWKS may
    also carry encryption or EC keys); a kid that appears twice is ambiguous and dropped.
    """
    try:
        data = json.loads(document)
    except (ValueError, RecursionError) as exc:
        raise FetchError("the JWKS is not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise FetchError('the JWKS has no "keys" array')
    entries: list[Any] = data["keys"]
    if len(entries) > MAX_KEYS:
        raise FetchError(f"the JWKS has {len(entries)} keys (at most {MAX_KEYS})")
    keys: dict[str, RSAKey] = {}
    duplicates: set[str] = set()
    for entry in entries:
        key = _usable_key(entry)
        if key is None:
            continue
        kid = key.kid
        assert kid is not None
        if kid in keys:
            duplicates.add(kid)
        keys[kid] = key
    for kid in duplicates:
        logger.warning("JWKS lists kid %s more than once; ignoring it", quoted(kid))
        del keys[kid]
    return keys


def _usable_key(entry: object) -> RSAKey | None:
    if not isinstance(entry, dict) or entry.get("kty") != "RSA":
        return None
    kid, n, e = entry.get("kid"), entry.get("n"), entry.get("e")
    if not (isinstance(kid, str) and kid and isinstance(n, str) and isinstance(e, str)):
        return None
    if entry.get("use", "sig") != "sig" or entry.get("alg", ALG) != ALG:
        return None
    key_ops = entry.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return None
    try:
        key = RSAKey.import_key(
            {"kty": "RSA", "n": n, "e": e}, parameters={"kid": kid, "use": "sig", "alg": ALG}
        )
    except Exception:  # joserfc raises assorted errors for bad numbers
        logger.warning("JWKS key %s is not a valid RSA public key; ignoring it", quoted(kid))
        return None
    if key.raw_value.key_size < MIN_RSA_BITS:
        logger.warning("JWKS key %s has fewer than %d bits; ignoring it", quoted(kid), MIN_RSA_BITS)
        return None
    return key


def freshness(headers: Mapping[str, str]) -> float:
    """Seconds a response stays fresh: `max-age` minus `Age` (RFC 9111 §4.2.1, §5.1);
    `no-store`/`no-cache` mean 0; absent or unreadable, DEFAULT_TTL; never above MAX_TTL."""
    ttl = DEFAULT_TTL
    for directive in headers.get("cache-control", "").split(","):
        name, _, value = directive.strip().partition("=")
        name = name.strip().lower()
        if name in ("no-store", "no-cache"):
            return 0.0
        if name == "max-age":
            try:
                ttl = float(int(value.strip().strip('"')))
            except ValueError:
                continue
    try:
        age = float(int(headers.get("age", "0")))
    except ValueError:
        age = 0.0
    return min(max(ttl - max(age, 0.0), 0.0), MAX_TTL)


def metadata_urls(issuer: str) -> list[str]:
    """Where the issuer's metadata lives: RFC 8414 §3.1 (well-known segment inserted before the
    issuer's path), then OpenID Connect Discovery 1.0 §4 (appended)."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    rfc8414 = urlunsplit(
        (parts.scheme, parts.netloc, "/.well-known/oauth-authorization-server" + path, "", "")
    )
    oidc = issuer.rstrip("/") + "/.well-known/openid-configuration"
    return [rfc8414, oidc]


def check_url(url: str, issuer: str, what: str) -> str:
    """An absolute http(s) URL; https whenever the issuer is https."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FetchError(f"{what} {quoted(url)} is not an absolute http(s) URL")
    if urlsplit(issuer).scheme == "https" and parts.scheme != "https":
        raise FetchError(f"{what} {quoted(url)} is not https, but the issuer is")
    return url


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, its body read up to MAX_DOCUMENT_BYTES."""

    url: str
    status: int
    headers: httpx.Headers
    body: bytes


def jwks_uri_from_metadata(reply: Reply, issuer: str) -> str:
    if reply.status != 200:
        raise FetchError(f"discovery at {reply.url} answered {reply.status}")
    try:
        metadata = json.loads(reply.body)
    except (ValueError, RecursionError) as exc:
        raise FetchError(f"discovery at {reply.url} is not JSON") from exc
    if not isinstance(metadata, dict):
        raise FetchError(f"discovery at {reply.url} is not a JSON object")
    if metadata.get("issuer") != issuer:  # RFC 8414 §3.3: MUST be identical
        raise FetchError(f"discovery at {reply.url} names issuer {quoted(metadata.get('issuer'))}")
    jwks_uri = metadata.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise FetchError(f"discovery at {reply.url} has no jwks_uri")
    return check_url(jwks_uri, issuer, "jwks_uri")


def keys_from_reply(reply: Reply) -> Fetched:
    if reply.status != 200:
        raise FetchError(f"JWKS at {reply.url} answered {reply.status}")
    return Fetched(parse_jwks(reply.body), freshness(reply.headers))


def get(client: httpx.Client, url: str) -> Reply:
    """GET `url`, reading at most MAX_DOCUMENT_BYTES: a broken or hostile server cannot make
    the verifier buffer an endless body."""
    with client.stream("GET", url, headers=_ACCEPT) as response:
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > MAX_DOCUMENT_BYTES:
                raise FetchError(f"{url} sent more than {MAX_DOCUMENT_BYTES} bytes")
        return Reply(url, response.status_code, response.headers, bytes(body))


async def get_async(client: httpx.AsyncClient, url: str) -> Reply:
    """As `get`, async."""
    async with client.stream("GET", url, headers=_ACCEPT) as response:
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_DOCUMENT_BYTES:
                raise FetchError(f"{url} sent more than {MAX_DOCUMENT_BYTES} bytes")
        return Reply(url, response.status_code, response.headers, bytes(body))


# --- fetching ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fetched:
    keys: dict[str, RSAKey]
    ttl: float


class KeySource:
    """Discovery and JWKS fetches over httpx. Without a client of yours, each fetch opens and
    closes its own (fetches are minutes apart), so nothing needs closing and no connection is
    tied to one event loop. A client you pass is used as is and never closed here."""

    def __init__(
        self,
        issuer: str,
        jwks_uri: str | None,
        *,
        timeout: float,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.issuer = issuer
        self.jwks_uri = check_url(jwks_uri, issuer, "jwks_uri") if jwks_uri else None
        self.timeout = timeout
        self._client = http_client
        self._async_client = async_http_client

    def fetch_sync(self) -> Fetched:
        if self._client is not None:
            return self._fetch_with(self._client)
        with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
            return self._fetch_with(client)

    async def fetch(self) -> Fetched:
        if self._async_client is not None:
            return await self._fetch_with_async(self._async_client)
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
            return await self._fetch_with_async(client)

    def _fetch_with(self, client: httpx.Client) -> Fetched:
        if self.jwks_uri is None:
            self.jwks_uri = self._discover(client)
        return keys_from_reply(get(client, self.jwks_uri))

    async def _fetch_with_async(self, client: httpx.AsyncClient) -> Fetched:
        if self.jwks_uri is None:
            self.jwks_uri = await self._discover_async(client)
        return keys_from_reply(await get_async(client, self.jwks_uri))

    def _discover(self, client: httpx.Client) -> str:
        errors: list[str] = []
        for url in metadata_urls(self.issuer):
            try:
                return jwks_uri_from_metadata(get(client, url), self.issuer)
            except (FetchError, httpx.HTTPError) as exc:
                errors.append(_describe(exc))
        raise FetchError("discovery failed: " + "; ".join(errors))

    async def _discover_async(self, client: httpx.AsyncClient) -> str:
        errors: list[str] = []
        for url in metadata_urls(self.issuer):
            try:
                return jwks_uri_from_metadata(await get_async(client, url), self.issuer)
            except (FetchError, httpx.HTTPError) as exc:
                errors.append(_describe(exc))
        raise FetchError("discovery failed: " + "; ".join(errors))


_ACCEPT = {"Accept": "application/json"}


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, FetchError) else f"{exc.__class__.__name__}: {exc}"


# --- caching ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """One JWKS as imported: replaced whole, never mutated, so readers need no lock."""

    keys: Mapping[str, RSAKey]
    fresh_until: float  # monotonic time
    stale_until: float  # usable until then when the issuer cannot be reached


EMPTY = Snapshot({}, -math.inf, -math.inf)


@dataclass
class _Flight:
    """A fetch in progress; callers that need its result wait on `done` (or on `task`)."""

    done: threading.Event = field(default_factory=threading.Event)
    task: asyncio.Task[None] | None = None


def _fetching_on_this_loop(flight: _Flight) -> bool:
    """True when `flight` is an async fetch on the event loop running in this thread (someone
    called verify_sync from async code)."""
    if flight.task is None:
        return False
    try:
        return flight.task.get_loop() is asyncio.get_running_loop()
    except RuntimeError:  # no event loop running in this thread
        return False


class KeyCache:
    """The keys by kid, and the rules for when to fetch them (see the module docstring)."""

    def __init__(
        self,
        source: KeySource,
        *,
        refetch_interval: float,
        stale_if_error: float,
        monotonic: Callable[[], float],
    ) -> None:
        self.source = source
        self.refetch_interval = refetch_interval
        self.stale_if_error = stale_if_error
        self.monotonic = monotonic
        self.snapshot = EMPTY
        self._lock = threading.Lock()  # guards _last_attempt and _flight; never held over I/O
        self._last_attempt: float | None = None
        self._flight: _Flight | None = None

    def get_key_sync(self, kid: str) -> RSAKey:
        action, key, flight = self._plan(kid)
        if action == "use":
            assert key is not None
            return key
        if action == "fetch":
            assert flight is not None
            self._run_sync(flight)
        elif action == "wait":
            assert flight is not None
            if not _fetching_on_this_loop(flight):  # waiting would block that very fetch
                flight.done.wait(self._wait_limit())
        return self._settle(kid)

    async def get_key(self, kid: str) -> RSAKey:
        action, key, flight = self._plan(kid)
        if action == "use":
            assert key is not None
            return key
        if action == "fetch":
            assert flight is not None
            flight.task = asyncio.ensure_future(self._run_async(flight))  # before any await
            await asyncio.shield(flight.task)  # a cancelled request does not cancel the fetch
        elif action == "wait":
            assert flight is not None
            await self._wait_async(flight)
        return self._settle(kid)

    async def prefetch(self) -> bool:
        """Load the JWKS unless fresh (no kid is empty, so "" only ever triggers a fetch)."""
        if self._fresh():
            return True
        with contextlib.suppress(UnknownKey, KeySetUnavailable):
            await self.get_key("")
        return self._usable()

    def prefetch_sync(self) -> bool:
        if self._fresh():
            return True
        with contextlib.suppress(UnknownKey, KeySetUnavailable):
            self.get_key_sync("")
        return self._usable()

    def _fresh(self) -> bool:
        return bool(self.snapshot.keys) and self.monotonic() < self.snapshot.fresh_until

    def _usable(self) -> bool:
        return bool(self.snapshot.keys) and self.monotonic() < self.snapshot.stale_until

    async def _wait_async(self, flight: _Flight) -> None:
        task = flight.task
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            await asyncio.shield(task)
        else:  # a sync fetch, or one started on another event loop
            await asyncio.to_thread(flight.done.wait, self._wait_limit())

    def _wait_limit(self) -> float:
        return self.source.timeout * 3 + 1.0  # discovery (two tries) and the JWKS itself

    def _plan(self, kid: str) -> tuple[str, RSAKey | None, _Flight | None]:
        """use (a key), fetch (this caller does it), wait (for a running fetch), or settle
        (answer from the keys we have)."""
        with self._lock:
            now = self.monotonic()
            snapshot = self.snapshot
            key = snapshot.keys.get(kid)
            if key is not None and now < snapshot.fresh_until:
                return "use", key, None
            if self._flight is not None:
                if key is not None and now < snapshot.stale_until:
                    return "use", key, None  # stale-while-revalidate
                return "wait", None, self._flight
            if self._last_attempt is None or now - self._last_attempt >= self.refetch_interval:
                self._last_attempt = now
                self._flight = _Flight()
                return "fetch", None, self._flight
            return "settle", None, None

    def _settle(self, kid: str) -> RSAKey:
        snapshot = self.snapshot
        if self.monotonic() >= snapshot.stale_until:
            raise KeySetUnavailable("no usable JWKS: never fetched, or too long unreachable")
        key = snapshot.keys.get(kid)
        if key is None:
            raise UnknownKey(f"kid {quoted(kid)} is not in the issuer's JWKS")
        return key

    def _run_sync(self, flight: _Flight) -> None:
        try:
            self._install(self.source.fetch_sync())
        except Exception as exc:  # any failure keeps the last good keys
            self._failed(exc)
        finally:
            self._land(flight)

    async def _run_async(self, flight: _Flight) -> None:
        try:
            self._install(await self.source.fetch())
        except Exception as exc:  # any failure keeps the last good keys
            self._failed(exc)
        finally:
            self._land(flight)

    def _install(self, fetched: Fetched) -> None:
        now = self.monotonic()
        self.snapshot = Snapshot(
            fetched.keys, now + fetched.ttl, now + fetched.ttl + self.stale_if_error
        )
        logger.info(
            "fetched the JWKS of %s: %d usable keys, fresh for %.0f s",
            self.source.issuer,
            len(fetched.keys),
            fetched.ttl,
        )

    def _failed(self, exc: Exception) -> None:
        keeping = "keeping the last good keys" if self.snapshot.keys else "no keys yet"
        logger.warning(
            "fetching the JWKS of %s failed (%s); %s", self.source.issuer, _describe(exc), keeping
        )

    def _land(self, flight: _Flight) -> None:
        with self._lock:
            if self._flight is flight:
                self._flight = None
        flight.done.set()
