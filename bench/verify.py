"""Benchmark authserver.verify against the raw RS256 verify of `cryptography`, on one core.

    .venv/bin/python bench/verify.py [--cpu 1] [--seconds 2] [--rounds 5] [--key-size 2048]

With the JWKS already cached, for RFC 9068 access tokens shaped like authserver's, it measures:
  raw       cryptography's RSAPublicKey.verify(PKCS1v15, SHA-256) of one token's signing input
            and signature: the floor no verifier can beat;
  floor     for each of the distinct tokens below: split, base64url-decode the signature,
            the raw verify, base64url-decode and parse the payload (orjson, as the verifier
            does), and nothing else (no header or claim check): what any verifier of a token it
            has not seen must at least do, in Python;
  sync      TokenVerifier.verify_sync(token), the same token again and again (a client reuses
            its token for its whole life: the verifier's payload memo applies, the signature is
            still verified and the times checked every time);
  sync-new  verify_sync over 2,048 distinct tokens in a cycle: every call is a token the
            verifier has not got in its memo (all the decoding and claim checks, and the memo's
            bookkeeping for a token it will not see again before the memo is cleared);
  async, async-new  the same through `await TokenVerifier.verify(...)` in one coroutine;
  joserfc   joserfc.jwt.decode(token, KeySet, algorithms=["RS256"]) and joserfc's claims
            registry: the straightforward joserfc route, for comparison.
Rounds interleave the scenarios so that a noisy neighbour hits them all alike; the table shows
each scenario's median round, and the ratio to the raw verify. Needs no server and no network:
the JWKS comes from an in-process httpx.MockTransport. The issue's target: >= 70 % of raw.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cryptography
import httpx
import joserfc
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from authserver.verify import TokenVerifier
from authserver.verify.jws import b64url_decode, json_object

DISTINCT_TOKENS = 2048
ISSUER = "https://as.example"
AUDIENCE = "https://api.example"


def make_token(key: RSAKey, jti: str = "Q0_iLwSDqGAMbelaZUSzCg") -> str:
    """A token shaped like the ones authserver issues (same claims, same header)."""
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "024da017-7e9c-432b-a8dc-5e1727c1af8c",
        "aud": AUDIENCE,
        "client_id": "WtP3XUucKxbRVmCJ9EyBaw",
        "scope": "profile:read orders",
        "iat": now,
        "exp": now + 86400,
        "jti": jti,
        "sid": "b224eec0-9945-4c24-9fc6-e9c5e100cc70",
    }
    header = {"alg": "RS256", "typ": "at+jwt", "kid": key.kid}
    return jwt.encode(header, claims, key, algorithms=["RS256"])


@dataclass(frozen=True)
class Rate:
    """One measurement: calls per CPU-second of this thread, and per wall-clock second."""

    per_cpu_second: float
    per_wall_second: float


def measure(operation: Callable[[], object], seconds: float) -> Rate:
    """Calls of `operation` over at least `seconds` of wall time, in batches of 200 so that the
    clocks are read rarely. CPU time (time.thread_time) leaves out the moments another process
    had the core, which a wall clock on a shared machine would charge to us."""
    batch, done = 200, 0
    wall, cpu = time.perf_counter(), time.thread_time()
    while True:
        for _ in range(batch):
            operation()
        done += batch
        elapsed = time.perf_counter() - wall
        if elapsed >= seconds:
            return Rate(done / (time.thread_time() - cpu), done / elapsed)


def measure_async(verifier: TokenVerifier, tokens: Iterator[str], seconds: float) -> Rate:
    """As `measure`, for `await verifier.verify(next(tokens))` in a loop inside one coroutine."""

    async def run() -> Rate:
        batch, done = 200, 0
        wall, cpu = time.perf_counter(), time.thread_time()
        while True:
            for _ in range(batch):
                await verifier.verify(next(tokens))
            done += batch
            elapsed = time.perf_counter() - wall
            if elapsed >= seconds:
                return Rate(done / (time.thread_time() - cpu), done / elapsed)

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", type=int, default=1, help="core to pin to (-1: do not pin)")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one measurement")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median)")
    parser.add_argument("--key-size", type=int, default=2048, choices=(2048, 3072, 4096))
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})

    key = RSAKey.generate_key(args.key_size, parameters={"use": "sig", "alg": "RS256"})
    key.ensure_kid()
    jwks = {"keys": [key.as_dict(private=False)]}
    token = make_token(key)
    # More distinct tokens than the verifier memoises (1,024, cleared when full), visited in a
    # cycle: every one of them is new to the verifier each time it comes round.
    distinct = [make_token(key, f"jti-{n}") for n in range(DISTINCT_TOKENS)]

    def serve_jwks(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=jwks, headers={"Cache-Control": "max-age=86400"})

    transport = httpx.MockTransport(serve_jwks)
    jwks_uri = f"{ISSUER}/.well-known/jwks.json"
    verifier = TokenVerifier(
        ISSUER, AUDIENCE, jwks_uri=jwks_uri, http_client=httpx.Client(transport=transport)
    )
    async_verifier = TokenVerifier(
        ISSUER,
        AUDIENCE,
        jwks_uri=jwks_uri,
        async_http_client=httpx.AsyncClient(transport=transport),
    )
    claims = verifier.verify_sync(token)  # fetches and caches the JWKS
    assert claims.scopes == {"profile:read", "orders"}
    asyncio.run(async_verifier.verify(token))

    header, payload, signature = token.encode().split(b".")
    signing_input, raw_signature = header + b"." + payload, b64url_decode(signature)
    public = key.public_key
    assert isinstance(public, rsa.RSAPublicKey)
    key_set = KeySet([RSAKey.import_key(key.as_dict(private=False))])
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER}, aud={"essential": True, "value": AUDIENCE}
    )

    def raw() -> None:
        public.verify(raw_signature, signing_input, padding.PKCS1v15(), hashes.SHA256())

    def joserfc_route() -> None:
        decoded = jwt.decode(token, key_set, algorithms=["RS256"])
        registry.validate(decoded.claims)

    cycle = itertools.cycle(distinct)
    floor_cycle = itertools.cycle([token.encode() for token in distinct])
    sha256, pkcs1v15 = hashes.SHA256(), padding.PKCS1v15()

    def floor() -> None:
        head, body, signature = next(floor_cycle).split(b".")
        public.verify(b64url_decode(signature), head + b"." + body, pkcs1v15, sha256)
        json_object(body)

    scenarios: dict[str, Callable[[], Rate]] = {
        "raw": lambda: measure(raw, args.seconds),
        "floor": lambda: measure(floor, args.seconds),
        "sync": lambda: measure(lambda: verifier.verify_sync(token), args.seconds),
        "sync-new": lambda: measure(lambda: verifier.verify_sync(next(cycle)), args.seconds),
        "async": lambda: measure_async(async_verifier, itertools.repeat(token), args.seconds),
        "async-new": lambda: measure_async(async_verifier, cycle, args.seconds),
        "joserfc": lambda: measure(joserfc_route, args.seconds),
    }
    results: dict[str, list[Rate]] = {name: [] for name in scenarios}
    for _ in range(args.rounds):
        for name, run in scenarios.items():
            results[name].append(run())

    cpu = "unpinned" if args.cpu < 0 else f"CPU {args.cpu}"
    print(
        f"RSA-{args.key_size}, token {len(token)} bytes, {cpu}, {args.rounds} rounds of "
        f"{args.seconds:g} s; Python {platform.python_version()}, cryptography "
        f"{cryptography.__version__}, joserfc {joserfc.__version__}; load average before "
        f"{load_before:.2f}, after {os.getloadavg()[0]:.2f}"
    )
    raw_cpu = statistics.median(rate.per_cpu_second for rate in results["raw"])
    raw_wall = statistics.median(rate.per_wall_second for rate in results["raw"])
    print(
        f"{'scenario':<9}{'per CPU-s':>11}{'(min':>9}{'max)':>9}{'us CPU':>8}{'÷ raw':>7}"
        f"{'per wall-s':>12}{'÷ raw':>7}"
    )
    for name, rates in results.items():
        per_cpu = [rate.per_cpu_second for rate in rates]
        median_cpu = statistics.median(per_cpu)
        median_wall = statistics.median(rate.per_wall_second for rate in rates)
        print(
            f"{name:<9}{median_cpu:>11,.0f}{min(per_cpu):>9,.0f}{max(per_cpu):>9,.0f}"
            f"{1e6 / median_cpu:>8.1f}{median_cpu / raw_cpu:>7.0%}"
            f"{median_wall:>12,.0f}{median_wall / raw_wall:>7.0%}"
        )
    print("(medians of the rounds; the ratio column the issue's target applies to: ÷ raw, CPU)")


if __name__ == "__main__":
    main()
