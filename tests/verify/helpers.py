"""Tools for the verifier tests: an issuer's keys and an attacker's token forge, a JWKS server
that counts its requests, and clocks the tests move by hand."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from joserfc.jwk import RSAKey

from authserver.verify import TokenVerifier

ISSUER = "https://as.example"
AUDIENCE = "https://api.example"
JWKS_URI = f"{ISSUER}/.well-known/jwks.json"
METADATA_URI = f"{ISSUER}/.well-known/oauth-authorization-server"
START = 1_800_000_000.0  # the tests' "now", wall clock


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: object) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def new_key(size: int = 2048) -> RSAKey:
    return RSAKey.generate_key(size, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True)


def public_jwk(key: RSAKey, **extra: Any) -> dict[str, Any]:
    """The JWK authserver publishes: kty, kid, use, alg, n, e."""
    return {**key.as_dict(private=False), **extra}


def claims(now: float = START, **overrides: Any) -> dict[str, Any]:
    """The claims authserver puts in an access token; `name=None` removes a claim."""
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "024da017-7e9c-432b-a8dc-5e1727c1af8c",
        "aud": AUDIENCE,
        "client_id": "WtP3XUucKxbRVmCJ9EyBaw",
        "scope": "profile:read orders",
        "iat": int(now),
        "exp": int(now) + 900,
        "jti": "Q0_iLwSDqGAMbelaZUSzCg",
        "sid": "b224eec0-9945-4c24-9fc6-e9c5e100cc70",
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def header(key: RSAKey | None, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"alg": "RS256", "typ": "at+jwt"}
    if key is not None:
        base["kid"] = key.kid
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def sign_rs256(key: RSAKey, head: dict[str, Any], body: dict[str, Any] | bytes) -> str:
    """A compact JWS signed with RSASSA-PKCS1-v1_5/SHA-256, whatever the header says: the
    forge lets a test put anything in the header (crit, jku, a lying alg)."""
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    signing_input = f"{b64json(head)}.{b64(payload)}".encode()
    private = key.private_key
    assert isinstance(private, rsa.RSAPrivateKey)
    signature = private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode()}.{b64(signature)}"


def sign_hs256(secret: bytes, head: dict[str, Any], body: dict[str, Any]) -> str:
    """The classic algorithm-confusion forgery: HMAC keyed with something public."""
    signing_input = f"{b64json(head)}.{b64json(body)}".encode()
    mac = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return f"{signing_input.decode()}.{b64(mac)}"


def unsigned(head: dict[str, Any], body: dict[str, Any]) -> str:
    """`alg: none` (RFC 7519 §6.1): an empty signature."""
    return f"{b64json(head)}.{b64json(body)}."


class ManualClock:
    """Wall and monotonic time, moved by the test."""

    def __init__(self, now: float = START) -> None:
        self.now = now
        self.mono = 1000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds


@dataclass
class JWKSServer:
    """The issuer's metadata and JWKS over httpx.MockTransport, counting requests by URL.

    `keys` is what the JWKS serves; `cache_control` its header; `down` makes every request
    fail with a connection error, `status` with that HTTP status. Any other URL (a `jku` a
    token names, say) is recorded and answered 404.
    """

    keys: list[dict[str, Any]] = field(default_factory=list)
    cache_control: str | None = "public, max-age=300"
    issuer: str = ISSUER
    down: bool = False
    status: int = 200
    jwks_body: bytes | None = None  # served instead of {"keys": …} when set
    requests: Counter[str] = field(default_factory=Counter)

    def handle(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.requests[url] += 1
        if self.down:
            raise httpx.ConnectError("issuer unreachable", request=request)
        if self.status != 200:
            return httpx.Response(self.status, json={"error": "unavailable"})
        if url == METADATA_URI:
            return httpx.Response(200, json={"issuer": self.issuer, "jwks_uri": JWKS_URI})
        if url == JWKS_URI:
            headers = {} if self.cache_control is None else {"Cache-Control": self.cache_control}
            if self.jwks_body is not None:
                return httpx.Response(200, content=self.jwks_body, headers=headers)
            return httpx.Response(200, json={"keys": self.keys}, headers=headers)
        return httpx.Response(404, json={"error": "not_found"})

    @property
    def jwks_fetches(self) -> int:
        return self.requests[JWKS_URI]

    @property
    def other_requests(self) -> dict[str, int]:
        return {u: n for u, n in self.requests.items() if u not in (JWKS_URI, METADATA_URI)}

    def verifier(self, clock: ManualClock | None = None, **options: Any) -> TokenVerifier:
        """A TokenVerifier on this server for both sync and async use (discovery unless
        `jwks_uri` is given)."""
        transport = httpx.MockTransport(self.handle)
        if clock is not None:
            options.setdefault("clock", clock.time)
            options.setdefault("monotonic", clock.monotonic)
        return TokenVerifier(
            options.pop("issuer", ISSUER),
            options.pop("audience", AUDIENCE),
            http_client=httpx.Client(transport=transport),
            async_http_client=httpx.AsyncClient(transport=transport),
            **options,
        )


def wall_clock_claims(**overrides: Any) -> dict[str, Any]:
    """`claims` for tests that run on the real clock."""
    return claims(time.time(), **overrides)


# RFC 6750 §3: Bearer realm="…", error="…", error_description="…" (scope="…")
CHALLENGE = re.compile(
    r'^Bearer realm="(?P<realm>[^"]*)", error="(?P<error>[a-z_]+)", '
    r'error_description="(?P<description>[\x20\x21\x23-\x5b\x5d-\x7e]+)"'
    r'(, scope="(?P<scope>[^"]+)")?$'
)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_challenge(
    response: httpx.Response, status: int, error: str, scope: str | None = None
) -> str:
    assert response.status_code == status, response.text
    match = CHALLENGE.match(response.headers["www-authenticate"])
    assert match is not None, response.headers["www-authenticate"]
    assert match["realm"] == "example"
    assert match["error"] == error
    assert match["scope"] == scope
    body = response.json()
    assert body["error"] == error
    assert body["error_description"] == match["description"]
    return match["description"]
