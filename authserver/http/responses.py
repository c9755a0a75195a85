"""JSON responses, and the mapping of every failure to an RFC 6749 §5.2-style error body."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from authserver.errors import NO_STORE, OAuthError, temporarily_unavailable
from authserver.http.request_log import REQUEST_ID_SCOPE_KEY

log = logging.getLogger("authserver.http")


class JsonResponse(JSONResponse):
    """Starlette's JSONResponse rendered by orjson: the same compact UTF-8 bytes as its
    `json.dumps` for the bodies we send (strings, integers, booleans, null, lists, objects),
    several times faster."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


# NO_STORE as the header fields Starlette's `init_headers` makes of it.
_NO_STORE_FIELDS = [
    (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in NO_STORE.items()
]


class NoStoreJsonResponse(Response):
    """200 with a JSON body that must not be cached (RFC 6749 §5.1, RFC 7009 §2.2, RFC 7662
    §2.2): the bytes and fields `JsonResponse(content, headers=NO_STORE)` sends, in the same
    order, with the header list built from prepared fields instead of Starlette's
    `init_headers` (a mapping converted and searched on every response)."""

    media_type = "application/json"

    def __init__(self, content: Mapping[str, object]) -> None:
        self.status_code = 200
        self.background = None
        self.body = orjson.dumps(content)
        self.raw_headers = [
            *_NO_STORE_FIELDS,
            (b"content-length", str(len(self.body)).encode("latin-1")),
            (b"content-type", b"application/json"),
        ]


def error_response(error: OAuthError) -> JSONResponse:
    return JsonResponse(error.body(), error.status, headers={**NO_STORE, **error.headers})


async def oauth_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OAuthError)
    return error_response(exc)


async def http_error_handler(_request: Request, exc: Exception) -> Response:
    """404, 405 and friends from the router, as JSON."""
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    body = {"error": codes.get(exc.status_code, "invalid_request"), "error_description": exc.detail}
    return JsonResponse(body, exc.status_code, headers={**NO_STORE, **(exc.headers or {})})


async def database_error_handler(_request: Request, exc: Exception) -> Response:
    log.error("database unavailable: %s", exc.__class__.__name__)
    return error_response(temporarily_unavailable())


async def server_error_handler(_request: Request, exc: Exception) -> Response:
    """Anything unexpected: logged with its traceback here, never shown to the client. (A
    database that cannot answer has handlers of its own, one per error class: app.py.)"""
    request_id = _request.scope.get(REQUEST_ID_SCOPE_KEY)
    log.exception("unhandled error (request_id=%s)", request_id, exc_info=exc)
    body = {"error": "server_error", "error_description": "The server encountered an error."}
    return JsonResponse(body, 500, headers=NO_STORE)  # the pipeline adds the X-Request-ID
