"""TokenVerifier against an attacker: every forged, damaged or misdirected token is refused with
its own exception, through the async and the sync API alike. The JWKS comes from a counting
in-process server (no network); the clock is the test's."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from joserfc.jwk import RSAKey

import authserver.verify as verify_module
from authserver.verify import (
    AccessTokenClaims,
    BadSignature,
    ExpiredToken,
    InvalidClaims,
    InvalidToken,
    MalformedToken,
    NotYetValid,
    TokenTooLarge,
    TokenVerifier,
    UnknownKey,
    UnsupportedAlgorithm,
    UnsupportedHeader,
    WrongAudience,
    WrongIssuer,
    WrongTokenType,
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

Verify = Callable[[TokenVerifier, str], Awaitable[AccessTokenClaims]]
Forge = Callable[[RSAKey, RSAKey], str]  # (issuer's key, attacker's key) -> token


@pytest.fixture(params=["async", "sync"])
def verify(request: pytest.FixtureRequest) -> Verify:
    """`await verify(verifier, token)` through `verify` or `verify_sync`."""
    if request.param == "async":

        async def run_async(verifier: TokenVerifier, token: str) -> AccessTokenClaims:
            return await verifier.verify(token)

        return run_async

    async def run_sync(verifier: TokenVerifier, token: str) -> AccessTokenClaims:
        return verifier.verify_sync(token)

    return run_sync


def good(key: RSAKey, **overrides: Any) -> str:
    return sign_rs256(key, header(key), claims(**overrides))


# --- tokens that pass -------------------------------------------------------------------------


async def test_an_authserver_token_verifies_to_typed_claims(
    verify: Verify, jwks_server: JWKSServer, manual_clock: ManualClock, issuer_key: RSAKey
) -> None:
    result = await verify(jwks_server.verifier(manual_clock), good(issuer_key))

    assert result.iss == ISSUER
    assert result.sub == "024da017-7e9c-432b-a8dc-5e1727c1af8c"
    assert result.aud == (AUDIENCE,)
    assert result.client_id == "WtP3XUucKxbRVmCJ9EyBaw"
    assert result.scope == "profile:read orders"
    assert result.scopes == frozenset({"profile:read", "orders"})
    assert result.has_scopes("profile:read")
    assert not result.has_scopes("profile:read", "admin")
    assert (result.iat, result.exp) == (int(START), int(START) + 900)
    assert result.jti == "Q0_iLwSDqGAMbelaZUSzCg"
    assert result.sid == "b224eec0-9945-4c24-9fc6-e9c5e100cc70"
    assert result.nbf is None
    assert result.claims["client_id"] == result.client_id
    with pytest.raises(TypeError):
        result.claims["sub"] = "someone else"  # type: ignore[index]
    assert jwks_server.requests == {  # discovery once (RFC 8414 first), the JWKS once
        f"{ISSUER}/.well-known/oauth-authorization-server": 1,
        f"{ISSUER}/.well-known/jwks.json": 1,
    }


@pytest.mark.parametrize(
    "aud",
    [
        AUDIENCE,
        [AUDIENCE],
        ["https://other.example", AUDIENCE, "https://third.example"],
    ],
)
async def test_aud_string_or_array_containing_ours_is_accepted(
    aud: object,
    verify: Verify,
    jwks_server: JWKSServer,
    manual_clock: ManualClock,
    issuer_key: RSAKey,
) -> None:
    result = await verify(jwks_server.verifier(manual_clock), good(issuer_key, aud=aud))
    assert AUDIENCE in result.aud


async def test_any_one_of_several_configured_audiences_is_enough(
    verify: Verify, jwks_server: JWKSServer, manual_clock: ManualClock, issuer_key: RSAKey
) -> None:
    verifier = jwks_server.verifier(manual_clock, audience=["https://a.example", AUDIENCE])
    assert (await verify(verifier, good(issuer_key))).aud == (AUDIENCE,)


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt"])
async def test_rfc9068_typ_spellings_are_accepted(
    typ: str,
    verify: Verify,
    jwks_server: JWKSServer,
    manual_clock: ManualClock,
    issuer_key: RSAKey,
) -> None:
    token = sign_rs256(issuer_key, header(issuer_key, typ=typ), claims())
    assert (await verify(jwks_server.verifier(manual_clock), token)).sub


async def test_clock_skew_within_the_default_30_s_leeway_is_tolerated(
    verify: Verify, jwks_server: JWKSServer, manual_clock: ManualClock, issuer_key: RSAKey
) -> None:
    verifier = jwks_server.verifier(manual_clock)
    assert verifier.leeway == 30.0
    await verify(verifier, good(issuer_key, exp=START - 29))
    await verify(verifier, good(issuer_key, iat=START + 29, nbf=START + 29))


async def test_leeway_is_configurable(
    verify: Verify, jwks_server: JWKSServer, manual_clock: ManualClock, issuer_key: RSAKey
) -> None:
    verifier = jwks_server.verifier(manual_clock, leeway=0)
    with pytest.raises(ExpiredToken):
        await verify(verifier, good(issuer_key, exp=START))
    with pytest.raises(NotYetValid):
        await verify(verifier, good(issuer_key, nbf=START + 1))


async def test_a_token_signed_by_the_issuer_with_a_jku_header_uses_the_jwks_key_only(
    verify: Verify, jwks_server: JWKSServer, manual_clock: ManualClock, issuer_key: RSAKey
) -> None:
    head = header(issuer_key, jku="https://evil.example/jwks", x5u="https://evil.example/cert")
    await verify(jwks_server.verifier(manual_clock), sign_rs256(issuer_key, head, claims()))
    assert jwks_server.other_requests == {}


# --- tokens that must fail --------------------------------------------------------------------


def _tampered(issuer: RSAKey, _attacker: RSAKey) -> str:
    head, _payload, signature = good(issuer).split(".")
    return f"{head}.{b64json(claims(scope='profile:read admin'))}.{signature}"


def _hs256_with_pem(issuer: RSAKey, _attacker: RSAKey) -> str:
    return sign_hs256(issuer.as_pem(private=False), header(issuer, alg="HS256"), claims())


def _hs256_with_jwk(issuer: RSAKey, _attacker: RSAKey) -> str:
    secret = json.dumps(public_jwk(issuer)).encode()
    return sign_hs256(secret, header(issuer, alg="HS256"), claims())


def _embedded_foreign_key(issuer: RSAKey, attacker: RSAKey) -> str:
    head = header(
        issuer,  # our kid...
        jwk=public_jwk(attacker),  # ...but "please use this key", and these URLs
        jku="https://evil.example/jwks.json",
        x5u="https://evil.example/cert.pem",
    )
    return sign_rs256(attacker, head, claims())


REJECTED: dict[str, tuple[Forge, type[InvalidToken]]] = {
    "expired beyond the leeway": (lambda i, a: good(i, exp=START - 30), ExpiredToken),
    "nbf beyond the leeway": (lambda i, a: good(i, nbf=START + 31), NotYetValid),
    "iat in the future": (lambda i, a: good(i, iat=START + 31), NotYetValid),
    "wrong issuer": (lambda i, a: good(i, iss="https://evil.example"), WrongIssuer),
    "issuer with a trailing slash": (lambda i, a: good(i, iss=ISSUER + "/"), WrongIssuer),
    "wrong audience": (lambda i, a: good(i, aud="https://other.example"), WrongAudience),
    "audience list without ours": (
        lambda i, a: good(i, aud=["https://a.example", "https://b.example"]),
        WrongAudience,
    ),
    "typ JWT (an ID token, say)": (
        lambda i, a: sign_rs256(i, header(i, typ="JWT"), claims()),
        WrongTokenType,
    ),
    "no typ": (lambda i, a: sign_rs256(i, header(i, typ=None), claims()), WrongTokenType),
    "alg none": (lambda i, a: unsigned(header(i, alg="none"), claims()), UnsupportedAlgorithm),
    "alg NONE": (lambda i, a: unsigned(header(i, alg="NONE"), claims()), UnsupportedAlgorithm),
    "HS256 keyed with the public key's PEM": (_hs256_with_pem, UnsupportedAlgorithm),
    "HS256 keyed with the public JWK": (_hs256_with_jwk, UnsupportedAlgorithm),
    "RS512 claimed": (
        lambda i, a: sign_rs256(i, header(i, alg="RS512"), claims()),
        UnsupportedAlgorithm,
    ),
    "PS256 claimed": (
        lambda i, a: sign_rs256(i, header(i, alg="PS256"), claims()),
        UnsupportedAlgorithm,
    ),
    "no alg": (lambda i, a: sign_rs256(i, header(i, alg=None), claims()), UnsupportedAlgorithm),
    "a foreign RSA key under our kid": (
        lambda i, a: sign_rs256(a, header(i), claims()),
        BadSignature,
    ),
    "a foreign key embedded as jwk/jku/x5u": (_embedded_foreign_key, BadSignature),
    "a tampered payload": (_tampered, BadSignature),
    "an empty signature": (lambda i, a: good(i).rsplit(".", 1)[0] + ".", BadSignature),
    "truncated to two segments": (lambda i, a: good(i).rsplit(".", 1)[0], MalformedToken),
    "truncated to its first half": (lambda i, a: good(i)[: len(good(i)) // 2], MalformedToken),
    "an encrypted (5-segment) token": (lambda i, a: good(i) + ".x.y", MalformedToken),
    "padded base64 signature": (lambda i, a: good(i) + "==", MalformedToken),
    "non-base64url signature": (lambda i, a: good(i)[:-4] + "+/+/", MalformedToken),
    "a header that is not JSON": (
        lambda i, a: b64(b"{not json") + "." + good(i).split(".", 1)[1],
        MalformedToken,
    ),
    "a header that is a JSON array": (
        lambda i, a: b64json(["RS256"]) + "." + good(i).split(".", 1)[1],
        MalformedToken,
    ),
    "a header nested past the recursion limit": (
        lambda i, a: b64(b"[" * 2000 + b"]" * 2000) + "." + good(i).split(".", 1)[1],
        MalformedToken,
    ),
    "a header that is not UTF-8": (
        lambda i, a: b64(b'{"alg":"RS256\xff"}') + "." + good(i).split(".", 1)[1],
        MalformedToken,
    ),
    "a signed payload nested past the recursion limit": (
        lambda i, a: sign_rs256(i, header(i), b"[" * 2000 + b"]" * 2000),
        MalformedToken,
    ),
    "a signed payload that is not JSON": (
        lambda i, a: sign_rs256(i, header(i), b"not json"),
        MalformedToken,
    ),
    "a signed payload with data after the JSON object": (
        lambda i, a: sign_rs256(i, header(i), json.dumps(claims()).encode() + b"{}"),
        MalformedToken,
    ),
    "a signed payload that is not UTF-8": (
        lambda i, a: sign_rs256(i, header(i), json.dumps(claims()).encode()[:-1] + b',"x":"\xff"}'),
        MalformedToken,
    ),
    "a signed payload with a NaN exp (not JSON, RFC 8259 §6)": (
        lambda i, a: sign_rs256(i, header(i), json.dumps(claims(exp=float("nan"))).encode()),
        MalformedToken,
    ),
    "non-ASCII": (lambda i, a: good(i) + "\u00e9", MalformedToken),
    "a huge token": (lambda i, a: good(i, padding="x" * 9000), TokenTooLarge),
    "crit": (
        lambda i, a: sign_rs256(i, header(i, crit=["exp"], exp=START + 900), claims()),
        UnsupportedHeader,
    ),
    "b64 false (RFC 7797)": (
        lambda i, a: sign_rs256(i, header(i, b64=False, crit=["b64"]), claims()),
        UnsupportedHeader,
    ),
    "no kid": (lambda i, a: sign_rs256(i, header(i, kid=None), claims()), UnknownKey),
    "a kid the JWKS does not hold": (lambda i, a: sign_rs256(a, header(a), claims()), UnknownKey),
    "no sub": (lambda i, a: good(i, sub=None), InvalidClaims),
    "no client_id": (lambda i, a: good(i, client_id=None), InvalidClaims),
    "no jti": (lambda i, a: good(i, jti=None), InvalidClaims),
    "no exp": (lambda i, a: good(i, exp=None), InvalidClaims),
    "no iat": (lambda i, a: good(i, iat=None), InvalidClaims),
    "no iss": (lambda i, a: good(i, iss=None), InvalidClaims),
    "no aud": (lambda i, a: good(i, aud=None), InvalidClaims),
    "an empty aud array": (lambda i, a: good(i, aud=[]), InvalidClaims),
    "exp as a string": (lambda i, a: good(i, exp=str(int(START) + 900)), InvalidClaims),
    "exp as true": (lambda i, a: good(i, exp=True), InvalidClaims),
    "scope as an array": (lambda i, a: good(i, scope=["profile:read"]), InvalidClaims),
}


@pytest.mark.parametrize(("forge", "expected"), REJECTED.values(), ids=REJECTED.keys())
async def test_bad_tokens_are_rejected_with_their_own_exception(
    forge: Forge,
    expected: type[InvalidToken],
    verify: Verify,
    jwks_server: JWKSServer,
    manual_clock: ManualClock,
    issuer_key: RSAKey,
    foreign_key: RSAKey,
) -> None:
    token = forge(issuer_key, foreign_key)
    with pytest.raises(InvalidToken) as caught:
        await verify(jwks_server.verifier(manual_clock), token)

    assert type(caught.value) is expected, caught.value
    message = str(caught.value)
    assert message.startswith(expected.reason)
    for segment in token.split("."):  # a log line may show the reason, never the token
        if len(segment) > 24:
            assert segment not in message
    assert jwks_server.other_requests == {}  # no jku, x5u or other URL was ever fetched


def test_each_reason_is_a_distinct_invalid_token_subclass() -> None:
    classes = [
        value
        for value in vars(verify_module).values()
        if isinstance(value, type) and issubclass(value, InvalidToken)
    ]
    assert len(classes) >= 14
    assert len({cls.reason for cls in classes}) == len(classes)
    for cls in classes:
        assert issubclass(cls, Exception)
        assert '"' not in cls.description  # RFC 6750 §3: no quote, no backslash
        assert "\\" not in cls.description


async def test_forged_tokens_fail_before_any_fetch_when_the_header_is_bad(
    jwks_server: JWKSServer, manual_clock: ManualClock, issuer_key: RSAKey
) -> None:
    """alg/typ/crit are checked before the JWKS is consulted: junk costs the issuer nothing."""
    verifier = jwks_server.verifier(manual_clock)
    for token in (
        unsigned(header(issuer_key, alg="none"), claims()),
        sign_rs256(issuer_key, header(issuer_key, typ="JWT"), claims()),
        "a.b",
    ):
        with pytest.raises(InvalidToken):
            await verifier.verify(token)
    assert jwks_server.requests == {}


def test_the_verifier_refuses_nonsense_configuration() -> None:
    with pytest.raises(ValueError, match="audience"):
        TokenVerifier(ISSUER, [])
    with pytest.raises(ValueError, match="leeway"):
        TokenVerifier(ISSUER, AUDIENCE, leeway=-1)
    with pytest.raises(ValueError, match="absolute"):
        TokenVerifier(ISSUER, AUDIENCE, jwks_uri="file:///etc/passwd")
    with pytest.raises(ValueError, match="https"):
        TokenVerifier(ISSUER, AUDIENCE, jwks_uri="http://as.example/jwks.json")


# --- the payload memo -------------------------------------------------------------------------


async def test_a_token_seen_before_is_still_checked_for_time_and_signature(
    verify: Verify,
    jwks_server: JWKSServer,
    manual_clock: ManualClock,
    issuer_key: RSAKey,
    foreign_key: RSAKey,
) -> None:
    """The claims of a verified payload are memoised from its second sighting; the signature
    and the clock are checked every time."""
    verifier = jwks_server.verifier(manual_clock)
    token = good(issuer_key)
    first = await verify(verifier, token)
    second = await verify(verifier, token)
    assert second == first
    assert second is not first
    assert await verify(verifier, token) is second  # the memo at work

    head, payload, _signature = token.split(".")
    forged = sign_rs256(foreign_key, header(issuer_key), claims())  # same payload, wrong key
    assert forged.split(".")[1] == payload
    with pytest.raises(BadSignature):
        await verify(verifier, forged)
    with pytest.raises(BadSignature):
        await verify(verifier, f"{head}.{payload}.{b64(b'x' * 256)}")

    manual_clock.advance(900 + 30)
    with pytest.raises(ExpiredToken):
        await verify(verifier, token)
    manual_clock.now = START - 31
    with pytest.raises(NotYetValid):
        await verify(verifier, token)


async def test_claims_are_built_positionally_into_the_right_fields_and_are_immutable(
    jwks_server: JWKSServer, manual_clock: ManualClock, issuer_key: RSAKey
) -> None:
    result = await jwks_server.verifier(manual_clock).verify(good(issuer_key))
    rebuilt = AccessTokenClaims(**{name: getattr(result, name) for name in result._fields})
    assert rebuilt == result
    assert result.iss == ISSUER
    assert result.sub == "024da017-7e9c-432b-a8dc-5e1727c1af8c"
    assert result.aud == (AUDIENCE,)
    assert result.client_id == result.claims["client_id"]
    with pytest.raises(AttributeError):
        result.sub = "someone else"  # type: ignore[misc]
