"""Operator input the client registry refuses (admin.create_client, used by `clients create`)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from authserver import admin
from authserver.admin import AdminError
from authserver.settings import Settings
from authserver.store import clients as client_store
from authserver.store.db import Database


async def test_a_public_client_cannot_be_allowed_to_introspect(
    db: Database, database_url: str
) -> None:
    """/introspect needs client authentication (RFC 7662 §2.1), which a public client has not:
    such a registration could never work, so it is refused rather than stored."""
    with pytest.raises(AdminError, match="public client cannot introspect"):
        await admin.create_client(
            db,
            Settings(database_url=database_url),
            name="resource-server",
            public=True,
            grant_types=(),
            scopes=(),
            audiences=(),
            can_introspect=True,
            access_token_ttl=None,
            now=datetime.now(UTC),
        )
    assert await client_store.list_clients(db) == []


async def sign_in_client(
    db: Database,
    database_url: str,
    *,
    grants: tuple[str, ...],
    uris: tuple[str, ...],
    **extra: bool,
) -> admin.NewClient:
    return await admin.create_client(
        db,
        Settings(database_url=database_url),
        name="web",
        public=True,
        grant_types=grants,
        scopes=("profile:read",),
        audiences=(),
        can_introspect=False,
        access_token_ttl=None,
        now=datetime.now(UTC),
        redirect_uris=uris,
        **extra,
    )


async def test_redirect_uris_and_consent_are_stored_in_registration_order(
    db: Database, database_url: str
) -> None:
    uris = ("https://app.example/cb", "http://127.0.0.1/cb", "com.example.app:/cb")
    created = await sign_in_client(
        db,
        database_url,
        grants=("authorization_code", "refresh_token"),
        uris=(*uris, uris[0]),  # a repeat is kept once
        consent=True,
    )
    stored = await client_store.get_client(db, created.client.client_id)
    assert stored is not None
    assert (stored.redirect_uris, stored.consent) == (uris, True)
    assert stored.grant_types == {"authorization_code", "refresh_token"}
    assert created.secret is None  # public: PKCE protects it
    [listed] = await client_store.list_clients(db)
    assert listed == stored


@pytest.mark.parametrize(
    ("uri", "named"),
    [
        ("https://app.example/cb#frag", "fragment"),
        ("https://user:pw@app.example/cb", "user-info"),
        ("https://App.Example/cb", "lower case"),
        ("https://app.example/a/../cb", "'..'"),
        ("http://app.example/cb", "https"),
        ("http://localhost:3000/cb", "127.0.0.1"),
        ("javascript:alert(1)", "reverse domain"),
        ("/relative/cb", "absolute"),
        ("https://app.example/cb?code=1", "'code'"),
        ("https://app.example/\x00cb", "URI characters"),
    ],
)
async def test_a_redirect_uri_that_breaks_the_rules_is_refused_in_one_line_naming_it(
    db: Database, database_url: str, uri: str, named: str
) -> None:
    with pytest.raises(AdminError) as refused:
        await sign_in_client(db, database_url, grants=("authorization_code",), uris=(uri,))
    message = str(refused.value)
    assert "\n" not in message
    assert repr(uri) in message  # the URI is named, control characters escaped
    assert named in message
    assert await client_store.list_clients(db) == []


async def test_a_very_long_refused_uri_is_named_cut_short(db: Database, database_url: str) -> None:
    uri = "https://app.example/" + "a" * 3000
    with pytest.raises(AdminError, match="at most 2000") as refused:
        await sign_in_client(db, database_url, grants=("authorization_code",), uris=(uri,))
    assert len(str(refused.value)) < 200


@pytest.mark.parametrize(
    ("grants", "uris", "consent", "message"),
    [
        (("authorization_code",), (), False, "needs at least one --redirect-uri"),
        ((), ("https://app.example/cb",), False, "--redirect-uri needs --grant authorization_code"),
        (("password",), (), True, "--consent needs --grant authorization_code"),
    ],
)
async def test_sign_in_settings_without_each_other_are_refused(
    db: Database,
    database_url: str,
    grants: tuple[str, ...],
    uris: tuple[str, ...],
    consent: bool,
    message: str,
) -> None:
    """SPEC: authorization_code needs a redirect URI. A redirect URI or --consent without the
    grant is most likely a forgotten `--grant authorization_code`: refused rather than ignored."""
    with pytest.raises(AdminError, match=message):
        await sign_in_client(db, database_url, grants=grants, uris=uris, consent=consent)
    assert await client_store.list_clients(db) == []
