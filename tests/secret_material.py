"""What counts as a secret for the hygiene tests, and the search for it in captured text.

Secrets: user passwords, refresh tokens, client secrets, the signing keys' private parts (PEM,
its base64 body, and the JWK members d, p, q, dp, dq, qi), and the key-encryption key (as
configured and as raw bytes). Each is searched verbatim and in the encodings a log line or an
error body might use (repr, percent-encoding).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from urllib.parse import quote

from joserfc.jwk import RSAKey

from authserver.keys.kek import KeyEncryptionKeys, open_private_key
from authserver.models import SigningKeyRecord

PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi")


@dataclass
class Secrets:
    """Named secrets; `found_in(text)` lists the names of those that appear in `text`."""

    values: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, value: str) -> None:
        assert len(value) >= 12, f"{name} is too short to search for without false alarms"
        self.values[name] = value

    def add_kek(self, kek_text: str, kek: bytes) -> None:
        self.add("KEK", kek_text)
        self.add("KEK (standard base64)", base64.b64encode(kek).decode())
        self.add("KEK (raw bytes)", repr(kek)[2:-1])
        self.add("KEK (hex)", kek.hex())

    def add_signing_keys(self, records: list[SigningKeyRecord], keks: KeyEncryptionKeys) -> None:
        for record in records:
            pem, _kek = open_private_key(keks, record)
            text = pem.decode()
            self.add(f"private key {record.kid} (PEM)", text)
            body = "".join(line for line in text.splitlines() if not line.startswith("-----"))
            # Any 48-character run of the base64 body: a PEM logged with its lines broken
            # differently, or cut short, is still found.
            for start in range(0, len(body) - 48, 200):
                self.add(f"private key {record.kid} (PEM body @{start})", body[start : start + 48])
            jwk = RSAKey.import_key(pem).as_dict(private=True)
            members: dict[str, str] = {}
            for member in PRIVATE_MEMBERS:
                value = jwk[member]
                assert isinstance(value, str)
                members[member] = value
                self.add(f"private key {record.kid} ({member})", value)
            d = base64.urlsafe_b64decode(members["d"] + "=" * (-len(members["d"]) % 4))
            self.add(f"private key {record.kid} (d, hex)", d.hex()[:64])
            self.add(f"private key {record.kid} (d, decimal)", str(int.from_bytes(d, "big"))[:64])

    def found_in(self, text: str) -> list[str]:
        hits = []
        for name, value in self.values.items():
            forms = {value, quote(value, safe=""), json.dumps(value)[1:-1], repr(value)[1:-1]}
            if any(form in text for form in forms):
                hits.append(name)
        return hits
