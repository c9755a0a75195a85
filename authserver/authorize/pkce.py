"""PKCE (RFC 7636) with S256 only: SPEC refuses `plain`, as RFC 9700 §2.1.1 advises."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

# RFC 7636 §4.1-4.2: 43-128 characters of ALPHA / DIGIT / "-" / "." / "_" / "~" (SPEC uses the same
# rule for the challenge). Explicit ASCII ranges: `\w` would let other scripts' letters in.
_PKCE_VALUE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


def is_valid_pkce_value(value: str) -> bool:
    """True for a well-formed `code_challenge` or `code_verifier`."""
    return _PKCE_VALUE.fullmatch(value) is not None


def s256_challenge(verifier: str) -> str:
    """BASE64URL-ENCODE(SHA256(ASCII(code_verifier))), RFC 7636 §4.2."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verifier_matches(verifier: str, challenge: str) -> bool:
    """RFC 7636 §4.6: the verifier hashes to the stored challenge (compared in constant time).

    A malformed verifier never matches, so the caller answers invalid_grant for both.
    """
    if not is_valid_pkce_value(verifier):
        return False
    return hmac.compare_digest(s256_challenge(verifier).encode(), challenge.encode())
