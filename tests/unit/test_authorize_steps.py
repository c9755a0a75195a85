"""What comes next at /authorize (sign in, consent, code), prompt=login and prompt=none, and the
consent remembered per user and client."""

from __future__ import annotations

import pytest

from authserver.authorize.request import AuthorizationError, AuthorizationRequest, Prompt
from authserver.authorize.steps import (
    SessionState,
    consent_needed,
    next_step,
    widened_consent,
)


def request(prompt: Prompt | None = None) -> AuthorizationRequest:
    return AuthorizationRequest(
        "app", "https://app.example/cb", True, "read", "s", "c" * 43, prompt
    )


@pytest.mark.parametrize(
    ("prompt", "session", "consent", "step"),
    [
        (None, "none", False, "sign_in"),
        (None, "none", True, "sign_in"),
        (None, "live", False, "issue_code"),
        (None, "live", True, "consent"),
        (None, "fresh", True, "consent"),
        ("login", "live", False, "sign_in"),
        ("login", "fresh", False, "issue_code"),
        ("login", "fresh", True, "consent"),
        ("none", "live", False, "issue_code"),
    ],
)
def test_the_person_signs_in_then_consents_then_the_app_gets_a_code(
    prompt: Prompt | None, session: SessionState, consent: bool, step: str
) -> None:
    assert next_step(request(prompt), session=session, consent_needed=consent) == step


@pytest.mark.parametrize(
    ("session", "consent", "error"),
    [
        ("none", False, "login_required"),
        ("none", True, "login_required"),
        ("live", True, "consent_required"),
    ],
)
def test_prompt_none_turns_every_page_into_an_error_for_the_app(
    session: SessionState, consent: bool, error: str
) -> None:
    result = next_step(request("none"), session=session, consent_needed=consent)
    assert result == AuthorizationError(error, result.description, "https://app.example/cb", "s")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("asks", "remembered", "scope", "needed"),
    [
        (False, None, "read write", False),
        (True, None, "", True),
        (True, None, "read", True),
        (True, "read write", "read", False),
        (True, "read write", "write read", False),
        (True, "read", "read write", True),
        (True, "", "", False),
    ],
)
def test_consent_is_asked_again_only_for_a_wider_request(
    asks: bool, remembered: str | None, scope: str, needed: bool
) -> None:
    assert consent_needed(asks, remembered, scope) is needed


def test_an_approval_widens_what_is_remembered() -> None:
    assert widened_consent(None, "read") == "read"
    assert widened_consent("read", "write read") == "read write"
    assert widened_consent("", "") == ""
