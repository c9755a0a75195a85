"""The key-encryption keys (KEKs): where they come from, and how private signing keys are sealed
with them (AES-256-GCM, the kid as associated data, so a ciphertext cannot be moved to another
row).

Like Hydra's `secrets.system`, several KEKs may be configured at once: KEY_ENCRYPTION_KEY (or the
first line of the KEK file) is the one `keys rekey` seals every key under, and each of
PREVIOUS_KEY_ENCRYPTION_KEYS (or the file's further lines) still opens the keys sealed under it.
Each stored key names the KEK that sealed it by the KEK's id (a fingerprint: the first 6 bytes of
a SHA-256 of the KEK, in hex), so opening a key never tries the KEKs in turn; keys stored before
ids existed name none, and only those are tried against each configured KEK.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from authserver.models import SigningKeyRecord
from authserver.settings import ConfigError, Settings

_KEK_ID_CONTEXT = b"authserver key-encryption key id\x00"


class KeyDecryptionError(Exception):
    """The configured KEKs do not open a stored key (wrong key, or a tampered row)."""


class KekNotConfigured(KeyDecryptionError):
    """A stored key is sealed under a KEK this process does not hold (a KEK rotation it has not
    been given yet)."""


@dataclass(frozen=True)
class Kek:
    id: str  # public: printed, logged and stored next to each ciphertext it sealed
    key: bytes = field(repr=False)  # never in a repr: tracebacks, test reports, debuggers


@dataclass(frozen=True)
class KeyEncryptionKeys:
    current: Kek  # KEY_ENCRYPTION_KEY: `keys rekey` seals every key under it
    previous: tuple[Kek, ...] = ()  # open what they sealed; never seal anything new
    file: Path | None = None  # where they were read from (re-read to pick up a rotation)

    @property
    def all(self) -> tuple[Kek, ...]:
        return (self.current, *self.previous)

    def find(self, kek_id: str) -> Kek | None:
        return next((kek for kek in self.all if kek.id == kek_id), None)


def kek_id(key: bytes) -> str:
    """The KEK's public fingerprint: 48 bits of SHA-256 say nothing about a 256-bit key."""
    return hashlib.sha256(_KEK_ID_CONTEXT + key).hexdigest()[:12]


def key_encryption_keys(
    current: bytes, *previous: bytes, file: Path | None = None
) -> KeyEncryptionKeys:
    """The set, with a KEY_ENCRYPTION_KEY repeated among the previous ones listed once."""
    keks = {key: Kek(kek_id(key), key) for key in (current, *previous)}
    if len({kek.id for kek in keks.values()}) != len(keks):  # 2^-48 per pair: a broken setup
        raise ConfigError("previous_key_encryption_keys: two different KEKs share an id")
    first, *rest = keks.values()
    return KeyEncryptionKeys(first, tuple(rest), file)


def load_keks(settings: Settings, *, create: bool = True) -> KeyEncryptionKeys:
    """KEY_ENCRYPTION_KEY, or else the KEK file (one KEK per line, the first one current),
    created with one new KEK (mode 0600) if absent and `create`; plus
    PREVIOUS_KEY_ENCRYPTION_KEYS."""
    previous = [
        _decode_kek(value.get_secret_value(), f"previous_key_encryption_keys[{index}]")
        for index, value in enumerate(settings.previous_key_encryption_keys)
    ]
    if settings.key_encryption_key is not None:
        current = _decode_kek(settings.key_encryption_key.get_secret_value(), "key_encryption_key")
        return key_encryption_keys(current, *previous)
    path = settings.key_encryption_key_file
    if not path.exists():
        if not create:
            raise ConfigError(
                f"key_encryption_key: not set, and {path} does not exist "
                "(run from the directory the server runs in, or set AUTHSERVER_KEY_ENCRYPTION_KEY)"
            )
        _create_kek_file(path)
    in_file = read_kek_file(path)
    return key_encryption_keys(in_file[0], *in_file[1:], *previous, file=path)


