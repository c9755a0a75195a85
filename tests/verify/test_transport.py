"""What the verifier fetches over (issue 15, finding 10): https, or plain http on a loopback
host only, unless the caller opts in with allow_insecure_http=True; and the stale-if-error
window, which the caller chooses."""

from __future__ import annotations

import logging
from collections import Counter

import httpx
import pytest
from joserfc.jwk import RSAKey

from authserver.verify import KeySetUnavailable, TokenVerifier
from tests.verify.helpers import (
    AUDIENCE,
    START,
    JWKSServer,
    ManualClock,
    claims,
    header,
    public_jwk,
    sign_rs256,
)

LOOPBACK = [
    "http://127.0.0.1:8000",
    "http://localhost:8000",
    "http://LocalHost",
    "http://[::1]:8000",
    "http://127.8.9.10/tenant",
]
NOT_LOOPBACK = [
    "http://as.example",
    "http://10.0.0.5:8000",
    "http://192.168.1.2",
    "http://0.0.0.0:8000",
    "http://127.0.0.1.nip.io",
    "http://localhost.evil.example",
    "http://localhost@as.example",
    "http://127.0.0.1:8000@as.example",
]


def token(key: RSAKey, issuer: str) -> str:
    return sign_rs256(key, header(key), claims(iss=issuer))


class Issuer:
    """An issuer's metadata and JWKS at any base URL, over httpx.MockTransport."""

    def __init__(self, base: str, key: RSAKey, jwks_uri: str | None = None) -> None:
        self.base = base
        self.key = key
        self.jwks_uri = jwks_uri or f"{base}/jwks.json"
        self.requests: Counter[str] = Counter()

    def handle(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)  # httpx writes the host in lower case
        self.requests[url] += 1
        if "/.well-known/oauth-authorization-server" in url:
            return httpx.Response(200, json={"issuer": self.base, "jwks_uri": self.jwks_uri})
        if url == self.jwks_uri.lower():
            return httpx.Response(200, json={"keys": [public_jwk(self.key)]})
        return httpx.Response(404)

    def verifier(self, clock: ManualClock, **options: object) -> TokenVerifier:
        transport = httpx.MockTransport(self.handle)
        return TokenVerifier(
            self.base,
            AUDIENCE,
            http_client=httpx.Client(transport=transport),
            async_http_client=httpx.AsyncClient(transport=transport),
            clock=clock.time,
            monotonic=clock.monotonic,
            **options,  # type: ignore[arg-type]
        )


@pytest.mark.parametrize("issuer", NOT_LOOPBACK)
def test_an_http_issuer_off_loopback_is_refused_unless_the_caller_opts_in(issuer: str) -> None:
    with pytest.raises(ValueError, match="allow_insecure_http"):
        TokenVerifier(issuer, AUDIENCE)
    assert TokenVerifier(issuer, AUDIENCE, allow_insecure_http=True).issuer == issuer


@pytest.mark.parametrize("jwks_uri", [f"{base}/jwks.json" for base in NOT_LOOPBACK])
def test_an_http_jwks_uri_off_loopback_is_refused_unless_the_caller_opts_in(
    jwks_uri: str,
) -> None:
    with pytest.raises(ValueError, match="allow_insecure_http"):
        TokenVerifier("http://127.0.0.1:8000", AUDIENCE, jwks_uri=jwks_uri)
    TokenVerifier("http://127.0.0.1:8000", AUDIENCE, jwks_uri=jwks_uri, allow_insecure_http=True)


@pytest.mark.parametrize("base", LOOPBACK)
async def test_plain_http_on_loopback_needs_no_opt_in(
    base: str, issuer_key: RSAKey, manual_clock: ManualClock
) -> None:
    TokenVerifier(base, AUDIENCE, jwks_uri=f"{base}/jwks.json")
    issuer = Issuer(base, issuer_key)
    assert (await issuer.verifier(manual_clock).verify(token(issuer_key, base))).sub


def test_the_opt_in_never_lets_an_https_issuer_fall_back_to_an_http_jwks_uri() -> None:
    with pytest.raises(ValueError, match="https"):
        TokenVerifier(
            "https://as.example",
            AUDIENCE,
            jwks_uri="http://as.example/jwks.json",
            allow_insecure_http=True,
        )


def test_an_issuer_that_is_not_a_url_is_refused_when_discovery_needs_it() -> None:
    with pytest.raises(ValueError, match="absolute"):
        TokenVerifier("as.example", AUDIENCE)
    with pytest.raises(ValueError, match="absolute"):
        TokenVerifier("ftp://as.example", AUDIENCE)


async def test_discovery_naming_an_http_jwks_uri_off_loopback_is_not_followed(
    issuer_key: RSAKey, manual_clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    base = "http://127.0.0.1:8000"
    issuer = Issuer(base, issuer_key, jwks_uri="http://keys.example/jwks.json")
    verifier = issuer.verifier(manual_clock)
    with caplog.at_level(logging.WARNING, "authserver.verify"), pytest.raises(KeySetUnavailable):
        await verifier.verify(token(issuer_key, base))
    assert "http://keys.example/jwks.json" not in issuer.requests
    assert "allow_insecure_http" in caplog.text

    opted_in = issuer.verifier(manual_clock, allow_insecure_http=True)
    assert (opted_in.verify_sync(token(issuer_key, base))).sub
    assert issuer.requests["http://keys.example/jwks.json"] == 1


async def test_with_the_opt_in_an_http_issuer_off_loopback_verifies_tokens(
    issuer_key: RSAKey, manual_clock: ManualClock
) -> None:
    base = "http://as.example"
    issuer = Issuer(base, issuer_key)
    verifier = issuer.verifier(manual_clock, allow_insecure_http=True)
    assert (await verifier.verify(token(issuer_key, base))).iss == base
    assert verifier.verify_sync(token(issuer_key, base)).iss == base


# --- the stale-if-error window ----------------------------------------------------------------


def long_lived(key: RSAKey) -> str:
    return sign_rs256(key, header(key), claims(exp=START + 864000))


@pytest.mark.parametrize("window", [0, 60, 3600])
async def test_the_last_good_keys_serve_for_exactly_the_stale_if_error_window(
    window: int, jwks_server: JWKSServer, manual_clock: ManualClock, issuer_key: RSAKey
) -> None:
    verifier = jwks_server.verifier(manual_clock, stale_if_error=window, refetch_interval=0)
    await verifier.verify(long_lived(issuer_key))
    jwks_server.down = True
    manual_clock.advance(300 + window - 1)  # max-age 300, then the window less a second
    if window:
        assert (await verifier.verify(long_lived(issuer_key))).sub
        assert verifier.verify_sync(long_lived(issuer_key)).sub
    manual_clock.advance(1)
    with pytest.raises(KeySetUnavailable):
        await verifier.verify(long_lived(issuer_key))
    with pytest.raises(KeySetUnavailable):
        verifier.verify_sync(long_lived(issuer_key))


@pytest.mark.parametrize("option", ["leeway", "stale_if_error", "refetch_interval", "timeout"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0])
def test_time_options_must_be_finite_and_not_negative(option: str, value: float) -> None:
    """A NaN leeway would make every `now >= exp + leeway` false: nothing would ever expire."""
    with pytest.raises(ValueError, match=option):
        TokenVerifier("https://as.example", AUDIENCE, **{option: value})  # type: ignore[arg-type]
