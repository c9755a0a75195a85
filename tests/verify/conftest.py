"""Fixtures for authserver.verify: keys made once per session, a counting JWKS server."""

from __future__ import annotations

import pytest
from joserfc.jwk import RSAKey

from tests.verify.helpers import JWKSServer, ManualClock, new_key, public_jwk


@pytest.fixture(scope="session")
def issuer_key() -> RSAKey:
    """The issuer's signing key (published in the JWKS)."""
    return new_key()


@pytest.fixture(scope="session")
def foreign_key() -> RSAKey:
    """An attacker's RSA key: never published."""
    return new_key()


@pytest.fixture
def jwks_server(issuer_key: RSAKey) -> JWKSServer:
    return JWKSServer(keys=[public_jwk(issuer_key)])


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock()
