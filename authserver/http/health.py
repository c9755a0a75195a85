"""Liveness, readiness and metrics (SPEC "Operations")."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from authserver.metrics import (
    exposition,
    forget_this_process,
    sample,
    start_metrics_server,
)
from authserver.services import Services
from authserver.store.db import DATABASE_UNAVAILABLE

log = logging.getLogger("authserver")

# How often each worker refreshes its gauges for scrapes it does not answer itself.
SAMPLE_INTERVAL = 2.0


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready when the database answers and a signing key is loaded."""
    svc: Services = request.app.state.services
    try:
        async with svc.db.statement() as conn:
            await conn.execute(text("SELECT 1"))
    except DATABASE_UNAVAILABLE:
        return JSONResponse(
            {"status": "unavailable", "database": "unreachable"},
            503,
            headers={"Retry-After": "5"},
        )
    return JSONResponse({"status": "ready", "database": "ok", "signing_key": svc.keys.kid})


async def metrics_endpoint(request: Request) -> Response:
    """GET /metrics on the main port, unless METRICS_ENABLED is off or METRICS_PORT moves it."""
    svc: Services = request.app.state.services
    if not svc.settings.metrics_enabled or svc.settings.metrics_port is not None:
        raise HTTPException(404, "Not Found")  # the same JSON 404 as any unknown path
    sample_now(svc)
    return Response(exposition(svc.metrics), media_type=CONTENT_TYPE_LATEST)


def sample_now(svc: Services) -> None:
    sample(
        svc.metrics,
        key_activated_at=svc.keys.activated_at,
        pool=svc.db.pool_stats(),
        now=time.time(),
    )


@contextlib.asynccontextmanager
async def metrics_running(svc: Services) -> AsyncIterator[None]:
    """For the app's lifetime: keep the gauges fresh, serve METRICS_PORT when this process is
    the only one (with several workers `serve`'s supervisor serves it), clean up at the end."""
    settings = svc.settings
    server = None
    if (
        settings.metrics_enabled
        and settings.metrics_port is not None
        and svc.metrics.multiprocess_dir is None
    ):
        server = start_metrics_server(
            settings.metrics_host, settings.metrics_port, svc.metrics.registry
        )
    sampler = asyncio.create_task(_sample_forever(svc), name="authserver-metrics-sampler")
    try:
        yield
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        if server is not None:
            await asyncio.to_thread(server.close)
        forget_this_process(svc.metrics)


async def _sample_forever(svc: Services) -> None:
    while True:
        try:
            sample_now(svc)
        except Exception:  # a metrics hiccup must never stop the server
            log.exception("metrics sampling failed")
        await asyncio.sleep(SAMPLE_INTERVAL)
