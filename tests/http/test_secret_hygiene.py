"""No secret ever reaches a log line or an error body, with every logger at DEBUG (SQLAlchemy,
asyncpg, aiosqlite and uvicorn included), on SQLite and PostgreSQL.

The whole flow runs: clients and a user created, password logins (Basic and client_secret_post),
refreshes, reuse detection, failed logins up to the lock, wrong client secrets, client
credentials, revocation and introspection, and hostile requests that put secrets where they do
not belong (a repeated password, a secret in the query string, a token in a header). Then every
captured record, rendered the way `serve` renders it (JSON, with exception text), and every
error body is searched for every password, refresh token, client secret, private key (decrypted
from the database with the KEK) and the KEK itself. Success bodies of /token are exempt: handing
out tokens is their job.
"""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Awaitable, Callable

import httpx
import pytest

from authserver import admin
from authserver.keys.kek import load_keks
from authserver.observability.logs import JsonFormatter
from authserver.services import Services
from authserver.store import keys as key_store
from tests.conftest import TEST_KEK, Clock, RegisteredClient
from tests.helpers import password_login, refresh
from tests.secret_material import Secrets

MakeClient = Callable[..., Awaitable[RegisteredClient]]
MakeUser = Callable[..., Awaitable[str]]

DEBUG_LOGGERS = [
    "",
    "authserver",
    "sqlalchemy",
    "sqlalchemy.engine",
    "sqlalchemy.pool",
    "asyncpg",
    "aiosqlite",
    "uvicorn",
    "uvicorn.error",
]
# The test's own HTTP client logs the URLs it requests (some carry secrets on purpose).
CLIENT_SIDE = ("httpx", "httpcore")


@pytest.fixture(autouse=True)
def debug_logging(caplog: pytest.LogCaptureFixture) -> None:
    """Autouse, so every logger is at DEBUG before the app and its engine are created (caplog
    puts the levels back afterwards)."""
    for name in DEBUG_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)


