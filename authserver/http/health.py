"""Liveness, readiness and metrics (SPEC "Operations")."""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from authserver.services import Services
from authserver.store.db import DATABASE_UNAVAILABLE


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
    svc: Services = request.app.state.services
    activated = svc.keys.activated_at
    if activated is not None:
        svc.metrics.signing_key_age.set(time.time() - activated.timestamp())
    return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)
