"""Fuzzing sign-in through /authorize (issue 12, item 9), on SQLite and PostgreSQL: hostile
queries built around a valid authorization request, and hostile sign-in forms posted with a
real page's handle and CSRF token, so the input reaches the checks behind them.

Whatever comes in: never a 5xx or a stack trace; a page carries SPEC's security headers and no
markup from the input; a redirect goes only to the client's registered redirect URI (never an
open redirect); and a refusal changes nothing but the login counters and the audit trail (a
refused password is counted, which is the login limits' job).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from authserver.services import Services
from tests.conftest import PASSWORD, RegisteredClient
from tests.fuzz.profiles import FUZZ
from tests.fuzz.test_hostile_requests import (
    ALWAYS_ALLOWED,
    LEAK,
    LOGIN_TABLES,
    assert_safe_page,
    snapshot,
)
from tests.sign_in import (
    REDIRECT_URI,
    MakeClient,
    MakeUser,
    authorize_params,
    hidden_inputs,
    pkce,
    web_client,
)

AUTHORIZE_NAMES = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "prompt",
]
hostile_values = st.one_of(
    st.sampled_from(
        [
            "",
            "code",
            "token",
            "S256",
            "plain",
            "none",
            "login",
            "none login",
            "read",
            "read write admin",
            "<script>alert(1)</script>",
            '"><img src=x onerror=alert(1)>',
            REDIRECT_URI + "#frag",
            REDIRECT_URI + "/../evil",
            "https://user@app.example/callback",
            "https://APP.example/callback",
            "https://evil.example/callback",
            "//evil.example",
            "javascript:alert(1)",
            "http://127.0.0.1:1/callback",
            "a" * 43,
            "a" * 129,
            "é" * 43,
        ]
    ),
    st.text(max_size=60),
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=5),
    st.integers(1, 5000).map(lambda n: "x" * n),
)


@pytest.fixture
async def web_app_client(make_client: MakeClient, make_user: MakeUser) -> RegisteredClient:
    await make_user("alice")
    return await web_client(make_client)


@st.composite
def authorize_queries(draw: st.DrawFn, base: dict[str, str]) -> list[tuple[str, str]]:
    """A valid request, then each parameter kept, dropped, replaced or repeated; plus junk."""
    query: list[tuple[str, str]] = []
    for name in AUTHORIZE_NAMES:
        action = draw(st.sampled_from(["keep", "keep", "drop", "replace", "repeat"]))
        value = base.get(name)
        if action == "drop" or (value is None and action != "replace"):
            continue
        if action == "replace":
            value = draw(hostile_values)
        assert value is not None
        query.append((name, value))
        if action == "repeat":
            query.append((name, draw(hostile_values)))
    query += draw(st.lists(st.tuples(st.text(max_size=10), hostile_values), max_size=3))
    return query


def assert_answer_is_safe(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text)
    assert not LEAK.search(response.text), response.text
    if response.status_code == 303:
        location = response.headers["location"]
        parts = urlsplit(location)
        assert (parts.scheme, parts.netloc, parts.path) == ("https", "app.example", "/callback")
        assert "<" not in location
        assert '"' not in location
        assert response.headers["cache-control"] == "no-store"
        return
    assert response.headers["content-type"].startswith("text/html"), response.headers
    assert_safe_page(response)


@FUZZ
@given(data=st.data())
async def test_hostile_authorize_queries_get_a_page_or_the_registered_redirect_uri(
    http: httpx.AsyncClient,
    services: Services,
    web_app_client: RegisteredClient,
    data: st.DataObject,
) -> None:
    base = authorize_params(web_app_client, pkce())
    query = data.draw(authorize_queries(base), label="query")
    before = await snapshot(services)
    text = "&".join(f"{quote(k)}={quote(v)}" for k, v in query)
    response = await http.get(f"/authorize?{text}")
    assert_answer_is_safe(response)
    if response.status_code == 200:
        assert 'name="password"' in response.text  # no session here: the sign-in page
        return
    after = await snapshot(services)
    changed = {name for name in before if before[name] != after[name]} - ALWAYS_ALLOWED
    assert not changed, (response.status_code, response.headers.get("location"), changed)


form_names = st.one_of(
    st.sampled_from(["username", "password", "authorization_request", "csrf_token", "decision"]),
    st.text(max_size=10),
)


@FUZZ
@given(
    fields=st.dictionaries(form_names, hostile_values | st.just(PASSWORD), max_size=6),
    drop=st.sets(st.sampled_from(["authorization_request", "csrf_token"])),
    content_type=st.sampled_from(
        ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain"]
    ),
)
async def test_hostile_sign_in_forms_never_5xx_and_change_only_the_login_counters(
    http: httpx.AsyncClient,
    services: Services,
    web_app_client: RegisteredClient,
    fields: dict[str, str],
    drop: set[str],
    content_type: str,
) -> None:
    page = await http.get("/authorize", params=authorize_params(web_app_client, pkce()))
    assert page.status_code == 200, page.text
    form: dict[str, Any] = {**hidden_inputs(page), **fields}
    for name in drop:
        form.pop(name, None)
    body = "&".join(f"{quote(str(k))}={quote(str(v))}" for k, v in form.items())
    before = await snapshot(services)
    response = await http.post(
        "/authorize/sign-in", content=body.encode(), headers={"content-type": content_type}
    )
    assert_answer_is_safe(response)
    if response.status_code == 303:  # alice's right password, drawn by chance: signed in
        return
    after = await snapshot(services)
    changed = {name for name in before if before[name] != after[name]}
    assert not changed - ALWAYS_ALLOWED - LOGIN_TABLES, (response.status_code, changed)
