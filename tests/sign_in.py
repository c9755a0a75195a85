"""Helpers for the tests of sign-in through /authorize: a browser-like httpx client (it keeps
cookies), PKCE pairs, the pages' hidden inputs, and the code exchange at /token."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import func, select

from authserver.services import Services
from authserver.store.tables import (
    authorization_codes,
    authorization_requests,
    consents,
    login_sessions,
)
from tests.conftest import ISSUER, PASSWORD, RegisteredClient

MakeClient = Callable[..., Awaitable[RegisteredClient]]
MakeUser = Callable[..., Awaitable[str]]

REDIRECT_URI = "https://app.example/callback"
SIGN_IN_GRANTS = ("authorization_code", "refresh_token")
SIGN_IN_TABLES = (login_sessions, authorization_requests, authorization_codes, consents)


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str


def pkce() -> Pkce:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return Pkce(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


async def web_client(
    make_client: MakeClient,
    *,
    consent: bool = False,
    scopes: tuple[str, ...] = ("read", "write"),
    public: bool = True,
    redirect_uris: tuple[str, ...] = (REDIRECT_URI,),
    grants: tuple[str, ...] = SIGN_IN_GRANTS,
) -> RegisteredClient:
    return await make_client(
        "Example App",
        public=public,
        grants=grants,
        scopes=scopes,
        redirect_uris=redirect_uris,
        consent=consent,
    )


def authorize_params(
    client: RegisteredClient, challenge: Pkce, **extra: str | None
) -> dict[str, str]:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": REDIRECT_URI,
        "state": "af0ifjsldkj",
        "code_challenge": challenge.challenge,
        "code_challenge_method": "S256",
    }
    params.update(extra)
    return {name: value for name, value in params.items() if value is not None}


def hidden_inputs(page: httpx.Response) -> dict[str, str]:
    """The hidden inputs of the page's form (authorization_request, csrf_token)."""
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text)
    return {name: html.unescape(value) for name, value in found}


def form_action(page: httpx.Response) -> str:
    match = re.search(r'<form method="post" action="([^"]+)">', page.text)
    assert match is not None, page.text
    return html.unescape(match.group(1))


async def submit(http: httpx.AsyncClient, page: httpx.Response, **fields: str) -> httpx.Response:
    """Post the page's form as a browser would: its hidden inputs plus `fields`."""
    return await http.post(form_action(page), data={**hidden_inputs(page), **fields})


async def sign_in(
    http: httpx.AsyncClient,
    page: httpx.Response,
    username: str = "alice",
    password: str = PASSWORD,
) -> httpx.Response:
    return await submit(http, page, username=username, password=password)


def answer(response: httpx.Response) -> dict[str, str]:
    """The query parameters of a 303 back to the app (each given once)."""
    assert response.status_code == 303, (response.status_code, response.text)
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI) or "127.0.0.1" in location, location
    values = parse_qs(urlsplit(location).query, keep_blank_values=True)
    assert all(len(v) == 1 for v in values.values()), values
    return {name: v[0] for name, v in values.items()}


async def code_for(
    http: httpx.AsyncClient,
    client: RegisteredClient,
    challenge: Pkce,
    username: str = "alice",
    **extra: str | None,
) -> str:
    """Sign in through the pages (or reuse the browser's session) and return the code."""
    response = await http.get("/authorize", params=authorize_params(client, challenge, **extra))
    if response.status_code == 200:
        response = await sign_in(http, response, username)
    values = answer(response)
    assert values["iss"] == ISSUER
    return values["code"]


async def exchange(
    http: httpx.AsyncClient,
    client: RegisteredClient,
    code: str,
    verifier: str,
    **extra: str | None,
) -> httpx.Response:
    data: dict[str, str | None] = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": REDIRECT_URI,
    }
    data.update(extra)
    form = {name: value for name, value in data.items() if value is not None}
    if client.secret is None:
        return await http.post("/token", data={**form, "client_id": client.client_id})
    return await http.post("/token", data=form, auth=client.basic)


async def tokens_for(
    http: httpx.AsyncClient, client: RegisteredClient, username: str = "alice"
) -> dict[str, Any]:
    """A whole sign-in: /authorize, the pages, the exchange; the token response."""
    challenge = pkce()
    code = await code_for(http, client, challenge, username)
    response = await exchange(http, client, code, challenge.verifier)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def row_counts(services: Services) -> dict[str, int]:
    """Rows in each table of the sign-in (to show that a refusal stored nothing)."""
    counts = {}
    async with services.db.read() as conn:
        for table in SIGN_IN_TABLES:
            query = select(func.count()).select_from(table)
            counts[table.name] = int((await conn.execute(query)).scalar_one())
    return counts


def new_browser(http: httpx.AsyncClient) -> httpx.AsyncClient:
    """Another browser on the same server: its own cookie jar."""
    return httpx.AsyncClient(transport=http._transport, base_url=http.base_url)
