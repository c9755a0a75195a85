"""A small web app that signs its users in through authserver's /authorize with PKCE, using
authlib's Starlette client, and calls the example resource server with the access token.

THIS IS AN EXAMPLE to copy from, not a production app: its session store is a dict in memory
(sessions vanish on restart and are not shared between processes); use Redis or a database in
a real deployment. What it shows and why:

- The browser holds only an opaque, random session id (cookie `webapp_session`, HttpOnly,
  SameSite=Lax, Secure on https). Tokens stay on the server: a refresh token is a long-lived
  credential and never belongs in a browser.
- PKCE S256 (authlib makes the verifier and keeps it with `state` until the callback).
- The callback checks `iss` (RFC 9207) before swapping the code, so an answer from another
  server is refused.
- The access token is refreshed shortly before it expires, one refresh at a time per session:
  authserver rotates refresh tokens, and two concurrent refreshes with the same token would
  look like theft and end the login.
- Signing out revokes the refresh token at /revoke (RFC 7009).

Run (authserver on :8000, resource server on :9000, this app on :8001):

    authserver clients create webapp --public --grant authorization_code --grant refresh_token \\
        --scope profile:read --redirect-uri http://127.0.0.1:8001/callback
    WEBAPP_CLIENT_ID=<client_id> .venv/bin/uvicorn --app-dir examples webapp:app --port 8001

| variable | default | meaning |
|---|---|---|
| WEBAPP_CLIENT_ID | (required) | the client_id printed by `clients create` |
| WEBAPP_CLIENT_SECRET | (none: public client) | the secret of a client created without --public |
| WEBAPP_ISSUER | http://127.0.0.1:8000 | authserver's ISSUER |
| WEBAPP_REDIRECT_URI | http://127.0.0.1:8001/callback | this app's /callback, as registered |
| WEBAPP_SCOPE | profile:read | the scopes to ask for |
| WEBAPP_RESOURCE_URL | http://127.0.0.1:9000/profile | the API to call with the access token |
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2
from authlib.integrations.starlette_client import OAuth, OAuthError
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "webapp_session"
REFRESH_LEEWAY = 30  # seconds before expiry at which the access token is renewed


@dataclass(frozen=True)
class Config:
    client_id: str
    client_secret: str | None
    issuer: str
    redirect_uri: str
    scope: str
    resource_url: str

    @classmethod
    def from_env(cls) -> Config:
        client_id = os.environ.get("WEBAPP_CLIENT_ID")
        if not client_id:
            raise SystemExit("WEBAPP_CLIENT_ID is not set: the client_id from `clients create`")
        return cls(
            client_id=client_id,
            client_secret=os.environ.get("WEBAPP_CLIENT_SECRET") or None,
            issuer=os.environ.get("WEBAPP_ISSUER", "http://127.0.0.1:8000").rstrip("/"),
            redirect_uri=os.environ.get("WEBAPP_REDIRECT_URI", "http://127.0.0.1:8001/callback"),
            scope=os.environ.get("WEBAPP_SCOPE", "profile:read"),
            resource_url=os.environ.get("WEBAPP_RESOURCE_URL", "http://127.0.0.1:9000/profile"),
        )


@dataclass
class Session:
    """One browser's server-side state: authlib's `state` data, then the tokens."""

    data: dict[str, Any] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one refresh at a time


class MemorySessions:
    """Sessions in a dict, keyed by the random id in the cookie. Example only (see above)."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}

    def get(self, session_id: str | None) -> Session | None:
        return self._sessions.get(session_id) if session_id else None

    def save(self, session: Session) -> str:
        session_id = secrets.token_urlsafe(32)
        self._sessions[session_id] = session
        return session_id

    def delete(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)


