"""Client ids are typed on command lines (`authserver clients delete CLIENT_ID`)."""

from __future__ import annotations

import secrets

import pytest

from authserver.clients import authentication


def test_a_new_client_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """token_urlsafe starts with "-" once in 64 draws; such an id would be read as an option
    (`clients delete -eX…` → "No such option '-e'", seen in a full test run)."""
    draws = iter(["-eXYZ0123456789abcdefg", "KXYZ0123456789abcdefgh"])
    monkeypatch.setattr(secrets, "token_urlsafe", lambda nbytes: next(draws))
    assert authentication.new_client_id() == "KXYZ0123456789abcdefgh"


def test_new_client_ids_keep_128_random_bits() -> None:
    ids = {authentication.new_client_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(len(client_id) == 22 and not client_id.startswith("-") for client_id in ids)
