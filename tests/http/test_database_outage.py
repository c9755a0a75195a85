"""The database goes away and comes back (PostgreSQL only): POST /token answers 503
temporarily_unavailable with Retry-After, /readyz answers 503, and both recover without
restarting the app.

The app talks to PostgreSQL through a small TCP proxy that the tests stop and restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from authserver import admin
from authserver.app import create_app
from authserver.services import Services
from authserver.settings import Settings
from tests.conftest import ISSUER, PASSWORD, RegisteredClient
from tests.helpers import assert_uncached_oauth_error

# Only the PostgreSQL half of the `database_url` fixture (which also empties the tables after).
pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

CONNECT_TIMEOUT = 2.0


class TcpProxy:
    """Forwards 127.0.0.1:<port> to the database. `stop()` closes the listener and every
    forwarded connection (like a database restart); `start()` listens again on the same port.
    With `blackhole`, connections are accepted but nothing is ever forwarded (a dead host)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.blackhole = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, *, blackhole: bool = False) -> None:
        assert self._server is None
        self.blackhole = blackhole
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        await self._server.wait_closed()
        self._server = None
        for writer in list(self._writers):
            writer.close()  # both ends of every forwarded connection: the pipes see EOF
        if self._tasks:
            _done, pending = await asyncio.wait(list(self._tasks), timeout=2)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            if self.blackhole:
                await reader.read()  # hold the connection open, say nothing
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
            except OSError:
                return
            self._writers.add(up_writer)
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except asyncio.CancelledError:
            pass  # stop() gave up waiting: this connection is being torn down anyway
        finally:
            writer.close()
            self._tasks.discard(task)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def proxy(database_url: str) -> AsyncIterator[TcpProxy]:
    url = make_url(database_url)
    tcp = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await tcp.start()
    try:
        yield tcp
    finally:
        await tcp.stop()


@pytest.fixture
async def proxied_app(settings: Settings, proxy: TcpProxy) -> AsyncIterator[Starlette]:
    url = make_url(settings.database_url).set(host="127.0.0.1", port=proxy.port)
    proxied = settings.model_copy(
        update={
            "database_url": url.render_as_string(hide_password=False),
            "database_connect_timeout": CONNECT_TIMEOUT,
            "keys_refresh_interval": 0.5,
        }
    )
    assert proxied.issuer == ISSUER
    application = create_app(proxied)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def proxied_http(proxied_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=proxied_app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
        yield client


@pytest.fixture
async def registered(proxied_app: Starlette) -> RegisteredClient:
    """A confidential client (password, refresh_token, client_credentials) and user alice,
    created through the proxy while the database is up."""
    svc: Services = proxied_app.state.services
    now = datetime.now(UTC)
    created = await admin.create_client(
        svc.db,
        svc.settings,
        name="app",
        public=False,
        grant_types=("password", "refresh_token", "client_credentials"),
        scopes=("read",),
        audiences=(),
        can_introspect=False,
        access_token_ttl=None,
        now=now,
    )
    await admin.create_user(svc.db, svc.passwords, "alice", PASSWORD, now)
    return RegisteredClient(created.client.client_id, created.secret)


def login_data() -> dict[str, str]:
    return {"grant_type": "password", "username": "alice", "password": PASSWORD}


async def assert_unavailable(http: httpx.AsyncClient, client: RegisteredClient) -> None:
    for data in (login_data(), {"grant_type": "client_credentials"}):
        started = time.monotonic()
        response = await http.post("/token", data=data, auth=client.basic)
        elapsed = time.monotonic() - started
        assert_uncached_oauth_error(response, 503, "temporarily_unavailable")
        retry = response.headers["retry-after"]
        assert retry.isdigit(), retry
        assert 1 <= int(retry) <= 30
        assert elapsed < CONNECT_TIMEOUT + 3, elapsed
    ready = await http.get("/readyz")
    assert ready.status_code == 503, ready.text
    assert ready.headers["content-type"].startswith("application/json")


async def assert_available(http: httpx.AsyncClient, client: RegisteredClient) -> None:
    login = await http.post("/token", data=login_data(), auth=client.basic)
    assert login.status_code == 200, login.text
    cc = await http.post("/token", data={"grant_type": "client_credentials"}, auth=client.basic)
    assert cc.status_code == 200, cc.text
    ready = await http.get("/readyz")
    assert ready.status_code == 200, ready.text


async def test_database_down_gives_503_with_retry_after_and_recovers_without_restart(
    proxied_http: httpx.AsyncClient, proxy: TcpProxy, registered: RegisteredClient
) -> None:
    await assert_available(proxied_http, registered)  # the pool now holds live connections

    await proxy.stop()
    await assert_unavailable(proxied_http, registered)
    await assert_unavailable(proxied_http, registered)  # and again, once the pool is empty

    await proxy.start()
    await assert_available(proxied_http, registered)


async def test_database_restart_while_idle_is_invisible_to_the_next_request(
    proxied_http: httpx.AsyncClient, proxy: TcpProxy, registered: RegisteredClient
) -> None:
    """Every pooled connection is cut while idle (a database restart or failover), and the
    database is back before the next request: that request must not fail. The server may not
    hand a connection it has not checked to a request (pool pre-ping, or one retry)."""
    await assert_available(proxied_http, registered)
    await proxy.stop()
    await proxy.start()
    first = await proxied_http.post("/token", data=login_data(), auth=registered.basic)
    assert first.status_code == 200, first.text
    await assert_available(proxied_http, registered)


async def test_unresponsive_database_gives_503_within_the_connect_timeout(
    proxied_http: httpx.AsyncClient, proxy: TcpProxy, registered: RegisteredClient
) -> None:
    """A database host that accepts TCP but never answers: requests fail after
    DATABASE_CONNECT_TIMEOUT, not after the client's patience runs out."""
    await assert_available(proxied_http, registered)
    await proxy.stop()
    await proxy.start(blackhole=True)
    await assert_unavailable(proxied_http, registered)

    await proxy.stop()
    await proxy.start()
    await assert_available(proxied_http, registered)


async def test_healthz_stays_up_and_client_auth_answers_503_while_the_database_is_down(
    proxied_http: httpx.AsyncClient, proxy: TcpProxy, registered: RegisteredClient
) -> None:
    """/healthz is about the process, not the database. A wrong secret cannot be told from a
    right one without the database: the answer is 503, not invalid_client."""
    await proxy.stop()
    health = await proxied_http.get("/healthz")
    assert health.status_code == 200, health.text
    bad_client = await proxied_http.post(
        "/token", data=login_data(), auth=(registered.client_id, "wrong")
    )
    assert_uncached_oauth_error(bad_client, 503, "temporarily_unavailable")
