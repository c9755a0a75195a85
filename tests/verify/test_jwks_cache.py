"""The JWKS cache: discovery, Cache-Control, the rate-limited refetch on an unknown kid,
stale-if-error, and which JWKS entries are usable. Requests are counted by a test server."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey

from authserver.verify import KeySetUnavailable, TokenVerifier, UnknownKey
from authserver.verify.fetch import metadata_urls
from authserver.verify.jwks import freshness, parse_jwks
from tests.verify.helpers import (
    AUDIENCE,
    ISSUER,
    JWKS_URI,
    METADATA_URI,
    START,
    JWKSServer,
    ManualClock,
    b64,
    claims,
    header,
    new_key,
    public_jwk,
    sign_rs256,
)


def token(key: RSAKey, kid: str | None = None) -> str:
    """Valid for ten days of the manual clock: these tests move it a lot."""
    return sign_rs256(key, header(key, kid=kid or key.kid), claims(exp=START + 864000))


# --- discovery --------------------------------------------------------------------------------


async def test_discovery_runs_once_and_the_jwks_is_cached_for_its_max_age(
    jwks_server: JWKSServer, manual_clock: ManualClock, issuer_key: RSAKey
) -> None:
    verifier = jwks_server.verifier(manual_clock)
    for _ in range(50):
        await verifier.verify(token(issuer_key))
        verifier.verify_sync(token(issuer_key))
        manual_clock.advance(5.9)  # 295 s in all: still within max-age=300
    assert jwks_server.requests == {METADATA_URI: 1, JWKS_URI: 1}

    manual_clock.advance(6)  # past max-age: the next verification fetches again, once
    await verifier.verify(token(issuer_key))
    verifier.verify_sync(token(issuer_key))
    assert jwks_server.requests == {METADATA_URI: 1, JWKS_URI: 2}


@pytest.mark.parametrize(
    ("cache_control", "refetched_after"),
    [("max-age=60", 61.0), ("public, max-age=3600", 3601.0), (None, 301.0)],
)
async def test_cache_control_max_age_decides_when_to_refetch(
    cache_control: str | None,
    refetched_after: float,
    jwks_server: JWKSServer,
    manual_clock: ManualClock,
    issuer_key: RSAKey,
) -> None:
    jwks_server.cache_control = cache_control
    verifier = jwks_server.verifier(manual_clock)
    await verifier.verify(token(issuer_key))
    manual_clock.advance(refetched_after - 2)
    await verifier.verify(token(issuer_key))
    assert jwks_server.jwks_fetches == 1
    manual_clock.advance(2)
    await verifier.verify(token(issuer_key))
    assert jwks_server.jwks_fetches == 2


def test_freshness_reads_max_age_minus_age_and_no_cache() -> None:
    assert freshness({"cache-control": "public, max-age=300"}) == 300
    assert freshness({"cache-control": "max-age=300", "age": "100"}) == 200
    assert freshness({"cache-control": "no-cache"}) == 0
    assert freshness({"cache-control": "max-age=abc"}) == 300  # unreadable: the default
    assert freshness({}) == 300
    assert freshness({"cache-control": "max-age=99999999"}) == 86400  # capped at a day


def test_metadata_urls_follow_rfc8414_then_openid_connect() -> None:
    assert metadata_urls("https://as.example") == [
        "https://as.example/.well-known/oauth-authorization-server",
        "https://as.example/.well-known/openid-configuration",
    ]
    assert metadata_urls("https://as.example/tenant1") == [
        "https://as.example/.well-known/oauth-authorization-server/tenant1",
        "https://as.example/tenant1/.well-known/openid-configuration",
    ]


async def test_discovery_naming_another_issuer_is_refused(
    jwks_server: JWKSServer, manual_clock: ManualClock, issuer_key: RSAKey
) -> None:
    """RFC 8414 §3.3: metadata whose `issuer` differs must not be used (a mix-up defence)."""
    jwks_server.issuer = "https://evil.example"
    with pytest.raises(KeySetUnavailable):
        await jwks_server.verifier(manual_clock).verify(token(issuer_key))
    assert jwks_server.jwks_fetches == 0


async def test_a_configured_jwks_uri_skips_discovery(
    jwks_server: JWKSServer, manual_clock: ManualClock, issuer_key: RSAKey
) -> None:
    verifier = jwks_server.verifier(manual_clock, jwks_uri=JWKS_URI)
    await verifier.verify(token(issuer_key))
    assert jwks_server.requests == {JWKS_URI: 1}


# --- unknown kids -----------------------------------------------------------------------------


async def test_an_unknown_kid_triggers_exactly_one_refetch_then_fails(
    jwks_server: JWKSServer, manual_clock: ManualClock, issuer_key: RSAKey, foreign_key: RSAKey
) -> None:
    verifier = jwks_server.verifier(manual_clock)
    await verifier.verify(token(issuer_key))
    manual_clock.advance(10)

    with pytest.raises(UnknownKey):
        await verifier.verify(token(foreign_key))
    assert jwks_server.jwks_fetches == 2  # the first load and one refetch


async def test_a_flood_of_unknown_kids_costs_one_fetch_per_10_seconds(
    jwks_server: JWKSServer, manual_clock: ManualClock, issuer_key: RSAKey
) -> None:
    verifier = jwks_server.verifier(manual_clock)
    await verifier.verify(token(issuer_key))
    manual_clock.advance(10)

    for second in range(30):  # 30 s of 100 bogus kids a second, sync and async
        for n in range(50):
            with pytest.raises(UnknownKey):
                await verifier.verify(token(issuer_key, kid=f"bogus-{second}-{n}"))
            with pytest.raises(UnknownKey):
                verifier.verify_sync(token(issuer_key, kid=f"bogus-sync-{second}-{n}"))
        manual_clock.advance(1)
    assert jwks_server.jwks_fetches == 1 + 3  # at 10 s, 20 s and 30 s; the good one still works
    await verifier.verify(token(issuer_key))


async def test_concurrent_unknown_kids_share_one_fetch(
    jwks_server: JWKSServer, manual_clock: ManualClock, issuer_key: RSAKey
) -> None:
    verifier = jwks_server.verifier(manual_clock)
    results = await asyncio.gather(
        *(verifier.verify(token(issuer_key, kid=f"bogus-{n}")) for n in range(100)),
        *(verifier.verify(token(issuer_key)) for _ in range(100)),
        return_exceptions=True,
    )
    assert all(isinstance(result, UnknownKey) for result in results[:100])
    assert not any(isinstance(result, BaseException) for result in results[100:])
    assert jwks_server.jwks_fetches == 1


def test_threads_share_one_fetch(
    jwks_server: JWKSServer, manual_clock: ManualClock, issuer_key: RSAKey
) -> None:
    """verify_sync from many threads at once (a WSGI server): one fetch, every caller served."""
    started = threading.Event()
    original = jwks_server.handle

    def slow(request: httpx.Request) -> httpx.Response:
        started.set()
        threading.Event().wait(0.2)  # hold the fetch while the other threads pile up
        return original(request)

    jwks_server.handle = slow  # type: ignore[method-assign]
    verifier = jwks_server.verifier(manual_clock)
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda _: verifier.verify_sync(token(issuer_key)), range(64)))
    assert started.is_set()
    assert len(results) == 64
    assert jwks_server.jwks_fetches == 1


async def test_a_new_kid_published_by_the_issuer_is_picked_up_without_restart(
    jwks_server: JWKSServer, manual_clock: ManualClock, issuer_key: RSAKey
) -> None:
    """Rotation as a resource server sees it: the JWKS gains a key, tokens start using it."""
    verifier = jwks_server.verifier(manual_clock)
    await verifier.verify(token(issuer_key))
    rotated = new_key()
    jwks_server.keys.append(public_jwk(rotated))
    manual_clock.advance(10)

    assert (await verifier.verify(token(rotated))).sub
    assert jwks_server.jwks_fetches == 2
    jwks_server.keys.pop(0)  # the old key retired and unpublished: gone at the next refresh
    manual_clock.advance(301)
    with pytest.raises(UnknownKey):
        await verifier.verify(token(issuer_key))


# --- an unreachable issuer --------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["down", "503"])
async def test_the_last_good_jwks_serves_while_the_issuer_is_briefly_unreachable(
    failure: str, jwks_server: JWKSServer, manual_clock: ManualClock, issuer_key: RSAKey
) -> None:
    verifier = jwks_server.verifier(manual_clock, stale_if_error=600)
    await verifier.verify(token(issuer_key))
    if failure == "down":
        jwks_server.down = True
    else:
        jwks_server.status = 503

    manual_clock.advance(301)  # stale: a refetch is tried, fails, the old keys still serve
    await verifier.verify(token(issuer_key))
    verifier.verify_sync(token(issuer_key))
    assert jwks_server.jwks_fetches == 2
    for _ in range(59):  # 590 s more, a request every 5 s: one attempt per 10 s
        manual_clock.advance(5)
        await verifier.verify(token(issuer_key))
        manual_clock.advance(5)
        verifier.verify_sync(token(issuer_key))
    assert jwks_server.jwks_fetches == 2 + 59

    manual_clock.advance(11)  # 301 + 600 s after the last good fetch: the bound is reached
    with pytest.raises(KeySetUnavailable):
        await verifier.verify(token(issuer_key))
    with pytest.raises(KeySetUnavailable):
        verifier.verify_sync(token(issuer_key))

    jwks_server.down, jwks_server.status = False, 200  # back: verification resumes
    manual_clock.advance(10)
    await verifier.verify(token(issuer_key))


async def test_an_issuer_down_from_the_start_gives_key_set_unavailable_and_is_not_hammered(
    jwks_server: JWKSServer, manual_clock: ManualClock, issuer_key: RSAKey
) -> None:
    jwks_server.down = True
    verifier = jwks_server.verifier(manual_clock, jwks_uri=JWKS_URI)
    for _ in range(100):
        with pytest.raises(KeySetUnavailable):
            await verifier.verify(token(issuer_key))
    assert jwks_server.jwks_fetches == 1
    assert not await verifier.prefetch()

    jwks_server.down = False
    manual_clock.advance(10)
    assert await verifier.prefetch()
    await verifier.verify(token(issuer_key))


# --- what a JWKS may contain ------------------------------------------------------------------


def _jwks(*keys: dict[str, Any]) -> bytes:
    return json.dumps({"keys": list(keys)}).encode()


def test_only_rsa_signature_keys_for_rs256_are_taken_from_the_jwks() -> None:
    good, rsa_enc, rs512, small, dup = (new_key() for _ in range(5))
    small_numbers = rsa.generate_private_key(65537, 1024).public_key().public_numbers()  # noqa: S505
    small_key = {
        "kty": "RSA",
        "kid": "small",
        "n": b64(small_numbers.n.to_bytes(128, "big")),
        "e": "AQAB",
    }
    document = _jwks(
        public_jwk(good),
        public_jwk(rsa_enc, use="enc"),
        public_jwk(rs512, alg="RS512"),
        small_key,
        {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        public_jwk(dup),
        public_jwk(dup),  # the same kid twice: ambiguous, dropped
        {**public_jwk(small), "key_ops": ["encrypt"]},
        {"kty": "RSA", "kid": "broken", "n": "AA", "e": "AQAB"},
    )
    assert set(parse_jwks(document)) == {good.kid}


def test_private_members_in_a_jwks_are_never_imported() -> None:
    key = new_key()
    leaked = key.as_dict(private=True)  # a misconfigured issuer publishing d, p, q…
    imported = parse_jwks(_jwks(leaked))[str(key.kid)]
    assert not imported.is_private
    assert imported.kid == key.kid


async def test_a_verifier_with_its_own_clients_works_sync_and_async(issuer_key: RSAKey) -> None:
    """No client given: each fetch opens its own (checked against an unroutable issuer)."""
    verifier = TokenVerifier(
        "http://127.0.0.1:9", AUDIENCE, timeout=0.5, refetch_interval=0, stale_if_error=0
    )
    with pytest.raises(KeySetUnavailable):
        await verifier.verify(token(issuer_key))
    with pytest.raises(KeySetUnavailable):
        verifier.verify_sync(token(issuer_key))


async def test_verify_sync_called_on_the_event_loop_never_waits_for_an_async_fetch(
    issuer_key: RSAKey, manual_clock: ManualClock
) -> None:
    """Waiting there would block the loop, and with it the very fetch it waits for."""
    release = asyncio.Event()

    async def slow_jwks(_request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200, json={"keys": [public_jwk(issuer_key)]})

    async with httpx.AsyncClient(transport=httpx.MockTransport(slow_jwks)) as async_client:
        verifier = TokenVerifier(
            ISSUER,
            AUDIENCE,
            jwks_uri=JWKS_URI,
            async_http_client=async_client,
            clock=manual_clock.time,
            monotonic=manual_clock.monotonic,
        )
        pending = asyncio.ensure_future(verifier.verify(token(issuer_key)))
        await asyncio.sleep(0)  # its JWKS fetch is now in flight
        started = time.monotonic()
        with pytest.raises(KeySetUnavailable):
            verifier.verify_sync(token(issuer_key))
        assert time.monotonic() - started < 5.0  # the fetch never ends until released
        release.set()
        assert (await pending).sub


@pytest.mark.parametrize(
    "body",
    [b"x" * (2 << 20), b"{", b'{"keys": 1}', b"[" * 5000, b'{"keys": [' + b"{}," * 200 + b"{}]}"],
    ids=["2 MiB", "not JSON", "keys not an array", "nested past the recursion limit", "201 keys"],
)
async def test_a_broken_or_oversized_jwks_is_refused_and_the_last_good_keys_kept(
    body: bytes, jwks_server: JWKSServer, manual_clock: ManualClock, issuer_key: RSAKey
) -> None:
    fresh = jwks_server.verifier(manual_clock, jwks_uri=JWKS_URI)
    jwks_server.jwks_body = body
    with pytest.raises(KeySetUnavailable):
        await fresh.verify(token(issuer_key))
    with pytest.raises(KeySetUnavailable):
        jwks_server.verifier(manual_clock, jwks_uri=JWKS_URI).verify_sync(token(issuer_key))

    jwks_server.jwks_body = None
    loaded = jwks_server.verifier(manual_clock, jwks_uri=JWKS_URI)
    await loaded.verify(token(issuer_key))
    jwks_server.jwks_body = body
    manual_clock.advance(301)
    assert (await loaded.verify(token(issuer_key))).sub  # stale keys, still good
    assert jwks_server.jwks_fetches == 4
