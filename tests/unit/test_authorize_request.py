"""GET /authorize's query: which errors are pages, which go back to the app, and what a valid
request becomes (RFC 6749 §4.1.1, §4.1.2.1, RFC 7636 §4.4.1)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authserver.authorize.request import (
    AuthorizationError,
    AuthorizationRequest,
    requested_client_id,
    validate_authorization_request,
)

CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # RFC 7636 Appendix B


@dataclass(frozen=True)
class FakeClient:
    client_id: str = "app"
    grant_types: frozenset[str] = frozenset({"authorization_code", "refresh_token"})
    redirect_uris: tuple[str, ...] = ("https://app.example/cb",)


ONE_URI = FakeClient()
TWO_URIS = FakeClient(redirect_uris=("https://app.example/cb", "http://127.0.0.1/native"))
ALLOWED = ("profile:read", "orders")


def query(**overrides: str | None) -> list[tuple[str, str]]:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": "app",
        "redirect_uri": "https://app.example/cb",
        "scope": "profile:read",
        "state": "s-123",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return [(name, value) for name, value in params.items() if value is not None]


def validate(
    pairs: list[tuple[str, str]], client: FakeClient | None = ONE_URI
) -> AuthorizationRequest | AuthorizationError:
    return validate_authorization_request(pairs, client, ALLOWED)


def test_a_valid_request_is_bound_to_everything_the_code_needs() -> None:
    assert validate(query()) == AuthorizationRequest(
        client_id="app",
        redirect_uri="https://app.example/cb",
        redirect_uri_sent=True,
        scope="profile:read",
        state="s-123",
        code_challenge=CHALLENGE,
        prompt=None,
    )


def test_omitted_redirect_uri_and_scope_mean_the_only_uri_and_every_allowed_scope() -> None:
    result = validate(query(redirect_uri=None, scope=None, state=None))
    assert isinstance(result, AuthorizationRequest)
    assert (result.redirect_uri, result.redirect_uri_sent) == ("https://app.example/cb", False)
    assert (result.scope, result.state) == ("profile:read orders", None)


def test_a_loopback_request_keeps_the_port_the_app_listens_on() -> None:
    result = validate(query(redirect_uri="http://127.0.0.1:51004/native"), TWO_URIS)
    assert isinstance(result, AuthorizationRequest)
    assert result.redirect_uri == "http://127.0.0.1:51004/native"


@pytest.mark.parametrize(("value", "prompt"), [("login", "login"), ("none", "none")])
def test_prompt_login_and_none_are_understood(value: str, prompt: str) -> None:
    result = validate(query(prompt=value))
    assert isinstance(result, AuthorizationRequest)
    assert result.prompt == prompt


def test_blank_parameters_count_as_omitted() -> None:
    result = validate([*query(redirect_uri=None), ("redirect_uri", ""), ("prompt", "")])
    assert isinstance(result, AuthorizationRequest)
    assert result.redirect_uri_sent is False
    assert result.prompt is None


def test_unknown_parameters_are_ignored_even_when_repeated() -> None:
    assert isinstance(validate([*query(), ("nonce", "a"), ("nonce", "b")]), AuthorizationRequest)


@pytest.mark.parametrize(
    ("pairs", "client", "error"),
    [
        (query(client_id=None), ONE_URI, "invalid_request"),
        ([*query(), ("client_id", "app")], ONE_URI, "invalid_request"),
        (query(client_id="nobody"), None, "invalid_client"),
        (query(client_id="x" * 300), ONE_URI, "invalid_client"),
        (query(client_id="app\x00"), ONE_URI, "invalid_client"),
        (query(redirect_uri="https://evil.example/cb"), ONE_URI, "invalid_request"),
        (query(redirect_uri="https://app.example/cb/../evil"), ONE_URI, "invalid_request"),
        (query(redirect_uri="https://APP.example/cb"), ONE_URI, "invalid_request"),
        (query(redirect_uri="https://app.example/cb#x"), ONE_URI, "invalid_request"),
        (
            query(redirect_uri="https://app.example/cb?next=https://evil"),
            ONE_URI,
            "invalid_request",
        ),
        (query(redirect_uri="https://app.example/cb\n"), ONE_URI, "invalid_request"),
        (query(redirect_uri="https://app.example/" + "a" * 5000), ONE_URI, "invalid_request"),
        ([*query(), ("redirect_uri", "https://evil.example/")], ONE_URI, "invalid_request"),
        ([*query(), ("redirect_uri", "https://app.example/cb")], ONE_URI, "invalid_request"),
        (query(redirect_uri=None), TWO_URIS, "invalid_request"),
        (query(redirect_uri=None), FakeClient(redirect_uris=()), "invalid_request"),
        (
            query(response_type="token", redirect_uri="https://evil.example"),
            ONE_URI,
            "invalid_request",
        ),
    ],
)
def test_until_client_and_redirect_uri_are_trusted_errors_are_pages(
    pairs: list[tuple[str, str]], client: FakeClient | None, error: str
) -> None:
    result = validate(pairs, client)
    assert isinstance(result, AuthorizationError)
    assert result.shown_as_page
    assert (result.error, result.redirect_uri, result.state) == (error, None, None)


def test_another_clients_record_is_not_trusted_for_this_client_id() -> None:
    result = validate(query(client_id="other"), ONE_URI)
    assert isinstance(result, AuthorizationError)
    assert (result.error, result.shown_as_page) == ("invalid_client", True)


@pytest.mark.parametrize(
    ("overrides", "extra", "error"),
    [
        ({"response_type": None}, [], "invalid_request"),
        ({"response_type": "token"}, [], "unsupported_response_type"),
        ({"response_type": "code id_token"}, [], "unsupported_response_type"),
        ({"code_challenge": None}, [], "invalid_request"),
        ({"code_challenge_method": None}, [], "invalid_request"),
        ({"code_challenge_method": "plain"}, [], "invalid_request"),
        ({"code_challenge_method": "s256"}, [], "invalid_request"),
        ({"code_challenge": "a" * 42}, [], "invalid_request"),
        ({"code_challenge": "a" * 129}, [], "invalid_request"),
        ({"code_challenge": "a" * 42 + "+"}, [], "invalid_request"),
        ({"code_challenge": "a" * 42 + "é"}, [], "invalid_request"),
        ({"code_challenge": "a" * 42 + "٣"}, [], "invalid_request"),
        ({"prompt": "consent"}, [], "invalid_request"),
        ({"prompt": "none login"}, [], "invalid_request"),
        ({"scope": "admin"}, [], "invalid_scope"),
        ({"scope": "profile:read  orders"}, [], "invalid_scope"),
        ({"scope": 'a"b'}, [], "invalid_scope"),
        ({"scope": "x" * 3000}, [], "invalid_request"),
        ({}, [("scope", "orders")], "invalid_request"),
        ({}, [("code_challenge", CHALLENGE)], "invalid_request"),
        ({}, [("response_type", "code")], "invalid_request"),
    ],
)
def test_after_that_errors_go_back_to_the_app_with_its_state(
    overrides: dict[str, str | None], extra: list[tuple[str, str]], error: str
) -> None:
    result = validate([*query(**overrides), *extra])
    assert isinstance(result, AuthorizationError)
    assert not result.shown_as_page
    assert (result.error, result.redirect_uri, result.state) == (
        error,
        "https://app.example/cb",
        "s-123",
    )


def test_a_client_without_the_grant_is_told_so_at_its_redirect_uri() -> None:
    client = FakeClient(grant_types=frozenset({"password"}))
    result = validate(query(), client)
    assert isinstance(result, AuthorizationError)
    assert (result.error, result.redirect_uri) == ("unauthorized_client", "https://app.example/cb")


@pytest.mark.parametrize("pairs", [[*query(), ("state", "other")], query(state="a\x00b")])
def test_a_state_that_cannot_be_echoed_faithfully_is_left_out_of_the_error(
    pairs: list[tuple[str, str]],
) -> None:
    result = validate(pairs)
    assert isinstance(result, AuthorizationError)
    assert (result.error, result.redirect_uri, result.state) == (
        "invalid_request",
        "https://app.example/cb",
        None,
    )


HOSTILE = '<script>alert("x")</script>'


@pytest.mark.parametrize("field", ["client_id", "redirect_uri", "scope", "state", "prompt"])
def test_descriptions_never_echo_the_request(field: str) -> None:
    result = validate(query(**{field: HOSTILE}))
    if isinstance(result, AuthorizationError):
        assert HOSTILE not in result.description
        assert "<" not in result.description
    else:  # a hostile state is a valid state: it is only ever echoed URL-encoded
        assert field == "state"


def test_the_client_id_to_look_up_comes_out_before_validation() -> None:
    assert requested_client_id(query()) == "app"
    missing = requested_client_id(query(client_id=None))
    assert isinstance(missing, AuthorizationError)
    assert missing.shown_as_page


@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "client_id",
                    "redirect_uri",
                    "scope",
                    "state",
                    "prompt",
                    "response_type",
                    "code_challenge",
                    "code_challenge_method",
                    "x",
                ]
            ),
            st.text(max_size=60),
        ),
        max_size=12,
    )
)
def test_any_query_gives_a_request_or_an_error_never_an_exception(
    pairs: list[tuple[str, str]],
) -> None:
    result = validate([*query(), *pairs])
    assert isinstance(result, AuthorizationRequest | AuthorizationError)
    if isinstance(result, AuthorizationError) and not result.shown_as_page:
        assert result.redirect_uri == "https://app.example/cb"


def test_a_query_string_round_trip_gives_the_same_answer() -> None:
    raw = urlencode(query(prompt="login"))
    assert validate(parse_qsl(raw, keep_blank_values=True)) == validate(query(prompt="login"))
