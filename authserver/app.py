"""create_app(settings) -> the Starlette application: routes, middleware, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route

from authserver.errors import OAuthError
from authserver.http.discovery import jwks_endpoint, metadata_endpoint
from authserver.http.health import healthz, metrics_endpoint, readyz
from authserver.http.limits import BodyLimit
from authserver.http.responses import (
    database_error_handler,
    http_error_handler,
    oauth_error_handler,
    server_error_handler,
)
from authserver.http.token import token_endpoint
from authserver.keys import ensure_signing_keys, load_kek, load_key_ring
from authserver.lockout import LockoutPolicy
from authserver.metrics import make_metrics
from authserver.passwords import make_passwords
from authserver.services import Services, utc_now
from authserver.settings import Settings, load_settings
from authserver.store import keys as key_store
from authserver.store.db import DATABASE_UNAVAILABLE, Database, open_database

log = logging.getLogger("authserver")


def create_app(settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> Starlette:
    """The application; `clock` is injectable so tests can move time forward."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = open_database(settings)
        try:
            kek = load_kek(settings)
            now = clock()
            await ensure_signing_keys(db, settings, kek, now)
            services = Services(
                settings=settings,
                db=db,
                passwords=make_passwords(settings),
                lockout=LockoutPolicy.from_settings(settings),
                kek=kek,
                keys=await load_key_ring(db, settings, kek, now),
                metrics=make_metrics(),
                clock=clock,
            )
            app.state.services = services
            poller = asyncio.create_task(_poll_keys(services), name="authserver-key-poller")
            try:
                yield
            finally:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
        finally:
            await db.dispose()

    routes = [
        Route("/token", token_endpoint, methods=["POST"]),
        Route("/.well-known/jwks.json", jwks_endpoint, methods=["GET"]),
        Route("/.well-known/oauth-authorization-server", metadata_endpoint, methods=["GET"]),
        Route("/.well-known/openid-configuration", metadata_endpoint, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    exception_handlers = {
        OAuthError: oauth_error_handler,
        HTTPException: http_error_handler,
        **{error: database_error_handler for error in DATABASE_UNAVAILABLE},
        Exception: server_error_handler,
    }
    return Starlette(
        routes=routes,
        middleware=[Middleware(BodyLimit)],
        exception_handlers=exception_handlers,
        lifespan=lifespan,
    )


async def _poll_keys(svc: Services) -> None:
    """Apply key changes made by any process (rotation, revocation) within the interval."""
    while True:
        await asyncio.sleep(svc.settings.keys_refresh_interval)
        try:
            await _reload_keys_if_changed(svc, svc.db)
        except DATABASE_UNAVAILABLE:
            log.warning("key poll: database unavailable; keeping the current keys")
        except Exception:
            log.exception("key poll failed; keeping the current keys")


async def _reload_keys_if_changed(svc: Services, db: Database) -> None:
    states = await key_store.key_states(db)
    has_retired = any(state == "retired" for _kid, state in states)
    if states != svc.keys.states or has_retired:  # retired keys age out of the JWKS
        svc.keys = await load_key_ring(db, svc.settings, svc.kek, svc.clock())


def app_from_environment() -> Starlette:
    """Factory for `uvicorn --factory` workers: settings from the file and environment."""
    return create_app(load_settings())
