"""GET /authorize (SPEC "GET /authorize"), its request checks over HTTP on both backends: an
error is a page (400) until the client and its redirect URI are trusted, a 303 with `state` and
`iss` after; nothing is stored for a refused request; request input is never reflected raw."""

from __future__ import annotations

import httpx
import pytest

from authserver.services import Services
from tests.conftest import ISSUER
from tests.helpers import insert_client
from tests.sign_in import (
    REDIRECT_URI,
    MakeClient,
    MakeUser,
    answer,
    authorize_params,
    hidden_inputs,
    pkce,
    row_counts,
    web_client,
)

NOTHING = {
    "login_sessions": 0,
    "authorization_requests": 0,
    "authorization_codes": 0,
    "consents": 0,
}


def assert_page_headers(response: httpx.Response) -> None:
    """SPEC "Every HTML page"."""
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def assert_error_page(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert_page_headers(response)
    assert "This sign-in link is not valid" in response.text


async def test_the_sign_in_page_is_served_with_the_security_headers_and_the_apps_origin(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await web_client(make_client)
    response = await http.get("/authorize", params=authorize_params(client, pkce()))
    assert response.status_code == 200, response.text
    assert_page_headers(response)
    policy = response.headers["content-security-policy"]
    assert "form-action 'self' https://app.example;" in policy  # the POST's 303 may go there
    assert "Example App" in response.text
    assert set(hidden_inputs(response)) == {"authorization_request", "csrf_token"}
    assert '<form method="post" action="/authorize/sign-in">' in response.text


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"client_id": "no-such-client"},
        {"client_id": "<script>alert(1)</script>"},
        {"client_id": "x" * 300},
        {"client_id": "a\x00b"},
    ],
    ids=["no_client_id", "unknown", "html", "long", "nul"],
)
async def test_an_unknown_client_gets_the_error_page_never_a_redirect(
    http: httpx.AsyncClient, services: Services, params: dict[str, str]
) -> None:
    query = {**params, "redirect_uri": "https://evil.example/", "response_type": "code"}
    response = await http.get("/authorize", params=query)
    assert_error_page(response)
    assert "<script>" not in response.text
    assert "evil.example" not in response.text
    assert await row_counts(services) == NOTHING


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/callback",  # open redirect
        "https://app.example/callback/",  # not character for character
        "https://APP.example/callback",  # mixed-case host
        "https://app.example/callback#x",  # a fragment
        "https://user@app.example/callback",  # user-info
        "https://app.example/callback/../other",  # traversal
        "https://app.example/callback?x=1",  # an extra query
        "https://app.example.evil.example/callback",
        "//evil.example/callback",
        "javascript:alert(1)//",
        "x" * 2100,
    ],
)
async def test_a_redirect_uri_that_is_not_registered_gets_the_error_page(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient, redirect_uri: str
) -> None:
    client = await web_client(make_client)
    params = authorize_params(client, pkce(), redirect_uri=redirect_uri)
    response = await http.get("/authorize", params=params)
    assert_error_page(response)
    assert "evil.example" not in response.text
    assert await row_counts(services) == NOTHING


