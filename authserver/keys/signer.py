"""RFC 7515 §7.1 compact JWS for one key and one protected header, both prepared once.

`joserfc.jwt.encode` re-checks the header against its registry, re-serialises the header, looks
the algorithm up and re-checks the key on every call: all of it the same for every access token
that one key signs. Here joserfc does that work once, when the key ring is built (its registry
checks the header, its RS256 model checks the key, its encoder writes the header segment), and
each token costs only its payload's encoding and joserfc's RS256 `sign` with the same key object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from joserfc.jwk import RSAKey
from joserfc.jws import JWSRegistry
from joserfc.util import json_b64encode, urlsafe_b64encode

from authserver.verify import ALG


@dataclass(frozen=True)
class CompactSigner:
    header_segment: bytes  # BASE64URL(UTF8(JWS Protected Header)) "."
    key: RSAKey
    alg: Any  # joserfc's JWSAlgModel for the header's `alg`

    def sign(self, payload: bytes) -> str:
        """BASE64URL(header) "." BASE64URL(payload) "." BASE64URL(signature)."""
        signing_input = self.header_segment + urlsafe_b64encode(payload)
        signature = urlsafe_b64encode(self.alg.sign(signing_input, self.key))
        return (signing_input + b"." + signature).decode("ascii")


def compact_signer(key: RSAKey, header: dict[str, str]) -> CompactSigner:
    """Checked as `joserfc.jws.serialize_compact` checks each call: the header against the
    registry (only ALG, RS256, allowed), the key against the algorithm."""
    registry = JWSRegistry(algorithms=[ALG])
    registry.check_header(header)
    alg = registry.get_alg(header["alg"])
    alg.check_key(key)
    return CompactSigner(json_b64encode(header) + b".", key, alg)
