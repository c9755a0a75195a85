"""The redirect back to the app: state and iss on every answer, the registered query kept
(RFC 6749 §3.1.2, §4.1.2; RFC 9207), and the CSP source the pages need for it."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from authserver.authorize.request import AuthorizationError
from authserver.authorize.response import (
    code_location,
    error_location,
    form_action_source,
    redirect_location,
)

ISSUER = "https://as.example"


def test_a_code_answer_carries_code_state_and_iss() -> None:
    location = code_location("https://app.example/cb", "c0de", state="s 1&x", issuer=ISSUER)
    parts = urlsplit(location)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "app.example", "/cb")
    assert parse_qsl(parts.query) == [("code", "c0de"), ("state", "s 1&x"), ("iss", ISSUER)]


def test_the_registered_query_is_kept_and_the_answer_appended() -> None:
    location = code_location(
        "https://app.example/cb?tenant=a&x=%20", "c", state=None, issuer=ISSUER
    )
    assert location.startswith("https://app.example/cb?tenant=a&x=%20&code=c")
    assert parse_qsl(urlsplit(location).query) == [
        ("tenant", "a"),
        ("x", " "),
        ("code", "c"),
        ("iss", ISSUER),
    ]


@pytest.mark.parametrize("uri", ["https://app.example/cb?", "https://app.example/cb?a=1&"])
def test_a_trailing_separator_is_not_doubled(uri: str) -> None:
    assert "?&" not in redirect_location(uri, {"code": "c"}, state=None, issuer=ISSUER)
    assert "&&" not in redirect_location(uri, {"code": "c"}, state=None, issuer=ISSUER)


def test_private_use_and_loopback_uris_get_the_same_treatment() -> None:
    assert code_location("com.example.app:/cb", "c", state="s", issuer=ISSUER) == (
        "com.example.app:/cb?code=c&state=s&iss=https%3A%2F%2Fas.example"
    )
    assert code_location("http://127.0.0.1:5000/cb", "c", state=None, issuer=ISSUER).startswith(
        "http://127.0.0.1:5000/cb?code=c&iss="
    )


def test_an_error_answer_carries_error_description_state_and_iss() -> None:
    error = AuthorizationError("access_denied", "The user said no.", "https://app.example/cb", "s")
    assert parse_qsl(urlsplit(error_location(error, issuer=ISSUER)).query) == [
        ("error", "access_denied"),
        ("error_description", "The user said no."),
        ("state", "s"),
        ("iss", ISSUER),
    ]


def test_a_page_error_cannot_be_turned_into_a_redirect() -> None:
    with pytest.raises(ValueError, match="page"):
        error_location(AuthorizationError("invalid_client", "unknown"), issuer=ISSUER)


@pytest.mark.parametrize(
    ("uri", "source"),
    [
        ("https://app.example/cb?x=1", "https://app.example"),
        ("https://app.example:8443/cb", "https://app.example:8443"),
        ("http://127.0.0.1:51004/native", "http://127.0.0.1:51004"),
        ("http://[::1]:61023/native", "http:"),
        ("com.example.app:/cb", "com.example.app:"),
    ],
)
def test_the_form_action_source_allows_exactly_the_apps_origin(uri: str, source: str) -> None:
    assert form_action_source(uri) == source
