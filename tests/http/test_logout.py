"""GET and POST /logout (SPEC: a CSRF-protected form from a confirmation page ends the login
session and revokes no refresh token), and the other ends of a session: password change and
disable. Over HTTP, on both backends."""

from __future__ import annotations

import httpx
import pytest

from authserver import admin
from authserver.services import Services
from authserver.store import audit as audit_store
from tests.helpers import refresh
from tests.sign_in import (
    MakeClient,
    MakeUser,
    authorize_params,
    hidden_inputs,
    new_browser,
    pkce,
    submit,
    tokens_for,
    web_client,
)


async def signed_in(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> dict[str, object]:
    await make_user()
    client = await web_client(make_client)
    tokens = await tokens_for(http, client)
    return {"client": client, **tokens}


async def shows_sign_in(http: httpx.AsyncClient, make_client: MakeClient) -> bool:
    client = await web_client(make_client)
    response = await http.get("/authorize", params=authorize_params(client, pkce()))
    return response.status_code == 200 and 'name="password"' in response.text


async def test_get_logout_asks_for_confirmation_and_changes_nothing(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    await signed_in(http, make_client, make_user)
    page = await http.get("/logout")
    assert page.status_code == 200
    assert "You are signed in as <strong>alice</strong>" in page.text
    assert '<form method="post" action="/logout">' in page.text
    assert set(hidden_inputs(page)) == {"csrf_token"}
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert not await shows_sign_in(http, make_client)  # still signed in


async def test_post_logout_ends_the_session_but_not_the_apps_tokens(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    tokens = await signed_in(http, make_client, make_user)
    response = await submit(http, await http.get("/logout"))
    assert response.status_code == 200
    assert "You are signed out" in response.text
    cleared = response.headers["set-cookie"]
    assert cleared.startswith("authserver_session=;")
    assert "Max-Age=0" in cleared
    assert await shows_sign_in(http, make_client)
    kept = await refresh(http, tokens["client"], str(tokens["refresh_token"]))  # type: ignore[arg-type]
    assert kept.status_code == 200, kept.text
    assert "logout" in [e.event for e in await audit_store.latest(services.db, 10)]
    assert "You are signed out" in (await http.get("/logout")).text  # nothing left to end


async def test_post_logout_without_the_pages_csrf_token_is_refused(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    await signed_in(http, make_client, make_user)
    page = await http.get("/logout")
    for form in ({}, {"csrf_token": "forged"}):
        refused = await http.post("/logout", data=form)
        assert refused.status_code == 400
    async with new_browser(http) as other:  # a token from another browser's page
        other_page = await other.get("/logout")
        assert "You are signed out" in other_page.text
    assert not await shows_sign_in(http, make_client)
    assert (await submit(http, page)).status_code == 200


@pytest.mark.parametrize("change", ["set_password", "disable"])
async def test_a_password_change_or_disable_ends_the_browser_session(
    http: httpx.AsyncClient,
    services: Services,
    make_client: MakeClient,
    make_user: MakeUser,
    change: str,
) -> None:
    await signed_in(http, make_client, make_user)
    if change == "set_password":
        await admin.set_password(
            services.db, services.passwords, "alice", "a new passphrase", services.clock()
        )
    else:
        await admin.disable_user(services.db, "alice", services.clock())
    assert await shows_sign_in(http, make_client)


async def test_a_session_ends_after_session_ttl(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: object
) -> None:
    await signed_in(http, make_client, make_user)
    clock.advance(43_200)  # type: ignore[attr-defined]
    assert await shows_sign_in(http, make_client)


@pytest.mark.parametrize(
    "settings_overrides",
    [{"refresh_family_max_age": 3600, "refresh_token_ttl": 600}],
    indirect=True,
)
async def test_a_session_never_outlasts_refresh_family_max_age(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: object
) -> None:
    """Its codes' families count from the sign-in: past REFRESH_FAMILY_MAX_AGE it could only
    start dead ones, so the browser signs in again, whatever SESSION_TTL (12 hours) says."""
    await signed_in(http, make_client, make_user)
    clock.advance(3599)  # type: ignore[attr-defined]
    assert not await shows_sign_in(http, make_client)
    clock.advance(1)  # type: ignore[attr-defined]
    assert await shows_sign_in(http, make_client)
