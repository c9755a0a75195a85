"""examples/webapp.py, the app users copy: PKCE S256 through /authorize, `iss` checked, tokens
kept server-side behind an opaque cookie, one refresh at a time, revocation on sign-out.

Here the token endpoint, /revoke and the resource server are answered by a mock transport that
checks what the app sends; tests/browser/test_sign_in_end_to_end.py runs the app against the
real authserver and resource server in a real browser.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from urllib.parse import parse_qsl, urlsplit

import httpx
import httpx2
import pytest

from authserver.authorize.pkce import is_valid_pkce_value, s256_challenge
from tests.e2e.conftest import free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ISSUER = "https://as.example"
REDIRECT_URI = "https://webapp.example/callback"
API = "https://api.example/profile"


@pytest.fixture
def webapp(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("WEBAPP_CLIENT_ID", "webapp")
    spec = importlib.util.spec_from_file_location("webapp_example", EXAMPLES / "webapp.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class FakeServers:
    """authserver's /token and /revoke, and the resource server, as the app would meet them."""

    def __init__(self, first_expires_in: int = 900) -> None:
        self.challenge: str | None = None
        self.token_requests: list[dict[str, str]] = []
        self.revoked: list[dict[str, str]] = []
        self.api_bearers: list[str] = []
        self.first_expires_in = first_expires_in

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.host == "api.example":
            self.api_bearers.append(request.headers["authorization"])
            return httpx2.Response(200, json={"sub": "user-1", "scope": "profile:read"})
        form = dict(parse_qsl(request.content.decode()))
        if request.url.path == "/revoke":
            self.revoked.append(form)
            return httpx2.Response(200, json={})
        assert request.url.path == "/token"
        self.token_requests.append(form)
        generation = len(self.token_requests)
        if form["grant_type"] == "authorization_code":
            assert s256_challenge(form["code_verifier"]) == self.challenge
            expires_in = self.first_expires_in
        else:
            assert form["refresh_token"] == f"rt-{generation - 1}"
            expires_in = 900
        return httpx2.Response(
            200,
            json={
                "access_token": f"at-{generation}",
                "refresh_token": f"rt-{generation}",
                "token_type": "Bearer",
                "expires_in": expires_in,
                "scope": "profile:read",
            },
        )


def client_for(webapp: ModuleType, servers: FakeServers) -> httpx.AsyncClient:
    config = webapp.Config(
        client_id="webapp",
        client_secret=None,
        issuer=ISSUER,
        redirect_uri=REDIRECT_URI,
        scope="profile:read",
        resource_url=API,
    )
    app = webapp.create_app(config, transport=httpx2.MockTransport(servers))
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="https://webapp.example")


async def sign_in(http: httpx.AsyncClient, servers: FakeServers) -> dict[str, str]:
    """The whole round trip; returns the /authorize query and the pre-sign-in cookie as `_id`."""
    login = await http.get("/login")
    assert login.status_code == 302
    query = dict(parse_qsl(urlsplit(login.headers["location"]).query))
    query["_id"] = http.cookies["webapp_session"]
    servers.challenge = query["code_challenge"]
    callback = await http.get(
        "/callback", params={"code": "c0de", "state": query["state"], "iss": ISSUER}
    )
    assert callback.status_code == 303
    return query


