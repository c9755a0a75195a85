"""Consent wording an end user understands, and the forms' CSRF tokens."""

from __future__ import annotations

import pytest

from authserver.authorize.csrf import csrf_token, csrf_token_matches, new_browser_secret
from authserver.authorize.wording import ScopeWording, describe_scope, describe_scopes


@pytest.mark.parametrize(
    ("scope", "text"),
    [
        ("openid", "Know who you are on this server (your user ID)"),
        ("email", "See your email address"),
        ("profile:read", "See your profile"),
        ("read:orders", "See your orders"),
        ("orders.write", "Change your orders"),
        ("user_photos:delete", "Delete your user photos"),
        ("billing-accounts:manage", "Manage your billing accounts"),
        ("telemetry", "Use the permission"),
        ("a:b", "Use the permission"),
    ],
)
def test_scopes_are_described_in_plain_words(scope: str, text: str) -> None:
    assert describe_scope(scope) == text


def test_the_operators_description_wins_and_order_is_kept() -> None:
    described = describe_scopes(["orders", "profile:read"], {"orders": "See your past orders"})
    assert described == [
        ScopeWording("orders", "See your past orders"),
        ScopeWording("profile:read", "See your profile"),
    ]


def test_a_csrf_token_works_for_its_browser_form_and_request_only() -> None:
    mine, theirs = new_browser_secret(), new_browser_secret()
    token = csrf_token(mine, "sign-in", "request-1")
    assert csrf_token_matches(mine, "sign-in", "request-1", token)
    assert not csrf_token_matches(theirs, "sign-in", "request-1", token)  # login CSRF
    assert not csrf_token_matches(mine, "consent", "request-1", token)
    assert not csrf_token_matches(mine, "sign-in", "request-2", token)
    assert not csrf_token_matches(mine, "sign-in", "request-1", token[:-1])
    assert not csrf_token_matches(mine, "sign-in", "request-1", None)
    assert not csrf_token_matches(None, "sign-in", "request-1", token)
    assert not csrf_token_matches(mine, "sign-in", "request-1", "\udcff")


def test_browser_secrets_are_256_bit_and_fresh() -> None:
    secrets = {new_browser_secret() for _ in range(100)}
    assert len(secrets) == 100
    assert all(len(secret) == 43 for secret in secrets)
