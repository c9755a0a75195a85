"""Key rotation and revocation as resource servers and clients see them (SPEC "Signing keys"):
tokens signed before a rotation keep verifying against the published JWKS until they expire,
the retired key then drops out by itself, revocation unpublishes at once and never stops
issuance, and a running server picks every change up without a restart."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import delete, update
from starlette.applications import Starlette

from authserver.app import create_app
from authserver.keys import lifecycle as key_lifecycle
from authserver.keys.bootstrap import generate_key
from authserver.keys.kek import KeyDecryptionError
from authserver.keys.ring import RETIRED_KEY_LEEWAY
from authserver.keys.watch import check_keys
from authserver.services import Services
from authserver.settings import Settings
from authserver.store import keys as key_store
from authserver.store.db import open_database
from authserver.store.tables import signing_keys
from tests.conftest import ISSUER, Clock, RegisteredClient
from tests.helpers import jwt_parts, password_login

MakeClient = Callable[..., Awaitable[RegisteredClient]]
MakeUser = Callable[..., Awaitable[str]]


@pytest.fixture
async def app(settings: Settings, clock: Clock) -> AsyncIterator[Starlette]:
    """The app on a key table emptied first: its current and next keys are created at
    `clock.now`, so the test controls how long the next key has been published. Emptied again
    afterwards: these tests move the clock ahead, and keys dated in the future must not reach
    later tests (a key activated "later" has no age yet)."""
    await _empty_key_table(settings)
    application = create_app(settings, clock=clock)
    async with LifespanManager(application):
        yield application
    await _empty_key_table(settings)


async def _empty_key_table(settings: Settings) -> None:
    db = open_database(settings)
    try:
        async with db.transaction() as conn:
            await conn.execute(delete(signing_keys))
    finally:
        await db.dispose()


@pytest.fixture
async def client(make_client: MakeClient, make_user: MakeUser) -> RegisteredClient:
    await make_user()
    return await make_client()


async def access_token(http: httpx.AsyncClient, client: RegisteredClient) -> str:
    response = await password_login(http, client)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def jwks(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def verify(token: str, document: dict[str, Any], now: float) -> dict[str, Any]:
    """What an independent resource server does: PyJWT, RS256 only, the published JWKS."""
    kid = jwt_parts(token)[0]["kid"]
    matches = [key for key in document["keys"] if key["kid"] == kid]
    if not matches:
        raise LookupError(f"kid {kid} is not published")
    key = jwt.PyJWK(matches[0]).key
    claims: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=["RS256"],
        audience=ISSUER,
        issuer=ISSUER,
        options={"verify_exp": False, "verify_iat": False},  # simulated clock: exp checked below
    )
    if claims["exp"] <= now:
        raise ValueError("expired")
    return claims


def kid_of(token: str) -> str:
    kid: str = jwt_parts(token)[0]["kid"]
    return kid


async def test_tokens_signed_before_a_rotation_verify_until_they_expire_then_the_key_drops_out(
    http: httpx.AsyncClient, client: RegisteredClient, services: Services, clock: Clock
) -> None:
    settings = services.settings
    old_token = await access_token(http, client)
    old_kid = kid_of(old_token)

    clock.advance(settings.jwks_max_age)  # the next key has now been published long enough
    rotation = await key_lifecycle.rotate(services.db, settings, services.keks, clock())
    await check_keys(services)  # what the watcher does within KEYS_REFRESH_INTERVAL
    assert rotation.retired_kid == old_kid

    new_token = await access_token(http, client)
    assert kid_of(new_token) == rotation.current_kid
    document = await jwks(http)
    assert {key["kid"] for key in document["keys"]} == {
        old_kid,
        rotation.current_kid,
        rotation.next_kid,
    }
    # Both the token signed before the rotation and the one signed after verify.
    assert verify(old_token, document, clock().timestamp())["sub"]
    assert verify(new_token, document, clock().timestamp())["sub"]

    # Just before the retired key's window ends the old token has expired, but the key is
    # still published; at the end of the window it drops out on its own.
    window = settings.access_token_ttl + settings.keys_refresh_interval
    clock.advance(window)
    await check_keys(services)
    document = await jwks(http)
    assert old_kid in {key["kid"] for key in document["keys"]}
    with pytest.raises(ValueError, match="expired"):
        verify(old_token, document, clock().timestamp())

    clock.advance(RETIRED_KEY_LEEWAY.total_seconds())
    await check_keys(services)
    document = await jwks(http)
    assert {key["kid"] for key in document["keys"]} == {rotation.current_kid, rotation.next_kid}
    with pytest.raises(LookupError):
        verify(old_token, document, clock().timestamp())


async def test_the_next_key_is_published_before_it_signs(
    http: httpx.AsyncClient, client: RegisteredClient, services: Services, clock: Clock
) -> None:
    """Whatever a resource server cached before the rotation already holds the new signer."""
    cached_before_rotation = await jwks(http)
    clock.advance(services.settings.jwks_max_age)
    await key_lifecycle.rotate(services.db, services.settings, services.keks, clock())
    await check_keys(services)
    token = await access_token(http, client)
    assert verify(token, cached_before_rotation, clock().timestamp())


async def test_revoking_the_current_key_keeps_issuance_working_and_unpublishes_it(
    http: httpx.AsyncClient, client: RegisteredClient, services: Services, clock: Clock
) -> None:
    compromised = kid_of(await access_token(http, client))
    revocation = await key_lifecycle.revoke(
        services.db, services.settings, services.keks, compromised, clock()
    )
    await check_keys(services)
    assert revocation.promoted is not None

    token = await access_token(http, client)
    assert kid_of(token) == revocation.promoted.current_kid
    document = await jwks(http)
    assert compromised not in {key["kid"] for key in document["keys"]}
    assert verify(token, document, clock().timestamp())


async def test_the_jwks_etag_changes_when_the_keys_rotate(
    http: httpx.AsyncClient, services: Services, clock: Clock
) -> None:
    """A cache that revalidates with If-None-Match gets the new key set at once (issue 13)."""
    before = await http.get("/.well-known/jwks.json")
    etag = before.headers["etag"]
    unchanged = await http.get("/.well-known/jwks.json", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304

    clock.advance(services.settings.jwks_max_age)
    rotation = await key_lifecycle.rotate(services.db, services.settings, services.keks, clock())
    await check_keys(services)

    after = await http.get("/.well-known/jwks.json", headers={"If-None-Match": etag})
    assert after.status_code == 200
    assert after.headers["etag"] != etag
    assert rotation.next_kid in {key["kid"] for key in after.json()["keys"]}
    again = await http.get(
        "/.well-known/jwks.json", headers={"If-None-Match": after.headers["etag"]}
    )
    assert again.status_code == 304


async def test_a_running_server_picks_up_a_rotation_within_the_refresh_interval(
    http: httpx.AsyncClient, client: RegisteredClient, services: Services, clock: Clock
) -> None:
    """No call into the app: only its own watcher (KEYS_REFRESH_INTERVAL 0.2 s here)."""
    clock.advance(services.settings.jwks_max_age)
    rotation = await key_lifecycle.rotate(services.db, services.settings, services.keks, clock())
    started = time.monotonic()
    while kid_of(await access_token(http, client)) != rotation.current_kid:
        assert time.monotonic() - started < 30, "rotation not picked up"  # a busy machine
        await asyncio.sleep(0.05)
    document = await jwks(http)
    assert rotation.next_kid in {key["kid"] for key in document["keys"]}


@pytest.mark.parametrize("settings_overrides", [{"key_rotation_interval": 600}], indirect=True)
async def test_the_server_rotates_by_itself_once_key_rotation_interval_has_passed(
    http: httpx.AsyncClient, client: RegisteredClient, services: Services, clock: Clock
) -> None:
    first = kid_of(await access_token(http, client))
    clock.advance(599)
    await check_keys(services)
    assert kid_of(await access_token(http, client)) == first
    clock.advance(1)
    await check_keys(services)
    second = kid_of(await access_token(http, client))
    assert second != first
    assert first in {key["kid"] for key in (await jwks(http))["keys"]}  # retired, still published


async def test_a_running_server_never_publishes_a_key_whose_row_was_altered(
    http: httpx.AsyncClient,
    client: RegisteredClient,
    services: Services,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Review finding 9: someone who can write the database swaps the public key of the `next`
    row for one of theirs, then a rotation makes every server rebuild its key ring. The server
    refuses the altered row, keeps its keys and says why; a server starting refuses to."""
    published_before = await jwks(http)
    [next_row] = [r for r in await key_store.list_keys(services.db) if r.state == "next"]
    foreign = generate_key(2048).as_dict(private=False)
    foreign["kid"] = next_row.kid
    async with services.db.transaction() as conn:
        await conn.execute(
            update(signing_keys)
            .where(signing_keys.c.kid == next_row.kid)
            .values(public_jwk=json.dumps(foreign, sort_keys=True))
        )
    clock.advance(services.settings.jwks_max_age)
    rotation = await key_lifecycle.rotate(services.db, services.settings, services.keks, clock())

    with caplog.at_level(logging.ERROR, logger="authserver.keys"):
        await check_keys(services)
    assert await jwks(http) == published_before
    assert str(foreign["n"]) not in json.dumps(await jwks(http))
    assert f"signing key {next_row.kid}" in caplog.text
    assert "not the public half" in caplog.text
    token = await access_token(http, client)
    assert kid_of(token) == rotation.retired_kid  # still signs, with the key it had
    assert verify(token, await jwks(http), clock().timestamp())

    with pytest.raises(KeyDecryptionError, match="not the public half"):
        async with LifespanManager(create_app(services.settings, clock=clock)):
            pass