class Recorder:
    """Every response of the flow, to search the error bodies afterwards."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.responses: list[httpx.Response] = []

    async def __call__(self, response: Awaitable[httpx.Response]) -> httpx.Response:
        answered = await response
        self.responses.append(answered)
        return answered


async def test_no_secret_reaches_a_log_line_or_an_error_body(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    services: Services,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    found = Secrets()
    record = Recorder(http)
    password = "pw-" + secrets.token_urlsafe(16)
    new_password = "pw-" + secrets.token_urlsafe(16)
    found.add("password", password)
    found.add("new password", new_password)

    app = await make_client("app", grants=("password", "refresh_token", "client_credentials"))
    auditor = await make_client("auditor", introspect=True)
    public = await make_client("spa", public=True)
    for client in (app, auditor):
        assert client.secret is not None
        found.add(f"client secret of {client.client_id}", client.secret)
    await admin.create_user(services.db, services.passwords, "alice", password, services.clock())

    # Logins and refreshes, with reuse detection.
    login = await record(password_login(http, app, "alice", password))
    assert login.status_code == 200, login.text
    tokens = [login.json()["refresh_token"]]
    post_login = await record(
        http.post(
            "/token",
            data={
                "grant_type": "password",
                "username": "alice",
                "password": password,
                "client_id": app.client_id,
                "client_secret": app.secret or "",
            },
        )
    )
    assert post_login.status_code == 200, post_login.text
    tokens.append(post_login.json()["refresh_token"])
    spa_login = await record(password_login(http, public, "alice", password))
    assert spa_login.status_code == 200, spa_login.text
    tokens.append(spa_login.json()["refresh_token"])
    rotated = await record(refresh(http, app, tokens[0]))
    assert rotated.status_code == 200, rotated.text
    tokens.append(rotated.json()["refresh_token"])
    reuse = await record(refresh(http, app, tokens[0]))  # reuse: the family is revoked, logged
    assert reuse.status_code == 400
    await record(refresh(http, app, tokens[-1]))  # a token of the revoked family
    await record(refresh(http, auditor, tokens[1]))  # another client's token: logged
    narrowed = await record(refresh(http, app, tokens[1], scope="read"))
    tokens.append(narrowed.json()["refresh_token"])

    # Failed logins up to the lock, an unknown user, wrong client secrets.
    for guess in range(11):
        await record(password_login(http, app, "alice", f"{password}-{guess}"))
    await record(password_login(http, app, "mallory", password))
    wrong = RegisteredClient(app.client_id, (app.secret or "") + "x")
    await record(password_login(http, wrong, "bob", password))
    truncated = RegisteredClient(app.client_id, (app.secret or "")[:-1])
    await record(
        http.post("/token", data={"grant_type": "client_credentials"}, auth=truncated.basic)
    )

    # Client credentials, revocation, introspection.
    cc = await record(
        http.post("/token", data={"grant_type": "client_credentials"}, auth=app.basic)
    )
    assert cc.status_code == 200, cc.text
    for token in (tokens[1], tokens[-1], "asrt_" + secrets.token_urlsafe(32)):
        await record(http.post("/introspect", data={"token": token}, auth=auditor.basic))
    await record(http.post("/introspect", data={"token": tokens[2]}, auth=app.basic))  # 403
    await record(http.post("/revoke", data={"token": tokens[-1]}, auth=app.basic))
    await record(http.post("/revoke", data={"token": tokens[2]}, auth=wrong.basic))

    # Secrets where they do not belong.
    await record(
        http.post(
            "/token",
            content=f"grant_type=password&username=alice&password={password}&password={password}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            auth=app.basic,
        )
    )
    await record(http.post(f"/token?password={password}&refresh_token={tokens[2]}", auth=app.basic))
    await record(http.get(f"/token?client_secret={app.secret}"))
    await record(http.get(f"/nowhere/{tokens[2]}"))
    garbled = base64.b64encode(f"{app.client_id}:{app.secret}\x00".encode()).decode()
    await record(
        http.post(
            "/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {garbled}"},
        )
    )
    await record(
        http.post(
            "/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens[2] + "\x01"},
            auth=app.basic,
        )
    )
    await record(
        http.post(
            "/token",
            content=f'{{"grant_type": "password", "password": "{password}"}}',
            headers={"Content-Type": "application/json"},
            auth=app.basic,
        )
    )

    # An operator changes the password (and so revokes every session).
    await admin.set_password(
        services.db, services.passwords, "alice", new_password, services.clock()
    )
    clock.advance(3600)  # past the lock
    relogin = await record(password_login(http, app, "alice", new_password))
    assert relogin.status_code == 200, relogin.text
    tokens.append(relogin.json()["refresh_token"])

    for index, token in enumerate(tokens):
        found.add(f"refresh token #{index}", token)
    found.add_signing_keys(await key_store.list_keys(services.db), load_keks(services.settings))
    found.add_kek(TEST_KEK, load_keks(services.settings).current.key)

    formatter = JsonFormatter()
    server_side = [rec for rec in caplog.records if not rec.name.startswith(CLIENT_SIDE)]
    lines = [formatter.format(rec) + "\n" + rec.getMessage() for rec in server_side]
    assert len(lines) > 50  # DEBUG really was on: the engines and the app logged plenty
    assert any(rec.name.startswith("sqlalchemy") for rec in server_side)
    leaks = [(found.found_in(line), line[:300]) for line in lines if found.found_in(line)]
    assert not leaks, leaks

    errors = [r for r in record.responses if r.status_code >= 400]
    assert len(errors) > 20
    leaky_bodies = [
        (r.status_code, found.found_in(r.text)) for r in errors if found.found_in(r.text)
    ]
    assert not leaky_bodies, leaky_bodies
    # Reprs end up in tracebacks, test reports and debuggers: the services hold the KEK.
    assert not found.found_in(repr(services) + repr(services.settings))
    others = [r for r in record.responses if r.status_code < 400 and r.url.path != "/token"]
    assert not [found.found_in(r.text) for r in others if found.found_in(r.text)]
