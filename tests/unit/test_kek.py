"""The key-encryption key file: read only when nobody but its owner can read it (like OpenSSH
with a private key), created 0600."""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from authserver.keys.kek import KeyEncryptionKeys, kek_id, load_keks, too_open
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
        load_keks(Settings(key_encryption_key_file=path))
    message = str(refused.value)
    assert str(path) in message
    assert f"{mode:04o}" in message
    assert f"chmod 600 {path}" in message
    assert KEK_TEXT not in message
    assert stat.S_IMODE(path.stat().st_mode) == mode  # refused, not silently "fixed"


@pytest.mark.parametrize("mode", [0o600, 0o400], ids=oct)
def test_a_kek_file_only_its_owner_can_read_is_used(tmp_path: Path, mode: int) -> None:
    path = kek_file(tmp_path, mode)
    assert load_keks(Settings(key_encryption_key_file=path)).current.key == b"f" * 32


def test_a_created_kek_file_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "kek"
    previous = os.umask(0)
    try:
        keks = load_keks(Settings(key_encryption_key_file=path))
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_keks(Settings(key_encryption_key_file=path), create=False) == keks


# --- several KEKs: the current one and previous ones (KEK rotation) ---------------------------

OLD = b"o" * 32
NEW = b"n" * 32


def text(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


def kek_settings(current: bytes, *previous: bytes) -> Settings:
    values: dict[str, Any] = {
        "key_encryption_key": text(current),
        "previous_key_encryption_keys": [text(key) for key in previous],
    }
    return Settings(**values)


def test_the_kek_file_holds_the_current_kek_first_then_previous_ones(tmp_path: Path) -> None:
    path = tmp_path / "kek"
    path.write_text(f"# rotated 2026-11-28\n{text(NEW)}\n\n  {text(OLD)}  \n")
    path.chmod(0o600)
    keks = load_keks(Settings(key_encryption_key_file=path))
    assert keks.current.key == NEW
    assert [kek.key for kek in keks.previous] == [OLD]
    assert keks.file == path  # re-read when a key names a KEK this process does not hold


def test_previous_keks_come_from_the_setting_too(tmp_path: Path) -> None:
    settings = kek_settings(NEW, OLD)
    keks = load_keks(settings)
    assert (keks.current.key, [kek.key for kek in keks.previous]) == (NEW, [OLD])
    assert keks.file is None  # the environment cannot change under a running process
    assert keks.find(kek_id(OLD)) == keks.previous[0]
    assert keks.find(kek_id(b"x" * 32)) is None


def test_the_current_kek_listed_again_as_previous_counts_once() -> None:
    settings = kek_settings(NEW, NEW)
    keks = load_keks(settings)
    assert keks.previous == ()


@pytest.mark.parametrize(
    ("where", "settings_of"),
    [
        (
            "previous_key_encryption_keys[1]",
            lambda path: {
                "key_encryption_key": text(NEW),
                "previous_key_encryption_keys": [text(OLD), "not a key"],
            },
        ),
        ("line 3", lambda path: {"key_encryption_key_file": path}),
    ],
)
def test_a_malformed_kek_is_named_by_where_it_is(
    tmp_path: Path, where: str, settings_of: Callable[[Path], dict[str, Any]]
) -> None:
    path = tmp_path / "kek"
    path.write_text(f"{text(NEW)}\n\nnot-a-key\n")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="URL-safe base64") as refused:
        load_keks(Settings(**settings_of(path)))
    assert where in str(refused.value)
    assert "not-a-key" not in str(refused.value)


def test_a_kek_file_without_a_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "kek"
    path.write_text("# nothing here\n\n")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="holds no key"):
        load_keks(Settings(key_encryption_key_file=path))


def test_a_kek_id_is_a_short_public_fingerprint_that_tells_keks_apart() -> None:
    assert kek_id(NEW) == kek_id(NEW)
    assert kek_id(NEW) != kek_id(OLD)
    assert len(kek_id(NEW)) == 12
    assert int(kek_id(NEW), 16) >= 0  # hex
    for encoded in (NEW.hex(), text(NEW), base64.b64encode(NEW).decode()):
        assert kek_id(NEW) not in encoded


def test_a_kek_never_shows_in_a_repr() -> None:
    keks = load_keks(kek_settings(NEW, OLD))
    shown = repr(keks)
    for key in (NEW, OLD):
        assert repr(key) not in shown
        assert text(key) not in shown
    assert kek_id(NEW) in shown
    assert isinstance(keks, KeyEncryptionKeys)


@pytest.mark.parametrize(
    ("mode", "owner", "reader", "refused"),
    [
        (0o600, 1000, 1000, False),
        (0o400, 1000, 1000, False),
        (0o640, 1000, 1000, True),
        (0o640, 0, 0, True),  # root reading its own file: owner only
        (0o640, 0, 1000, False),  # root provides it to the service's group: PostgreSQL's rule
        (0o440, 0, 1000, False),
        (0o644, 0, 1000, True),
        (0o660, 0, 1000, True),
        (0o650, 0, 1000, True),
    ],
)
def test_only_its_owner_may_access_a_kek_file_or_roots_group_may_read_it(
    mode: int, owner: int, reader: int, refused: bool
) -> None:
    assert too_open(mode, owner=owner, reader=reader) is refused
