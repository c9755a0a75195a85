"""The access tokens' prepared signer (authserver/keys/signer.py) writes exactly what
`joserfc.jwt.encode` writes for the same header, claims and key (RS256 is deterministic), and
refuses at preparation what joserfc refuses on every call."""

from __future__ import annotations

import orjson
import pytest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey, RSAKey

from authserver.keys.signer import compact_signer

CLAIMS = {
    "iss": "https://auth.example.com",
    "sub": "2f1c1f6e-0d3b-4c1e-9a55-1b1f2c3d4e5f",
    "aud": ["https://api.example.com", "https://other.example.com"],
    "client_id": "app",
    "scope": "read write",
    "iat": 1764800000,
    "exp": 1764800900,
    "jti": "abcdefghijklmnopqrstuv",
    "sid": "naïve ünïcode",
}


@pytest.fixture(scope="module")
def key() -> RSAKey:
    key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"})
    key.ensure_kid()
    return key


def test_prepared_signer_writes_what_joserfc_writes(key: RSAKey) -> None:
    header = {"typ": "at+jwt", "alg": "RS256", "kid": str(key.kid)}
    token = compact_signer(key, header).sign(orjson.dumps(CLAIMS))
    assert token == jwt.encode(header, CLAIMS, key, algorithms=["RS256"])
    decoded = jwt.decode(token, key, algorithms=["RS256"])
    assert decoded.header == header
    assert decoded.claims == CLAIMS


def test_prepared_signer_refuses_a_key_of_the_wrong_type() -> None:
    with pytest.raises(JoseError):
        compact_signer(OctKey.generate_key(256), {"alg": "RS256"})  # type: ignore[arg-type]


def test_prepared_signer_refuses_another_algorithm(key: RSAKey) -> None:
    with pytest.raises(JoseError):
        compact_signer(key, {"alg": "none"})
