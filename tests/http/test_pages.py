"""The HTML pages: SPEC's security headers on every one, everything escaped, accessible forms,
and TEMPLATES_DIR replacing pages by name with the built-in ones as the fallback (issue 12)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from authserver.http.pages import PAGE_NAMES, content_security_policy, create_pages
from tests.pages.sample_app import HOSTILE_NAME, HOSTILE_SCOPE, sample_app

PAGES = [name.removesuffix(".html").replace("_", "-") for name in PAGE_NAMES]


def client(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="https://as.example")


@pytest.mark.parametrize("page", PAGES)
async def test_every_page_carries_the_security_headers(page: str) -> None:
    async with client(sample_app(redirect_sources=("https://app.example",))) as http:
        response = await http.get(f"/page/{page}")
    assert response.status_code == (400 if page == "error" else 200)
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "default-src 'none'" in policy
    assert "style-src 'self'" in policy
    assert "form-action 'self' https://app.example;" in policy
    assert "script" not in policy
    assert "unsafe" not in policy


@pytest.mark.parametrize("page", PAGES)
async def test_every_page_is_a_whole_document_with_a_language_and_no_script(page: str) -> None:
    async with client(sample_app()) as http:
        html = (await http.get(f"/page/{page}")).text
    assert html.startswith("<!doctype html>")
    assert '<html lang="en">' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert '<link rel="stylesheet" href="/static/authserver.css">' in html
    assert 'id="page-title"' in html
    assert "<script" not in html.lower()
    assert " on" not in re.sub(r">[^<]*<", "><", html).lower()  # no onload=, onclick=, ...


@pytest.mark.parametrize("page", ["sign-in", "consent"])
async def test_the_client_name_is_shown_escaped(page: str) -> None:
    async with client(sample_app()) as http:
        html = (await http.get(f"/page/{page}")).text
    assert HOSTILE_NAME not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &#34;Bob&#39;s&#34; App" in html


async def test_a_scope_is_shown_in_words_and_its_token_escaped() -> None:
    async with client(sample_app()) as http:
        html = (await http.get("/page/consent")).text
    assert HOSTILE_SCOPE not in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "See your profile" in html
    assert "Change your orders" in html


async def test_the_sign_in_form_has_labelled_inputs_and_the_hidden_fields() -> None:
    async with client(sample_app()) as http:
        html = (await http.get("/page/sign-in")).text
    assert '<form method="post" action="/submit">' in html
    for field in ("username", "password"):
        assert f'<label for="{field}">' in html
        assert f'id="{field}" name="{field}"' in html
    assert 'autocomplete="current-password"' in html
    assert '<input type="hidden" name="csrf_token" value="t0ken">' in html
    assert '<input type="hidden" name="authorization_request" value="h4ndle">' in html
    assert 'role="alert"' not in html


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ("invalid_credentials", "Wrong username or password."),
        ("locked", "Too many failed attempts for this account. Wait 15 minutes"),
    ],
)
async def test_a_failed_sign_in_says_why_in_an_alert_tied_to_the_fields(
    error: str, message: str
) -> None:
    async with client(sample_app()) as http:
        html = (await http.get(f"/page/sign-in?error={error}")).text
    assert f'<p class="alert" role="alert" id="form-error">{message}' in html
    assert html.count('aria-describedby="form-error"') == 2
    assert 'value="alice"' in html  # the username is kept, the password never is


async def test_the_consent_form_posts_allow_or_deny() -> None:
    async with client(sample_app()) as http:
        html = (await http.get("/page/consent")).text
    assert '<button type="submit" name="decision" value="allow">Allow</button>' in html
    assert 'name="decision" value="deny"' in html
    assert "https://app.example" in html


async def test_the_stylesheet_is_served() -> None:
    async with client(sample_app()) as http:
        response = await http.get("/static/authserver.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert ":focus-visible" in response.text


async def test_an_operator_template_replaces_a_page_and_the_rest_fall_back(tmp_path: Path) -> None:
    (tmp_path / "error.html").write_text(
        '{% extends "base.html" %}{% block main %}<h1 id="page-title">Acme: {{ title }}</h1>'
        "{% endblock %}"
    )
    (tmp_path / "base.html").write_text(
        '{% extends "builtin/base.html" %}{% block brand %}<header>Acme Corp</header>{% endblock %}'
    )
    async with client(sample_app(create_pages(tmp_path))) as http:
        error = await http.get("/page/error")
        sign_in = await http.get("/page/sign-in?client_name=<i>")
    assert error.status_code == 400
    assert "Acme: This sign-in link is not valid" in error.text
    assert error.headers["x-frame-options"] == "DENY"
    assert "<header>Acme Corp</header>" in sign_in.text
    assert "<title>Sign in to continue to &lt;i&gt;</title>" in sign_in.text
    assert 'name="csrf_token"' in sign_in.text  # the built-in sign-in page, in the Acme layout


async def test_operator_templates_are_autoescaped_too(tmp_path: Path) -> None:
    (tmp_path / "sign_in.html").write_text("<p>{{ client_name }}</p>")
    async with client(sample_app(create_pages(tmp_path))) as http:
        html = (await http.get("/page/sign-in")).text
    assert html.startswith("<p>&lt;script&gt;")


def test_the_policy_allows_only_what_the_pages_use() -> None:
    assert content_security_policy() == (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
