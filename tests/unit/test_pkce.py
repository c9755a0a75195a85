"""PKCE S256 (RFC 7636): the Appendix B example, and everything that must not match."""

from __future__ import annotations

import pytest

from authserver.authorize.pkce import is_valid_pkce_value, s256_challenge, verifier_matches

VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 Appendix B
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_the_rfc_example_matches() -> None:
    assert s256_challenge(VERIFIER) == CHALLENGE
    assert verifier_matches(VERIFIER, CHALLENGE)


@pytest.mark.parametrize(
    "verifier",
    [
        VERIFIER[:-1] + "j",
        CHALLENGE,  # the challenge itself: `plain` is refused
        VERIFIER[:42],
        VERIFIER + "\n",
        VERIFIER.replace("-", "+"),
        "",
        "a" * 129,
    ],
)
def test_any_other_verifier_does_not(verifier: str) -> None:
    assert not verifier_matches(verifier, CHALLENGE)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("a" * 43, True),
        ("A-._~" * 25 + "abc", True),
        ("a" * 128, True),
        ("a" * 42, False),
        ("a" * 129, False),
        ("a" * 42 + "=", False),
        ("a" * 42 + "é", False),
        ("a" * 42 + "٣", False),
        ("a" * 43 + "\n", False),
    ],
)
def test_values_are_43_to_128_unreserved_ascii_characters(value: str, valid: bool) -> None:
    assert is_valid_pkce_value(value) is valid