class ServerSideSessionMiddleware:
    """Gives Starlette's `request.session` (which authlib uses) a server-side home: the cookie
    carries only the session id. A session that ends up empty is deleted with its cookie."""

    def __init__(self, app: ASGIApp, sessions: MemorySessions, secure: bool) -> None:
        self.app, self.sessions, self.secure = app, sessions, secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session_id = Request(scope).cookies.get(COOKIE)
        session = self.sessions.get(session_id) or Session()
        scope["session"] = session.data
        scope["webapp.session"] = session

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._set_cookie(MutableHeaders(scope=message), session_id, session, scope)
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _set_cookie(
        self, headers: MutableHeaders, session_id: str | None, session: Session, scope: Scope
    ) -> None:
        known = session_id is not None and self.sessions.get(session_id) is session
        renew = bool(scope.get("webapp.renew_id"))  # after sign-in: a new id (no fixation)
        if known and session_id is not None and (renew or not session.data):
            self.sessions.delete(session_id)
            if not session.data:
                headers.append("Set-Cookie", f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly")
        if session.data and (renew or not known):
            cookie = f"{COOKIE}={self.sessions.save(session)}; Path=/; HttpOnly; SameSite=Lax"
            headers.append("Set-Cookie", cookie + ("; Secure" if self.secure else ""))


def create_app(config: Config, *, transport: httpx2.AsyncBaseTransport | None = None) -> Starlette:
    """The app; `transport` lets tests answer its HTTP calls without a network."""
    oauth = OAuth()
    client_kwargs: dict[str, Any] = {
        "scope": config.scope,
        "code_challenge_method": "S256",
        "token_endpoint_auth_method": "client_secret_basic" if config.client_secret else "none",
    }
    if transport is not None:
        client_kwargs["transport"] = transport
    oauth.register(
        "authserver",
        client_id=config.client_id,
        client_secret=config.client_secret,
        authorize_url=f"{config.issuer}/authorize",
        access_token_url=f"{config.issuer}/token",
        client_kwargs=client_kwargs,
    )
    server = oauth.authserver
    http = httpx2.AsyncClient(transport=transport, timeout=10)

    async def home(request: Request) -> Response:
        if "token" not in request.session:
            return page("Example app", '<p><a href="/login">Sign in</a></p>')
        return page(
            "Example app",
            '<p>You are signed in.</p><p><a href="/profile">Call the API</a></p>'
            '<form method="post" action="/logout"><button>Sign out</button></form>',
        )

    async def login(request: Request) -> Response:
        response: Response = await server.authorize_redirect(request, config.redirect_uri)
        return response

    async def callback(request: Request) -> Response:
        if request.query_params.get("iss") != config.issuer:  # RFC 9207: who answered?
            return page("Sign-in failed", "<p>The answer did not come from our server.</p>", 400)
        try:
            token = await server.authorize_access_token(request)
        except OAuthError as error:
            message = "You declined." if error.error == "access_denied" else "Please try again."
            return page("Sign-in failed", f"<p>{html.escape(message)}</p>", 400)
        request.session.clear()
        request.session["token"] = dict(token)
        request.scope["webapp.renew_id"] = True  # a new session id now that it is a login
        return RedirectResponse("/", status_code=303)

    async def profile(request: Request) -> Response:
        session: Session = request.scope["webapp.session"]
        if "token" not in session.data:
            return RedirectResponse("/login", status_code=303)
        try:
            access_token = await current_access_token(session, refresh)
        except OAuthError:  # the login ended at the server (revoked, expired, password changed)
            session.data.clear()
            return RedirectResponse("/login", status_code=303)
        bearer = {"Authorization": f"Bearer {access_token}"}
        answer = await http.get(config.resource_url, headers=bearer)
        body = json.dumps(answer.json(), indent=2) if answer.is_success else answer.reason_phrase
        return page("API answer", f"<pre>{html.escape(body)}</pre><p><a href='/'>Back</a></p>")

    async def refresh(refresh_token: str) -> dict[str, Any]:
        token = await server.fetch_access_token(
            grant_type="refresh_token", refresh_token=refresh_token
        )
        return dict(token)

    async def logout(request: Request) -> Response:
        token = request.session.get("token") or {}
        if token.get("refresh_token"):
            auth = (config.client_id, config.client_secret) if config.client_secret else None
            data = {"token": token["refresh_token"], "token_type_hint": "refresh_token"}
            if auth is None:
                data["client_id"] = config.client_id
            await http.post(f"{config.issuer}/revoke", data=data, auth=auth)
        request.session.clear()
        return RedirectResponse("/", status_code=303)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await http.aclose()

    app = Starlette(
        lifespan=lifespan,
        routes=[
            Route("/", home),
            Route("/login", login),
            Route("/callback", callback),
            Route("/profile", profile),
            Route("/logout", logout, methods=["POST"]),
        ],
    )
    secure = config.redirect_uri.startswith("https://")
    app.add_middleware(ServerSideSessionMiddleware, sessions=MemorySessions(), secure=secure)
    return app


async def current_access_token(
    session: Session, refresh: Callable[[str], Awaitable[dict[str, Any]]]
) -> str:
    """The session's access token, refreshed first when it expires within REFRESH_LEEWAY."""
    async with session.lock:
        token: MutableMapping[str, Any] = session.data["token"]
        if token.get("expires_at", 0) - REFRESH_LEEWAY <= time.time():
            session.data["token"] = token = await refresh(token["refresh_token"])
        return str(token["access_token"])


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = (
        f'<!doctype html><html lang="en"><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>{body}</html>"
    )
    return HTMLResponse(document, status, headers={"Cache-Control": "no-store"})


app = create_app(Config.from_env())
