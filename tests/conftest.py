"""Shared fixtures. Every test that touches storage runs twice: on SQLite and on PostgreSQL.

PostgreSQL: a throwaway database is created on the server named by AUTHSERVER_TEST_POSTGRES
(default: postgresql://postgres@127.0.0.1:5432/test) and dropped at the end. An unreachable server
fails the run; set AUTHSERVER_TEST_POSTGRES=off to run the SQLite half alone on a laptop
(refused when CI=true).
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import delete
from starlette.applications import Starlette

from authserver import admin
from authserver.app import create_app
from authserver.services import Services
from authserver.settings import Settings
from authserver.store.db import open_database
from authserver.store.migrate import upgrade
from authserver.store.tables import metadata, signing_keys
from tests.postgres import POSTGRES_ENV, postgres_server, throwaway_database

TEST_KEK = base64.urlsafe_b64encode(b"k" * 32).decode().rstrip("=")
ISSUER = "https://as.example"
PASSWORD = "correct horse battery staple"

BACKENDS = ["sqlite", "postgresql"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(POSTGRES_ENV) == "off" and os.environ.get("CI") == "true":
        raise pytest.UsageError(f"{POSTGRES_ENV}=off is not allowed in CI")


@pytest.fixture(scope="session", autouse=True)
def _isolated_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests never read the repository's config/authserver.toml or a developer's environment."""
    empty = tmp_path_factory.mktemp("config") / "empty.toml"
    empty.write_text("")
    saved = {k: v for k, v in os.environ.items() if k.startswith("AUTHSERVER_")}
    for key in saved:
        if key != POSTGRES_ENV:
            del os.environ[key]
    os.environ["AUTHSERVER_CONFIG"] = str(empty)
    yield
    os.environ.pop("AUTHSERVER_CONFIG", None)
    os.environ.update(saved)


@pytest.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str | None]:
    """A fresh PostgreSQL database for this test session (SQLAlchemy URL), dropped afterwards."""
    if postgres_server() == "off":
        yield None
        return
    async with throwaway_database("authserver_test") as url:
        await asyncio.to_thread(upgrade, url)
        yield url


@pytest.fixture(scope="session")
async def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("sqlite") / "authserver.db"
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(upgrade, url)
    return url


@pytest.fixture(params=BACKENDS)
async def database_url(
    request: pytest.FixtureRequest, sqlite_url: str, postgres_url: str | None
) -> AsyncIterator[str]:
    """The database of one backend, emptied after the test (signing keys are kept)."""
    if request.param == "sqlite":
        url = sqlite_url
    elif postgres_url is None:
        pytest.skip(f"PostgreSQL disabled by {POSTGRES_ENV}=off")
    else:
        url = postgres_url
    yield url
    db = open_database(Settings(database_url=url))
    try:
        async with db.transaction() as conn:
            for table in reversed(metadata.sorted_tables):
                if table is not signing_keys:
                    await conn.execute(delete(table))
    finally:
        await db.dispose()


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings for one test: `@pytest.mark.parametrize("settings_overrides", [{...}],
    indirect=True)`, or override this fixture in a module."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
def settings(database_url: str, settings_overrides: dict[str, Any], tmp_path: Path) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "issuer": ISSUER,
        "key_encryption_key": TEST_KEK,
        "argon2_time_cost": 1,
        "argon2_memory_cost": 8,
        "argon2_parallelism": 1,
        "keys_refresh_interval": 0.2,
        # /metrics on the app itself, scraped through the ASGI transport (metric_value); the
        # default, a port of its own (9464), would have every test app listen on one port.
        "metrics_port": 0,
    }
    values.update(settings_overrides)
    return Settings(**values)


class Clock:
    """A controllable clock for the app: starts at real time, moves only when told."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def app(settings: Settings, clock: Clock) -> AsyncIterator[Starlette]:
    application = create_app(settings, clock=clock)
    async with LifespanManager(application):
        yield application


@pytest.fixture
def services(app: Starlette) -> Services:
    svc: Services = app.state.services
    return svc


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
        yield client


@dataclass(frozen=True)
class RegisteredClient:
    client_id: str
    secret: str | None

    @property
    def basic(self) -> httpx.BasicAuth:
        assert self.secret is not None
        return httpx.BasicAuth(self.client_id, self.secret)


@pytest.fixture
def make_client(services: Services) -> Callable[..., Awaitable[RegisteredClient]]:
    async def make(
        name: str = "app",
        *,
        public: bool = False,
        grants: tuple[str, ...] = (),
        scopes: tuple[str, ...] = ("read", "write"),
        audiences: tuple[str, ...] = (),
        introspect: bool = False,
        access_token_ttl: int | None = None,
        redirect_uris: tuple[str, ...] = (),
        consent: bool = False,
    ) -> RegisteredClient:
        created = await admin.create_client(
            services.db,
            services.settings,
            name=name,
            public=public,
            grant_types=grants,
            scopes=scopes,
            audiences=audiences,
            can_introspect=introspect,
            access_token_ttl=access_token_ttl,
            now=datetime.now(UTC),
            redirect_uris=redirect_uris,
            consent=consent,
        )
        return RegisteredClient(created.client.client_id, created.secret)

    return make


@pytest.fixture
def make_user(services: Services) -> Callable[..., Awaitable[str]]:
    """Create a user; returns its id (the `sub` of its access tokens)."""

    async def make(username: str = "alice", password: str = PASSWORD) -> str:
        user = await admin.create_user(
            services.db, services.passwords, username, password, datetime.now(UTC)
        )
        return str(user.id)

    return make
