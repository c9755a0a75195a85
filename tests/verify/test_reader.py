"""read_access_token, the one reader of access tokens (issue 14): the checks TokenVerifier makes,
with keys the caller already holds (the server's introspection reads its own JWKS), no HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from joserfc.jwk import RSAKey

from authserver.verify import (
    ACCESS_TOKEN_TYPE,
    ALG,
    BadSignature,
    ExpiredToken,
    InvalidClaims,
    InvalidToken,
    MalformedToken,
    NotYetValid,
    TokenTooLarge,
    UnknownKey,
    UnsupportedAlgorithm,
    UnsupportedHeader,
    WrongAudience,
    WrongIssuer,
    WrongTokenType,
    parse_jwks,
    read_access_token,
)
from tests.verify.helpers import (
    AUDIENCE,
    ISSUER,
    START,
    JWKSServer,
    ManualClock,
    b64,
    b64json,
    claims,
    header,
    public_jwk,
    sign_hs256,
    sign_rs256,
    unsigned,
)

Forge = Callable[[RSAKey, RSAKey], str]  # (issuer's key, attacker's key) -> token


def published(*keys: RSAKey) -> dict[str, RSAKey]:
    """The keys as the server publishes them: its JWKS document, bytes and all."""
    return parse_jwks(json.dumps({"keys": [public_jwk(key) for key in keys]}).encode())


def good(key: RSAKey, **overrides: Any) -> str:
    return sign_rs256(key, header(key), claims(**overrides))


def test_the_shared_constants_are_what_the_server_writes() -> None:
    assert ALG == "RS256"
    assert ACCESS_TOKEN_TYPE == "at+jwt"


def test_a_good_token_reads_into_the_same_claims_the_verifier_returns(
    jwks_server: JWKSServer, manual_clock: ManualClock, issuer_key: RSAKey
) -> None:
    token = sign_rs256(
        issuer_key, {"alg": ALG, "typ": ACCESS_TOKEN_TYPE, "kid": issuer_key.kid}, claims()
    )
    read = read_access_token(token, published(issuer_key), issuer=ISSUER, now=START)
    assert read == jwks_server.verifier(manual_clock).verify_sync(token)
    assert read.sub == "024da017-7e9c-432b-a8dc-5e1727c1af8c"
    assert read.aud == (AUDIENCE,)
    assert read.sid == "b224eec0-9945-4c24-9fc6-e9c5e100cc70"
    assert read.scopes == {"profile:read", "orders"}
    assert read.claims["jti"] == "Q0_iLwSDqGAMbelaZUSzCg"


def test_without_an_audience_any_audience_passes_and_with_one_it_must_match(
    issuer_key: RSAKey,
) -> None:
    keys = published(issuer_key)
    several = good(issuer_key, aud=["https://a.example", "https://b.example"])
    assert read_access_token(several, keys, issuer=ISSUER, now=START).aud == (
        "https://a.example",
        "https://b.example",
    )
    assert read_access_token(
        several, keys, issuer=ISSUER, audience="https://b.example", now=START
    ).aud == ("https://a.example", "https://b.example")
    with pytest.raises(WrongAudience):
        read_access_token(several, keys, issuer=ISSUER, audience=[AUDIENCE], now=START)
    with pytest.raises(InvalidClaims):  # still well-formed
        read_access_token(good(issuer_key, aud=[]), keys, issuer=ISSUER, now=START)


def test_without_leeway_a_token_expires_at_its_exp_and_is_not_read_before_its_iat(
    issuer_key: RSAKey,
) -> None:
    keys = published(issuer_key)
    token = good(issuer_key)  # iat START, exp START + 900
    assert read_access_token(token, keys, issuer=ISSUER, now=START + 899).exp == START + 900
    with pytest.raises(ExpiredToken):
        read_access_token(token, keys, issuer=ISSUER, now=START + 900)
    with pytest.raises(NotYetValid):
        read_access_token(token, keys, issuer=ISSUER, now=START - 1)
    assert read_access_token(token, keys, issuer=ISSUER, now=START + 929, leeway=30).jti


def test_now_defaults_to_the_current_time(issuer_key: RSAKey) -> None:
    now = time.time()
    keys = published(issuer_key)
    fresh = good(issuer_key, iat=int(now), exp=int(now) + 60)
    assert read_access_token(fresh, keys, issuer=ISSUER).exp == int(now) + 60
    with pytest.raises(ExpiredToken):  # 2001
        read_access_token(
            good(issuer_key, iat=1_000_000_000, exp=1_000_000_900), keys, issuer=ISSUER
        )


FORGERIES: dict[str, tuple[Forge, type[InvalidToken]]] = {
    "alg none": (lambda i, a: unsigned(header(i, alg="none"), claims()), UnsupportedAlgorithm),
    "HS256 keyed with the public key": (
        lambda i, a: sign_hs256(
            i.public_key.public_numbers().n.to_bytes(256, "big"), header(i, alg="HS256"), claims()
        ),
        UnsupportedAlgorithm,
    ),
    "an ID token's typ": (
        lambda i, a: sign_rs256(i, header(i, typ="JWT"), claims()),
        WrongTokenType,
    ),
    "crit": (lambda i, a: sign_rs256(i, header(i, crit=["exp"]), claims()), UnsupportedHeader),
    "no kid": (lambda i, a: sign_rs256(i, header(None), claims()), UnknownKey),
    "an unpublished key's kid": (lambda i, a: sign_rs256(a, header(a), claims()), UnknownKey),
    "the issuer's kid, another key's signature": (
        lambda i, a: sign_rs256(a, header(i), claims()),
        BadSignature,
    ),
    "another issuer": (lambda i, a: good(i, iss="https://evil.example"), WrongIssuer),
    "no sub": (lambda i, a: good(i, sub=None), InvalidClaims),
    "two segments": (lambda i, a: f"{b64json(header(i))}.{b64json(claims())}", MalformedToken),
    "a payload that is not JSON": (lambda i, a: sign_rs256(i, header(i), b"[1]"), MalformedToken),
    "too large": (lambda i, a: good(i, padding="x" * 9000), TokenTooLarge),
    "a bad signature encoding": (lambda i, a: good(i)[:-2] + "+/", MalformedToken),
    "a truncated signature": (
        lambda i, a: good(i).rsplit(".", 1)[0] + "." + b64(b"x"),
        BadSignature,
    ),
}


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
def test_every_token_the_verifier_refuses_the_reader_refuses_for_the_same_reason(
    forge: tuple[Forge, type[InvalidToken]],
    issuer_key: RSAKey,
    foreign_key: RSAKey,
    jwks_server: JWKSServer,
    manual_clock: ManualClock,
) -> None:
    make, reason = forge
    token = make(issuer_key, foreign_key)
    with pytest.raises(reason):
        read_access_token(token, published(issuer_key), issuer=ISSUER, now=START)
    with pytest.raises(reason):
        jwks_server.verifier(manual_clock).verify_sync(token)


def test_a_document_that_is_not_a_jwks_is_a_value_error() -> None:
    for document in (b"not json", b"[]", b'{"keys": {}}'):
        with pytest.raises(ValueError, match="JWKS"):
            parse_jwks(document)


@pytest.mark.parametrize("leeway", [float("nan"), float("inf"), -1.0])
def test_a_leeway_that_would_let_tokens_live_forever_is_refused(
    leeway: float, issuer_key: RSAKey
) -> None:
    with pytest.raises(ValueError, match="leeway"):
        read_access_token(good(issuer_key), published(issuer_key), issuer=ISSUER, leeway=leeway)
