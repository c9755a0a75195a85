"""The key-encryption key file: read only when nobody but its owner can read it (like OpenSSH
with a private key), created 0600."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from authserver.keys.kek import load_kek
from authserver.settings import ConfigError, Settings

KEK_TEXT = base64.urlsafe_b64encode(b"f" * 32).decode().rstrip("=")


def kek_file(tmp_path: Path, mode: int) -> Path:
    path = tmp_path / "keys" / "kek"
    path.parent.mkdir()
    path.write_text(KEK_TEXT + "\n")
    os.chmod(path, mode)
    return path


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606, 0o610, 0o601], ids=oct)
def test_a_kek_file_other_users_can_access_is_refused(tmp_path: Path, mode: int) -> None:
    path = kek_file(tmp_path, mode)
    with pytest.raises(ConfigError) as refused:
        load_kek(Settings(key_encryption_key_file=path))
    message = str(refused.value)
    assert str(path) in message
    assert f"{mode:04o}" in message
    assert f"chmod 600 {path}" in message
    assert KEK_TEXT not in message
    assert stat.S_IMODE(path.stat().st_mode) == mode  # refused, not silently "fixed"


@pytest.mark.parametrize("mode", [0o600, 0o400], ids=oct)
def test_a_kek_file_only_its_owner_can_read_is_used(tmp_path: Path, mode: int) -> None:
    path = kek_file(tmp_path, mode)
    assert load_kek(Settings(key_encryption_key_file=path)) == b"f" * 32


def test_a_created_kek_file_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "kek"
    previous = os.umask(0)
    try:
        kek = load_kek(Settings(key_encryption_key_file=path))
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_kek(Settings(key_encryption_key_file=path), create=False) == kek