def read_kek_file(path: Path) -> list[bytes]:
    """The KEKs of the file, current first: one per line; blank lines and `#` comments skipped."""
    text = _read_private_file(path)
    keks = [
        _decode_kek(line.strip(), f"key_encryption_key (file {path}, line {number})")
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not keks:
        raise ConfigError(f"key_encryption_key (file {path}): the file holds no key")
    return keks


def _read_private_file(path: Path) -> str:
    """The file's text, refused (like OpenSSH refuses a private key) when anyone but its owner
    may read or change it: a KEK other users can read is as good as published. One exception,
    PostgreSQL's for its key files: a file root owns may also be readable by its group (a secret
    that root provisions for a service's group, e.g. a Kubernetes secret volume with fsGroup).
    Checked on the open file, so the file checked is the file read."""
    try:
        with path.open("rb") as file:
            status = os.fstat(file.fileno())
            mode = stat.S_IMODE(status.st_mode)
            if too_open(mode, owner=status.st_uid, reader=os.geteuid()):
                raise ConfigError(
                    f"key_encryption_key: {path} is accessible by other users (mode {mode:04o}); "
                    f"it must be readable by its owner only: chmod 600 {path}"
                )
            return file.read().decode("ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"key_encryption_key: cannot read {path}: {exc.__class__.__name__}"
        ) from None


def too_open(mode: int, *, owner: int, reader: int) -> bool:
    """Whether a KEK file with `mode`, owned by uid `owner` and read by uid `reader`, lets other
    users in: any group or other bit, but the group's read bit when root provides the file."""
    provisioned_by_root = owner == 0 and reader != 0
    return bool(mode & (0o037 if provisioned_by_root else 0o077))


def _decode_kek(text: str, name: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ConfigError(f"{name}: must be the URL-safe base64 of 32 random bytes")
    return raw


def _create_kek_file(path: Path) -> None:
    """Write a fresh KEK atomically: a concurrent first start keeps whichever file landed first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


# --- sealing and opening private keys ---------------------------------------------------------


def encrypt_private_key(kek: bytes, kid: str, pem: bytes) -> bytes:
    """nonce || AES-256-GCM(pem), the kid as associated data."""
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(kek).encrypt(nonce, pem, kid.encode())


def decrypt_private_key(kek: bytes, kid: str, blob: bytes) -> bytes:
    try:
        return AESGCM(kek).decrypt(blob[:12], blob[12:], kid.encode())
    except InvalidTag:
        raise KeyDecryptionError(
            f"KEY_ENCRYPTION_KEY does not decrypt signing key {kid}: "
            "it is not the key these keys were stored with"
        ) from None


def open_private_key(keks: KeyEncryptionKeys, record: SigningKeyRecord) -> tuple[bytes, Kek]:
    """The PEM of `record`'s private key, and the KEK that sealed it."""
    if record.kek_id is None:  # stored before KEK ids: the one case where KEKs are tried
        for candidate in keks.all:
            try:
                pem = decrypt_private_key(candidate.key, record.kid, record.private_key)
            except KeyDecryptionError:
                continue
            return pem, candidate
        decrypt_private_key(keks.current.key, record.kid, record.private_key)  # raises
    kek = keks.find(record.kek_id or "")
    if kek is None:
        raise KekNotConfigured(
            f"KEY_ENCRYPTION_KEY does not decrypt signing key {record.kid}: it is sealed under "
            f"KEK {record.kek_id}, which is neither KEY_ENCRYPTION_KEY ({keks.current.id}) nor "
            "one of PREVIOUS_KEY_ENCRYPTION_KEYS"
        )
    try:
        return AESGCM(kek.key).decrypt(
            record.private_key[:12], record.private_key[12:], record.kid.encode()
        ), kek
    except InvalidTag:
        raise KeyDecryptionError(
            f"signing key {record.kid} does not decrypt under KEK {kek.id}, which it names: "
            "its stored private key was altered"
        ) from None


def seal_private_key(kek: Kek, kid: str, pem: bytes) -> tuple[bytes, str]:
    """(ciphertext, kek id) to store for a private key."""
    return encrypt_private_key(kek.key, kid, pem), kek.id


def sealing_kek(keks: KeyEncryptionKeys, records: list[SigningKeyRecord]) -> Kek:
    """The KEK a new key is sealed under: the one sealing the `current` key, else
    KEY_ENCRYPTION_KEY. So until `keys rekey` moves every key to a new KEY_ENCRYPTION_KEY, a key
    made by a process that already has it is one that processes still without it can open too:
    rolling the new setting out never leaves a key some process cannot read."""
    current = next((record for record in records if record.state == "current"), None)
    if current is None:
        return keks.current
    try:
        return open_private_key(keks, current)[1]
    except KeyDecryptionError:
        return keks.current
