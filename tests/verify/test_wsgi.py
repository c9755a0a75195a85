"""The WSGI integration and examples/wsgi_resource_server.py over HTTP (httpx's WSGI transport):
the same answers as the Starlette integration, through verify_sync."""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

import httpx
import pytest
from joserfc.jwk import RSAKey

from authserver.verify.wsgi import BearerAuth, access_token, requires_scope
from tests.verify.helpers import (
    JWKSServer,
    ManualClock,
    assert_challenge,
    bearer,
    claims,
    header,
    sign_rs256,
    unsigned,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def text(start_response: StartResponse, value: str) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [value.encode()]


@requires_scope("orders", "profile:read")
def orders(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    return text(start_response, access_token(environ).client_id)


def routes(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """/orders needs two scopes; /health is exempt; anything else says who is calling."""
    if environ["PATH_INFO"] == "/orders":
        return orders(environ, start_response)
    if environ["PATH_INFO"] == "/health":
        return text(start_response, "ok")
    claims = environ.get("authserver.access_token")
    return text(start_response, "anonymous" if claims is None else claims.sub)


def client(jwks_server: JWKSServer, clock: ManualClock, **options: Any) -> httpx.Client:
    app = BearerAuth(routes, jwks_server.verifier(clock), realm="example", **options)
    return httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://api.test")


@pytest.fixture
def http(jwks_server: JWKSServer, manual_clock: ManualClock) -> Iterator[httpx.Client]:
    with client(jwks_server, manual_clock, exempt_paths=["/health"]) as opened:
        yield opened


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    for name in ("wsgi_resource_server", "resource_server"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return importlib.import_module("wsgi_resource_server")


def test_a_valid_token_with_every_scope_gets_through_with_its_claims(
    http: httpx.Client, issuer_key: RSAKey
) -> None:
    token = sign_rs256(issuer_key, header(issuer_key), claims())
    response = http.get("/orders", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.text == "WtP3XUucKxbRVmCJ9EyBaw"
    assert http.get("/", headers=bearer(token)).text == "024da017-7e9c-432b-a8dc-5e1727c1af8c"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic YWxpY2U6c2VjcmV0"}, {"Authorization": "Bearer "}],
    ids=["no header", "basic", "bearer without token"],
)
def test_a_missing_token_gets_401_invalid_token(
    http: httpx.Client, headers: dict[str, str]
) -> None:
    assert_challenge(http.get("/orders", headers=headers), 401, "invalid_token")


def test_bad_tokens_get_401_with_a_reason_but_never_the_token(
    http: httpx.Client,
    issuer_key: RSAKey,
    foreign_key: RSAKey,
    manual_clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="authserver.verify")
    cases = [
        sign_rs256(issuer_key, header(issuer_key), claims(exp=manual_clock.now - 60)),
        unsigned(header(issuer_key, alg="none"), claims()),
        sign_rs256(foreign_key, header(issuer_key), claims()),
        "not-a-jwt",
    ]
    descriptions = set()
    for token in cases:
        response = http.get("/", headers=bearer(token))
        descriptions.add(assert_challenge(response, 401, "invalid_token"))
        assert token not in response.text
        assert token not in response.headers["www-authenticate"]
        assert token not in caplog.text
    assert len(descriptions) == 4  # the description says which check failed
    assert caplog.text.count("bearer token refused: expired") == 1  # the reason is logged


def test_a_token_without_every_scope_gets_403_insufficient_scope(
    http: httpx.Client, issuer_key: RSAKey
) -> None:
    token = sign_rs256(issuer_key, header(issuer_key), claims(scope="profile:read"))
    response = http.get("/orders", headers=bearer(token))
    assert_challenge(response, 403, "insufficient_scope", scope="orders profile:read")
    assert response.json()["scope"] == "orders profile:read"


def test_exempt_paths_need_no_token(http: httpx.Client) -> None:
    assert http.get("/health").text == "ok"


def test_unavailable_keys_get_503_not_401(
    http: httpx.Client, jwks_server: JWKSServer, issuer_key: RSAKey
) -> None:
    jwks_server.down = True
    response = http.get("/", headers=bearer(sign_rs256(issuer_key, header(issuer_key), claims())))
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert int(response.headers["retry-after"]) > 0


def test_optional_authentication_lets_anonymous_requests_through_but_not_bad_tokens(
    jwks_server: JWKSServer, manual_clock: ManualClock, issuer_key: RSAKey
) -> None:
    with client(jwks_server, manual_clock, required=False) as anonymous:
        assert anonymous.get("/").text == "anonymous"
        good = sign_rs256(issuer_key, header(issuer_key), claims())
        assert anonymous.get("/", headers=bearer(good)).text.startswith("024da017")
        assert_challenge(anonymous.get("/", headers=bearer("bad")), 401, "invalid_token")
        assert_challenge(anonymous.get("/orders"), 401, "invalid_token")  # requires_scope


def test_the_wsgi_example_serves_profile_to_a_token_with_profile_read_only(
    example: ModuleType, jwks_server: JWKSServer, manual_clock: ManualClock, issuer_key: RSAKey
) -> None:
    app = example.make_app(jwks_server.verifier(manual_clock))
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://api.test") as api:
        good = sign_rs256(issuer_key, header(issuer_key), claims())
        response = api.get("/profile", headers=bearer(good))
        assert response.status_code == 200, response.text
        assert response.json() == {
            "sub": "024da017-7e9c-432b-a8dc-5e1727c1af8c",
            "client_id": "WtP3XUucKxbRVmCJ9EyBaw",
            "scope": "profile:read orders",
        }
        orders_only = sign_rs256(issuer_key, header(issuer_key), claims(scope="orders"))
        forbidden = api.get("/profile", headers=bearer(orders_only))
        assert_challenge(forbidden, 403, "insufficient_scope", scope="profile:read")
        assert_challenge(api.get("/profile"), 401, "invalid_token")
        assert api.get("/nowhere", headers=bearer(good)).status_code == 404
