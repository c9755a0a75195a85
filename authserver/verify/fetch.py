"""Fetching the issuer's keys over HTTP: discovery of `jwks_uri` (RFC 8414 §3, then OpenID
Connect Discovery 1.0 §4) and the JWKS itself, with httpx, sync or async.

Every response is read up to MAX_DOCUMENT_BYTES; redirects are not followed; a discovered
`jwks_uri` must name the issuer's metadata `issuer` exactly (RFC 8414 §3.3) and be https whenever
the issuer is. When to fetch is authserver.verify.cache's business, not this module's.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx
from joserfc.jwk import RSAKey

from authserver.verify.errors import quoted
from authserver.verify.jwks import FetchError, freshness, parse_jwks

MAX_DOCUMENT_BYTES = 1 << 20
_ACCEPT = {"Accept": "application/json"}


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


def check_url(url: str, issuer: str, what: str, *, allow_insecure_http: bool) -> str:
    """`url`, if the verifier may fetch it: an absolute http(s) URL; https whenever the issuer
    is https; plain http only on a loopback host, unless `allow_insecure_http` (issue 15,
    finding 10: whoever sits between a resource server and a plain-http issuer can hand it
    their own keys, and every token they sign with them passes). Else FetchError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FetchError(f"{what} {quoted(url)} is not an absolute http(s) URL")
    if urlsplit(issuer).scheme == "https" and parts.scheme != "https":
        raise FetchError(f"{what} {quoted(url)} is not https, but the issuer is")
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback(parts.hostname):
        raise FetchError(
            f"{what} {quoted(url)} is plain http on a host that is not loopback: use https, "
            "or pass allow_insecure_http=True to accept keys anyone on the path could replace"
        )
    return url


def is_loopback(host: str | None) -> bool:
    """`localhost`, or a literal loopback address (127.0.0.0/8, ::1). Names that merely start
    with them (`localhost.example`, `127.0.0.1.nip.io`) are other hosts."""
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, its body read up to MAX_DOCUMENT_BYTES."""

    url: str
    status: int
    headers: httpx.Headers
    body: bytes


@dataclass(frozen=True)
class Fetched:
    """The usable keys of a JWKS, and how long they stay fresh (seconds)."""

    keys: dict[str, RSAKey]
    ttl: float


def jwks_uri_from_metadata(reply: Reply, issuer: str, *, allow_insecure_http: bool) -> str:
    """The `jwks_uri` of the issuer's metadata document, checked (RFC 8414 §2, §3.3)."""
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
    return check_url(jwks_uri, issuer, "jwks_uri", allow_insecure_http=allow_insecure_http)


def keys_from_reply(reply: Reply) -> Fetched:
    """The keys of a JWKS response, fresh for what its Cache-Control allows."""
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
        allow_insecure_http: bool = False,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
    ) -> None:
        """FetchError when a URL it would fetch is not acceptable (see check_url): the issuer's
        own (discovery is derived from it) when `jwks_uri` is not given, else `jwks_uri`."""
        self.issuer = issuer
        self.allow_insecure_http = allow_insecure_http
        if jwks_uri:
            check_url(jwks_uri, issuer, "jwks_uri", allow_insecure_http=allow_insecure_http)
        else:
            check_url(issuer, issuer, "issuer", allow_insecure_http=allow_insecure_http)
        self.jwks_uri = jwks_uri or None
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
                reply = get(client, url)
                return jwks_uri_from_metadata(
                    reply, self.issuer, allow_insecure_http=self.allow_insecure_http
                )
            except (FetchError, httpx.HTTPError) as exc:
                errors.append(describe(exc))
        raise FetchError("discovery failed: " + "; ".join(errors))

    async def _discover_async(self, client: httpx.AsyncClient) -> str:
        errors: list[str] = []
        for url in metadata_urls(self.issuer):
            try:
                reply = await get_async(client, url)
                return jwks_uri_from_metadata(
                    reply, self.issuer, allow_insecure_http=self.allow_insecure_http
                )
            except (FetchError, httpx.HTTPError) as exc:
                errors.append(describe(exc))
        raise FetchError("discovery failed: " + "; ".join(errors))


def describe(exc: BaseException) -> str:
    """A failed fetch in one line, for the log."""
    return str(exc) if isinstance(exc, FetchError) else f"{exc.__class__.__name__}: {exc}"
