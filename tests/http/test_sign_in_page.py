"""The sign-in page of /authorize (SPEC "Sign-in page"), over HTTP on both backends: THE password
check (same answer for a wrong username and a wrong password, the same login limits and lock
message), CSRF, the session cookie's attributes, and a session that is reused without a
password until it ends."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from authserver import admin
from authserver.services import Services
from authserver.store import audit as audit_store
from authserver.store.tables import login_sessions, login_user_failures
from tests.conftest import ISSUER, PASSWORD
from tests.helpers import password_login
from tests.http.test_login_credential_races import ChangeDuringCheck, change_once
from tests.sign_in import (
    MakeClient,
    MakeUser,
    answer,
    authorize_params,
    hidden_inputs,
    new_browser,
    pkce,
    row_counts,
    sign_in,
    submit,
    web_client,
)

COOKIE_ATTRIBUTES = re.compile(
    r"authserver_session=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Lax; Path=/"
)


async def sign_in_page(http: httpx.AsyncClient, make_client: MakeClient) -> httpx.Response:
    client = await web_client(make_client)
    page = await http.get("/authorize", params=authorize_params(client, pkce()))
    assert page.status_code == 200, page.text
    return page


def session_cookie_header(response: httpx.Response) -> str:
    [cookie] = [c for c in response.headers.get_list("set-cookie") if "authserver_session=" in c]
    return cookie


async def test_a_right_password_starts_a_session_and_answers_the_app_with_a_code(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    user_id = await make_user()
    response = await sign_in(http, await sign_in_page(http, make_client))
    values = answer(response)
    assert set(values) == {"code", "state", "iss"}
    assert (values["state"], values["iss"]) == ("af0ifjsldkj", ISSUER)
    assert len(values["code"]) >= 43  # 256 bits
    cookie = session_cookie_header(response)
    assert COOKIE_ATTRIBUTES.fullmatch(cookie.removesuffix("; Secure")), cookie
    assert cookie.endswith("; Secure")  # ISSUER is https
    assert "Max-Age" not in cookie
    assert "Domain" not in cookie
    async with services.db.read() as conn:
        stored = (await conn.execute(select(login_sessions.c.token_hash))).scalars().all()
    value = cookie.split(";")[0].split("=", 1)[1]
    assert value.encode() not in stored
    assert len(stored) == 1
    events = [(e.event, e.detail) for e in await audit_store.latest(services.db, 10)]
    assert ("code.issued", {"session": events[0][1]["session"], "scope": "read write"}) in events
    [success] = [detail for event, detail in events if event == "login.success"]
    assert success["via"] == "sign_in_page"
    assert user_id


@pytest.mark.parametrize("settings_overrides", [{"issuer": "http://127.0.0.1:8000"}], indirect=True)
async def test_on_plain_http_the_cookies_are_not_secure(
    services: Services, make_client: MakeClient, make_user: MakeUser, app: object
) -> None:
    await make_user()
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
        page = await sign_in_page(http, make_client)
        assert "authserver_csrf=" in page.headers["set-cookie"]
        assert "Secure" not in page.headers["set-cookie"]
        response = await sign_in(http, page)
    cookie = session_cookie_header(response)
    assert COOKIE_ATTRIBUTES.fullmatch(cookie), cookie


async def test_the_csrf_anchor_is_a_host_only_secure_cookie_on_https(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    page = await sign_in_page(http, make_client)
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("__Host-authserver_csrf=")
    assert cookie.endswith("; HttpOnly; SameSite=Lax; Path=/; Secure")


async def test_a_wrong_password_and_an_unknown_user_get_the_same_page(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    await make_user("alice")
    page = await sign_in_page(http, make_client)
    wrong_password = await sign_in(http, page, "alice", "not the password")
    unknown_user = await sign_in(http, page, "mallory", PASSWORD)
    for response in (wrong_password, unknown_user):
        assert response.status_code == 400
        assert "Wrong username or password" in response.text
        assert "set-cookie" not in response.headers
    assert wrong_password.text.replace("alice", "mallory") == unknown_user.text
    failures = [e for e in await audit_store.latest(services.db, 10) if e.event == "login.failure"]
    assert sorted(e.detail["reason"] for e in failures) == ["password", "unknown_user"]
    assert {e.detail["via"] for e in failures} == {"sign_in_page"}
    assert (await row_counts(services))["login_sessions"] == 0


async def test_a_username_is_kept_after_a_failure_and_escaped(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    page = await sign_in_page(http, make_client)
    response = await sign_in(http, page, '"><script>x</script>', "wrong")
    assert "<script>x" not in response.text
    assert 'value="&#34;&gt;&lt;script&gt;x&lt;/script&gt;"' in response.text


@pytest.mark.parametrize(
    "settings_overrides", [{"login_max_failures": 3, "login_known_ip_days": 0}], indirect=True
)
async def test_a_locked_account_sees_the_lock_message_with_429_never_a_500(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    """The password grant's limits, shared: the third failure locks, then even the right
    password gets the message (SPEC "Login limits")."""
    await make_user()
    page = await sign_in_page(http, make_client)
    for _ in range(3):
        assert (await sign_in(http, page, "alice", "wrong")).status_code == 400
    locked = await sign_in(http, page, "alice", PASSWORD)
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) >= 1
    assert "Too many failed attempts for this account. Wait 1 minute" in locked.text
    assert "set-cookie" not in locked.headers
    password_client = await make_client("first-party")
    grant = await password_login(http, password_client, "alice", PASSWORD)
    assert grant.status_code == 429  # the lock is the username's, whichever way in


async def test_a_post_without_the_pages_csrf_token_is_refused_and_changes_nothing(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    await make_user()
    page = await sign_in_page(http, make_client)
    fields = {**hidden_inputs(page), "username": "alice", "password": "wrong"}
    before = await row_counts(services)
    for form in (
        {k: v for k, v in fields.items() if k != "csrf_token"},
        {**fields, "csrf_token": "forged"},
    ):
        refused = await http.post("/authorize/sign-in", data=form)
        assert refused.status_code == 400
        assert "This form has expired" in refused.text
    async with new_browser(http) as attacker:  # the token is worth nothing in another browser
        refused = await attacker.post("/authorize/sign-in", data=fields)
        assert refused.status_code == 400
    assert await row_counts(services) == before
    async with services.db.read() as conn:
        assert (await conn.execute(select(login_user_failures))).first() is None  # not counted


async def test_an_expired_sign_in_page_says_so(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, clock: object
) -> None:
    await make_user()
    page = await sign_in_page(http, make_client)
    clock.advance(1801)  # type: ignore[attr-defined]
    response = await sign_in(http, page)
    assert response.status_code == 400
    assert "This sign-in page has expired" in response.text


async def test_a_form_submitted_twice_answers_the_app_once(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    await make_user()
    page = await sign_in_page(http, make_client)
    first = await sign_in(http, page)
    second = await sign_in(http, page)
    assert first.status_code == 303
    assert second.status_code == 400
    assert "This sign-in page has expired" in second.text


async def test_a_live_session_is_reused_without_a_password_until_prompt_login(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    await make_user()
    client = await web_client(make_client)
    await sign_in(http, await http.get("/authorize", params=authorize_params(client, pkce())))
    reused = await http.get("/authorize", params=authorize_params(client, pkce()))
    assert "code" in answer(reused)  # no page at all
    again = await http.get("/authorize", params=authorize_params(client, pkce(), prompt="login"))
    assert again.status_code == 200
    assert 'name="password"' in again.text
    silent = await http.get("/authorize", params=authorize_params(client, pkce(), prompt="none"))
    assert "code" in answer(silent)


async def test_each_sign_in_gets_a_new_session_and_ends_the_browsers_previous_one(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    """No session fixation: a cookie value known before the sign-in is worthless after it."""
    await make_user("alice")
    await make_user("bob")
    client = await web_client(make_client)
    first = await sign_in(
        http, await http.get("/authorize", params=authorize_params(client, pkce()))
    )
    old = session_cookie_header(first).split(";")[0]
    page = await http.get("/authorize", params=authorize_params(client, pkce(), prompt="login"))
    second = await sign_in(http, page, "bob")
    assert session_cookie_header(second).split(";")[0] != old
    async with services.db.read() as conn:
        rows = (await conn.execute(select(login_sessions.c.ended_reason))).scalars().all()
    assert sorted(rows, key=str) == sorted([None, "replaced"], key=str)


async def test_a_sign_in_that_overlaps_a_password_change_starts_no_session(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, make_user: MakeUser
) -> None:
    """Security review, finding 1, on the sign-in page: the session is written only while the
    user still holds the password that was checked."""
    await make_user()
    page = await sign_in_page(http, make_client)
    real = services.passwords

    async def set_password() -> None:
        await admin.set_password(
            services.db, real, "alice", "a brand new passphrase", datetime.now(UTC)
        )

    services.passwords = ChangeDuringCheck(real, change_once(set_password))  # type: ignore[assignment]
    response = await sign_in(http, page)
    services.passwords = real
    assert response.status_code == 400
    assert "Wrong username or password" in response.text
    assert (await row_counts(services))["login_sessions"] == 0


async def test_a_missing_password_is_answered_like_a_wrong_one_without_a_check(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    page = await sign_in_page(http, make_client)
    response = await submit(http, page, username="alice")
    assert response.status_code == 400
    assert "Wrong username or password" in response.text


async def test_a_body_that_is_not_a_form_gets_the_error_page(http: httpx.AsyncClient) -> None:
    response = await http.post("/authorize/sign-in", json={"username": "alice"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-frame-options"] == "DENY"
