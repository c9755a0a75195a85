"""Liveness, readiness and metrics (SPEC "Operations")."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from authserver.observability.metrics import exposition
from authserver.observability.sampler import sample_now
from authserver.services import Services


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready when the database answers and a signing key is loaded."""
    svc: Services = request.app.state.services
    try:
        await svc.db.ping()
    except svc.db.dialect.unavailable:
        return JSONResponse(
            {"status": "unavailable", "database": "unreachable"},
            503,
            headers={"Retry-After": "5"},
        )
    return JSONResponse({"status": "ready", "database": "ok", "signing_key": svc.keys.kid})


async def metrics_endpoint(request: Request) -> Response:
    """GET /metrics on the main port: only with METRICS_PORT 0 (by default the metrics have a
    port of their own, and the public port answers 404 here)."""
    svc: Services = request.app.state.services
    if not svc.settings.metrics_enabled or svc.settings.metrics_address is not None:
        raise HTTPException(404, "Not Found")  # the same JSON 404 as any unknown path
    sample_now(svc)  # the gauges as of this scrape
    return Response(exposition(svc.metrics), media_type=CONTENT_TYPE_LATEST)