async def test_sign_in_sends_the_user_to_authorize_with_pkce_s256(webapp: ModuleType) -> None:
    async with client_for(webapp, FakeServers()) as http:
        response = await http.get("/login")
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{ISSUER}/authorize"
    query = dict(parse_qsl(location.query))
    assert query["response_type"] == "code"
    assert query["client_id"] == "webapp"
    assert query["redirect_uri"] == REDIRECT_URI
    assert query["scope"] == "profile:read"
    assert query["code_challenge_method"] == "S256"
    assert is_valid_pkce_value(query["code_challenge"])
    assert len(query["state"]) >= 20
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("webapp_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" in cookie  # the redirect URI is https


async def test_the_code_is_swapped_with_the_verifier_and_the_tokens_stay_on_the_server(
    webapp: ModuleType,
) -> None:
    servers = FakeServers()
    async with client_for(webapp, servers) as http:
        query = await sign_in(http, servers)
        before, after = query["_id"], http.cookies["webapp_session"]
        profile = await http.get("/profile")
    swap = servers.token_requests[0]
    assert swap["grant_type"] == "authorization_code"
    assert swap["code"] == "c0de"
    assert swap["redirect_uri"] == query["redirect_uri"]
    assert swap["client_id"] == "webapp"  # a public client: no secret
    assert after != before  # a new session id once signed in
    assert "at-1" not in after
    assert "rt-1" not in after
    assert profile.status_code == 200
    assert "user-1" in profile.text
    assert "rt-1" not in profile.text
    assert servers.api_bearers == ["Bearer at-1"]


async def test_an_expiring_access_token_is_refreshed_once_for_concurrent_requests(
    webapp: ModuleType,
) -> None:
    servers = FakeServers(first_expires_in=10)  # within the app's 30 s leeway
    async with client_for(webapp, servers) as http:
        await sign_in(http, servers)
        answers = await asyncio.gather(http.get("/profile"), http.get("/profile"))
    assert [answer.status_code for answer in answers] == [200, 200]
    grants = [request["grant_type"] for request in servers.token_requests]
    assert grants == ["authorization_code", "refresh_token"]
    assert servers.api_bearers == ["Bearer at-2", "Bearer at-2"]


async def test_signing_out_revokes_the_refresh_token_and_forgets_the_session(
    webapp: ModuleType,
) -> None:
    servers = FakeServers()
    async with client_for(webapp, servers) as http:
        await sign_in(http, servers)
        response = await http.post("/logout")
        home = await http.get("/")
    assert response.status_code == 303
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert servers.revoked == [
        {"token": "rt-1", "token_type_hint": "refresh_token", "client_id": "webapp"}
    ]
    assert "Sign in" in home.text


@pytest.mark.parametrize(
    ("params", "shown"),
    [
        ({"code": "c", "iss": "https://evil.example"}, "did not come from our server"),
        ({"code": "c"}, "did not come from our server"),
        ({"error": "access_denied", "iss": ISSUER}, "You declined."),
        ({"code": "c", "iss": ISSUER, "state": "forged"}, "Please try again."),
    ],
)
async def test_a_bad_or_refused_answer_swaps_nothing(
    webapp: ModuleType, params: dict[str, str], shown: str
) -> None:
    servers = FakeServers()
    async with client_for(webapp, servers) as http:
        login = await http.get("/login")
        state = dict(parse_qsl(urlsplit(login.headers["location"]).query))["state"]
        response = await http.get("/callback", params={"state": state, **params})
    assert response.status_code == 400
    assert shown in response.text
    assert servers.token_requests == []


def test_without_a_client_id_it_stops_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEBAPP_CLIENT_ID", raising=False)
    spec = importlib.util.spec_from_file_location("webapp_no_id", EXAMPLES / "webapp.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    with pytest.raises(SystemExit, match="WEBAPP_CLIENT_ID is not set"):
        spec.loader.exec_module(module)


@pytest.fixture
def uvicorn_webapp() -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "WEBAPP_CLIENT_ID": "webapp"}
    command = [sys.executable, "-m", "uvicorn", "--app-dir", str(EXAMPLES), "webapp:app"]
    process = subprocess.Popen([*command, "--port", str(port), "--log-level", "warning"], env=env)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.e2e
def test_it_starts_with_uvicorn_as_the_readme_says(uvicorn_webapp: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            response = httpx.get(uvicorn_webapp + "/")
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert response.status_code == 200
    assert "Sign in" in response.text
    assert json.dumps("webapp") not in response.text  # nothing about the client leaks


def test_the_example_only_needs_the_documented_variables() -> None:
    source = (EXAMPLES / "webapp.py").read_text()
    names = sorted(set(re.findall(r'"(WEBAPP_[A-Z_]+)"', source)))
    documented = [name for name in names if f"| {name} |" in source]
    assert names == documented
