"""The key-encryption key (KEK): where it comes from, and how private signing keys are sealed
with it (AES-256-GCM, the kid as associated data, so a ciphertext cannot be moved to another row).
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from authserver.settings import ConfigError, Settings


class KeyDecryptionError(Exception):
    """KEY_ENCRYPTION_KEY does not open the stored keys (wrong key, or tampered rows)."""


def load_kek(settings: Settings, *, create: bool = True) -> bytes:
    """KEY_ENCRYPTION_KEY, or the file `keys/kek`, created (mode 0600) if absent and `create`."""
    if settings.key_encryption_key is not None:
        return _decode_kek(settings.key_encryption_key.get_secret_value(), "key_encryption_key")
    path = settings.key_encryption_key_file
    if not path.exists():
        if not create:
            raise ConfigError(
                f"key_encryption_key: not set, and {path} does not exist "
                "(run from the directory the server runs in, or set AUTHSERVER_KEY_ENCRYPTION_KEY)"
            )
        _create_kek_file(path)
    return _decode_kek(_read_private_file(path), f"key_encryption_key (file {path})")


def _read_private_file(path: Path) -> str:
    """The file's text, refused (like OpenSSH refuses a private key) when anyone but its owner
    may read or change it: a KEK other users can read is as good as published. Checked on the
    open file, so the file checked is the file read."""
    try:
        with path.open("rb") as file:
            mode = stat.S_IMODE(os.fstat(file.fileno()).st_mode)
            if mode & 0o077:
                raise ConfigError(
                    f"key_encryption_key: {path} is accessible by other users (mode {mode:04o}); "
                    f"it must be readable by its owner only: chmod 600 {path}"
                )
            return file.read().decode("ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"key_encryption_key: cannot read {path}: {exc.__class__.__name__}"
        ) from None


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


def encrypt_private_key(kek: bytes, kid: str, pem: bytes) -> bytes:
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