async def test_a_repeated_redirect_uri_or_client_id_gets_the_error_page(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await web_client(make_client)
    base = authorize_params(client, pkce())
    for name in ("redirect_uri", "client_id"):
        query = httpx.QueryParams([*base.items(), (name, base[name])])
        assert_error_page(await http.get("/authorize", params=query))


async def test_the_redirect_uri_may_be_left_out_only_when_the_client_has_exactly_one(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    single = await web_client(make_client)
    response = await http.get(
        "/authorize", params=authorize_params(single, pkce(), redirect_uri=None)
    )
    assert response.status_code == 200, response.text
    two = await web_client(make_client, redirect_uris=(REDIRECT_URI, "https://app.example/other"))
    response = await http.get("/authorize", params=authorize_params(two, pkce(), redirect_uri=None))
    assert_error_page(response)


async def test_a_loopback_redirect_uri_matches_any_port_and_the_answer_goes_to_that_port(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    """RFC 8252 §7.3: a native app listens on whatever port it got."""
    client = await web_client(make_client, redirect_uris=("http://127.0.0.1/callback",))
    params = authorize_params(
        client, pkce(), redirect_uri="http://127.0.0.1:49152/callback", code_challenge="short"
    )
    response = await http.get("/authorize", params=params)
    assert response.status_code == 303
    assert response.headers["location"].startswith("http://127.0.0.1:49152/callback?error=")
    other_path = {**params, "redirect_uri": "http://127.0.0.1:49152/other"}
    assert_error_page(await http.get("/authorize", params=other_path))


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"response_type": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "a" * 42}, "invalid_request"),  # too short
        ({"code_challenge": "a" * 129}, "invalid_request"),  # too long
        ({"code_challenge": "a" * 42 + "+"}, "invalid_request"),  # not the alphabet
        ({"code_challenge": "é" * 43}, "invalid_request"),
        ({"scope": "admin"}, "invalid_scope"),
        ({"scope": "read <b>x</b>"}, "invalid_scope"),
        ({"prompt": "consent"}, "invalid_request"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"scope": "r" * 3000}, "invalid_request"),
    ],
)
async def test_after_the_redirect_uri_is_trusted_an_error_goes_back_to_the_app(
    http: httpx.AsyncClient,
    services: Services,
    make_client: MakeClient,
    change: dict[str, str | None],
    error: str,
) -> None:
    client = await web_client(make_client)
    response = await http.get("/authorize", params=authorize_params(client, pkce(), **change))
    values = answer(response)
    assert values["error"] == error
    assert values["state"] == "af0ifjsldkj"
    assert values["iss"] == ISSUER
    assert values["error_description"]
    assert response.headers["cache-control"] == "no-store"
    assert await row_counts(services) == NOTHING


async def test_a_repeated_parameter_is_invalid_request_and_a_repeated_state_is_not_echoed(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await web_client(make_client)
    base = authorize_params(client, pkce())
    repeated = httpx.QueryParams([*base.items(), ("scope", "read"), ("scope", "write")])
    values = answer(await http.get("/authorize", params=repeated))
    assert (values["error"], values["state"]) == ("invalid_request", "af0ifjsldkj")
    two_states = httpx.QueryParams([*base.items(), ("state", "other")])
    values = answer(await http.get("/authorize", params=two_states))
    assert values["error"] == "invalid_request"
    assert "state" not in values


async def test_a_client_without_the_grant_is_unauthorized_client(
    http: httpx.AsyncClient, services: Services
) -> None:
    client = await insert_client(
        services, secret=None, grants=("password",), redirect_uris=(REDIRECT_URI,)
    )
    values = answer(await http.get("/authorize", params=authorize_params(client, pkce())))
    assert values["error"] == "unauthorized_client"


async def test_html_in_state_and_scope_is_never_reflected_raw(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await web_client(make_client)
    hostile = '"><script>alert(1)</script>'
    response = await http.get("/authorize", params=authorize_params(client, pkce(), state=hostile))
    assert response.status_code == 200
    assert "<script>" not in response.text  # the state is not on the page at all
    params = authorize_params(client, pkce(), state=hostile, scope="<b>read</b>")
    response = await http.get("/authorize", params=params)
    values = answer(response)  # URL-encoded into the Location, as RFC 6749 Appendix B says
    assert values["state"] == hostile
    assert "<" not in response.headers["location"]
    assert response.text == ""


async def test_a_scope_left_out_is_every_allowed_scope(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    """SPEC "Details": no scope, all the client's allowed scopes."""
    from tests.sign_in import code_for, exchange

    await make_user()
    client = await web_client(make_client, scopes=("read", "write"))
    challenge = pkce()
    code = await code_for(http, client, challenge, scope=None)
    body = (await exchange(http, client, code, challenge.verifier)).json()
    assert body["scope"] == "read write"


async def test_prompt_none_without_a_session_is_login_required(
    http: httpx.AsyncClient, services: Services, make_client: MakeClient
) -> None:
    client = await web_client(make_client)
    values = answer(
        await http.get("/authorize", params=authorize_params(client, pkce(), prompt="none"))
    )
    assert values["error"] == "login_required"
    assert values["state"] == "af0ifjsldkj"
    assert await row_counts(services) == NOTHING


async def test_too_many_parameters_get_the_error_page(http: httpx.AsyncClient) -> None:
    query = "&".join(f"p{n}=x" for n in range(200))
    assert_error_page(await http.get(f"/authorize?{query}"))


async def test_the_stylesheet_is_served_with_a_long_cache_lifetime(http: httpx.AsyncClient) -> None:
    response = await http.get("/static/authserver.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert response.headers["cache-control"] == "public, max-age=86400"
    assert "body" in response.text
