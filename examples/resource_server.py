"""A tiny resource server protected by authserver.verify: `GET /profile` needs `profile:read`.

    RESOURCE_ISSUER=http://127.0.0.1:8000 RESOURCE_AUDIENCE=http://127.0.0.1:8000 \\
        .venv/bin/uvicorn --app-dir examples resource_server:app --port 9000

RESOURCE_ISSUER is the authorization server's ISSUER (default http://127.0.0.1:8000);
RESOURCE_AUDIENCE is this API's audience: one value, or a JSON array of several (default: the
issuer, which is what authserver puts in `aud` for clients registered without --audience).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authserver.verify import TokenVerifier
from authserver.verify.starlette import BearerAuthMiddleware, access_token, requires_scope

logger = logging.getLogger("resource_server")
# Why a token was refused (the reason, never the token), next to uvicorn's own lines.
logging.basicConfig(format="%(levelname)s:     %(name)s: %(message)s")
logging.getLogger("authserver.verify").setLevel(logging.INFO)


def audiences(value: str) -> list[str]:
    """One audience, or a JSON array of them."""
    if value.lstrip().startswith("["):
        parsed = json.loads(value)
        if not isinstance(parsed, list) or not all(isinstance(item, str) for item in parsed):
            raise SystemExit("RESOURCE_AUDIENCE: a JSON array must hold strings only")
        return parsed
    return [value]


ISSUER = os.environ.get("RESOURCE_ISSUER", "http://127.0.0.1:8000")
AUDIENCES = audiences(os.environ.get("RESOURCE_AUDIENCE", ISSUER))
verifier = TokenVerifier(ISSUER, AUDIENCES)


@requires_scope("profile:read")
async def profile(request: Request) -> Response:
    claims = access_token(request)
    return JSONResponse({"sub": claims.sub, "client_id": claims.client_id, "scope": claims.scope})


@asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    """Warm the JWKS cache; an issuer that is down now is retried on the first request."""
    if not await verifier.prefetch():
        logger.warning("could not fetch the JWKS of %s yet; will retry on demand", ISSUER)
    yield


app = Starlette(
    routes=[Route("/profile", profile)],
    middleware=[Middleware(BearerAuthMiddleware, verifier=verifier, realm="example")],
    lifespan=lifespan,
)
