"""create_app(settings) -> the Starlette application: routes, middleware, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Route

from authserver.clock import utc_now
from authserver.errors import OAuthError
from authserver.http.authorize import authorize_endpoint
from authserver.http.consent import consent_endpoint
from authserver.http.discovery import JwksEndpoint, MetadataEndpoint
from authserver.http.health import healthz, metrics_endpoint, readyz
from authserver.http.introspect import introspect_endpoint
from authserver.http.logout import logout_endpoint, logout_page_endpoint
from authserver.http.pages import create_pages, stylesheet_endpoint
from authserver.http.pipeline import Application
from authserver.http.responses import (
    database_error_handler,
    http_error_handler,
    oauth_error_handler,
    server_error_handler,
)
from authserver.http.revoke import revoke_endpoint
from authserver.http.sign_in import sign_in_endpoint
from authserver.http.token import token_endpoint
from authserver.keys.bootstrap import ensure_signing_keys
from authserver.keys.kek import load_keks
from authserver.keys.ring import load_key_ring
from authserver.keys.watch import watch_keys
from authserver.login.limits import LockoutPolicy
from authserver.login.passwords import make_passwords
from authserver.observability.metrics import make_metrics
from authserver.observability.sampler import metrics_running
from authserver.services import Services
from authserver.settings import Settings, load_settings
from authserver.store.db import exposed_database_file, open_database
from authserver.store.dialect import dialect_for

log = logging.getLogger("authserver")


def create_app(settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> Starlette:
    """The application; `clock` is injectable so tests can move time forward."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = open_database(settings)
        _warn_if_exposed(settings)
        try:
            keks = load_keks(settings)
            log.info(  # public fingerprints: lets an operator check a KEK rollout host by host
                "key-encryption keys: KEY_ENCRYPTION_KEY is KEK %s; previous KEKs: %s",
                keks.current.id,
                ", ".join(kek.id for kek in keks.previous) or "none",
            )
            now = clock()
            await ensure_signing_keys(db, settings, keks, now)
            services = Services(
                settings=settings,
                db=db,
                passwords=make_passwords(settings),
                lockout=LockoutPolicy.from_settings(settings),
                keks=keks,
                keys=await load_key_ring(db, settings, keks, now),
                metrics=make_metrics(),
                clock=clock,
            )
            app.state.services = services
            watcher = asyncio.create_task(watch_keys(services), name="authserver-key-watcher")
            try:
                async with metrics_running(services):
                    yield
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
        finally:
            await db.dispose()

    metadata = MetadataEndpoint()  # one document, two paths
    routes = [
        Route("/token", token_endpoint, methods=["POST"]),
        Route("/revoke", revoke_endpoint, methods=["POST"]),
        Route("/introspect", introspect_endpoint, methods=["POST"]),
        Route("/.well-known/jwks.json", JwksEndpoint(), methods=["GET"]),
        Route("/.well-known/oauth-authorization-server", metadata, methods=["GET"]),
        Route("/.well-known/openid-configuration", metadata, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        # Sign-in through /authorize (issue 12): HTML pages, not JSON.
        Route("/authorize", authorize_endpoint, methods=["GET"]),
        Route("/authorize/sign-in", sign_in_endpoint, methods=["POST"]),
        Route("/authorize/consent", consent_endpoint, methods=["POST"]),
        Route("/logout", logout_page_endpoint, methods=["GET"]),
        Route("/logout", logout_endpoint, methods=["POST"]),
        Route("/static/authserver.css", stylesheet_endpoint, methods=["GET"]),
    ]
    exception_handlers = {
        OAuthError: oauth_error_handler,
        HTTPException: http_error_handler,
        **{
            error: database_error_handler
            for error in dialect_for(settings.database_url).unavailable
        },
        Exception: server_error_handler,
    }
    app = Application(  # one ASGI layer around the routes: http/pipeline.py
        routes=routes,
        exception_handlers=exception_handlers,
        request_timeout=settings.request_timeout,
        lifespan=lifespan,
    )
    app.state.pages = create_pages(settings.templates_dir)  # the HTML pages (http/pages.py)
    return app


def _warn_if_exposed(settings: Settings) -> None:
    exposed = exposed_database_file(settings.database_url)
    if exposed is not None:
        path, mode = exposed
        log.warning(
            "database file %s is accessible by other users (mode %04o), and it holds password "
            "hashes and encrypted signing keys: chmod 600 %s*",
            path,
            mode,
            path,
        )


def app_from_environment() -> Starlette:
    """Factory for `uvicorn --factory` workers: settings from the file and environment."""
    return create_app(load_settings())
