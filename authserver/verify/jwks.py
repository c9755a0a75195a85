"""The issuer's JWKS document (RFC 7517): which of its keys a verifier may use, and for how long
the document stays fresh. No I/O here: authserver.verify.fetch gets the document, and the
server can hand its own published JWKS to `parse_jwks` to read its tokens back.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from joserfc.jwk import RSAKey

from authserver.verify.errors import quoted
from authserver.verify.jws import ALG

logger = logging.getLogger("authserver.verify")

DEFAULT_TTL = 300.0  # freshness of a JWKS served without max-age
MAX_TTL = 86400.0  # never trust a JWKS for longer than a day without asking again
MAX_KEYS = 100
MIN_RSA_BITS = 2048


class FetchError(ValueError):
    """Discovery or the JWKS could not be fetched or understood. The message is safe to log."""


def parse_jwks(document: bytes | str) -> dict[str, RSAKey]:
    """The usable keys of a JWKS document, by kid (RFC 7517 §5).

    Usable means RSA, at least 2048 bits, with a kid, `use` absent or `sig`, `alg` absent or
    RS256, `key_ops` absent or containing `verify`. Only `n` and `e` are imported, so a private
    member published by mistake is never used. Other keys are skipped, not fatal (a JWKS may
    also carry encryption or EC keys); a kid that appears twice is ambiguous and dropped.
    A document that is not a JWKS at all raises FetchError, a ValueError.
    """
    try:
        data = json.loads(document)
    except (ValueError, RecursionError) as exc:
        raise FetchError("the JWKS is not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise FetchError('the JWKS has no "keys" array')
    entries: list[Any] = data["keys"]
    if len(entries) > MAX_KEYS:
        raise FetchError(f"the JWKS has {len(entries)} keys (at most {MAX_KEYS})")
    keys: dict[str, RSAKey] = {}
    duplicates: set[str] = set()
    for entry in entries:
        key = _usable_key(entry)
        if key is None:
            continue
        kid = key.kid
        assert kid is not None
        if kid in keys:
            duplicates.add(kid)
        keys[kid] = key
    for kid in duplicates:
        logger.warning("JWKS lists kid %s more than once; ignoring it", quoted(kid))
        del keys[kid]
    return keys


def _usable_key(entry: object) -> RSAKey | None:
    if not isinstance(entry, dict) or entry.get("kty") != "RSA":
        return None
    kid, n, e = entry.get("kid"), entry.get("n"), entry.get("e")
    if not (isinstance(kid, str) and kid and isinstance(n, str) and isinstance(e, str)):
        return None
    if entry.get("use", "sig") != "sig" or entry.get("alg", ALG) != ALG:
        return None
    key_ops = entry.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return None
    try:
        key = RSAKey.import_key(
            {"kty": "RSA", "n": n, "e": e}, parameters={"kid": kid, "use": "sig", "alg": ALG}
        )
    except Exception:  # joserfc raises assorted errors for bad numbers
        logger.warning("JWKS key %s is not a valid RSA public key; ignoring it", quoted(kid))
        return None
    if key.raw_value.key_size < MIN_RSA_BITS:
        logger.warning("JWKS key %s has fewer than %d bits; ignoring it", quoted(kid), MIN_RSA_BITS)
        return None
    return key


def freshness(headers: Mapping[str, str]) -> float:
    """Seconds a response stays fresh: `max-age` minus `Age` (RFC 9111 §4.2.1, §5.1);
    `no-store`/`no-cache` mean 0; absent or unreadable, DEFAULT_TTL; never above MAX_TTL."""
    ttl = DEFAULT_TTL
    for directive in headers.get("cache-control", "").split(","):
        name, _, value = directive.strip().partition("=")
        name = name.strip().lower()
        if name in ("no-store", "no-cache"):
            return 0.0
        if name == "max-age":
            try:
                ttl = float(int(value.strip().strip('"')))
            except ValueError:
                continue
    try:
        age = float(int(headers.get("age", "0")))
    except ValueError:
        age = 0.0
    return min(max(ttl - max(age, 0.0), 0.0), MAX_TTL)
