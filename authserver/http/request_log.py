"""One access-log line and one latency observation per HTTP request, and the X-Request-ID.

A pure ASGI middleware (BaseHTTPMiddleware would cost more per request and break streaming).
The line goes to the logger `authserver.access` with the fields `method`, `path` (never the
query string: it could carry a token), `status`, `duration_ms`, `request_id`, `client_id` (the
client the endpoint authenticated, else null) and `client_ip`. Nothing else from the request is
read: no body, no Authorization header, so no secret can reach the log.

X-Request-ID: an incoming value of at most 128 characters from [A-Za-z0-9._-] is kept (so a load
balancer's id ties its log to ours); anything else is replaced by a new UUID4. Either way the id
is echoed in the response's X-Request-ID header and attached to every log line of the request.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authserver.http.client_ip import client_ip
from authserver.observability.logs import request_id_var
from authserver.tokens.opaque import REFRESH_TOKEN_PREFIX

log = logging.getLogger("authserver.access")

REQUEST_ID_HEADER = b"x-request-id"
_SAFE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,128}")
_CLIENT_ID = "authserver.client_id"  # ASGI scope key set by the endpoints
REQUEST_ID_SCOPE_KEY = "authserver.request_id"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_REFRESH_TOKEN = re.compile(re.escape(REFRESH_TOKEN_PREFIX) + r"[A-Za-z0-9_%-]+")


def note_client_id(scope: Scope, client_id: str) -> None:
    """Called by an endpoint once it has authenticated a client: the access line names it."""
    scope[_CLIENT_ID] = client_id


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            if _SAFE_REQUEST_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return str(uuid.uuid4())


class RequestLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_from(scope["headers"])
        scope[REQUEST_ID_SCOPE_KEY] = request_id  # for the 500 answered outside this middleware
        echoed = (REQUEST_ID_HEADER, request_id.encode("ascii"))
        status = 500  # an exception before the response started becomes a 500 outside us

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        token = request_id_var.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
            _record(scope, status, time.perf_counter() - started, request_id)


def _record(scope: Scope, status: int, seconds: float, request_id: str) -> None:
    method = scope["method"]
    services = getattr(scope["app"].state, "services", None) if "app" in scope else None
    if services is not None:
        # Label values are bounded: unknown paths and invented methods must not grow the series.
        known = scope.get("endpoint") is not None and not scope.get("path_params")
        services.metrics.http_duration.labels(
            method if method in _METHODS else "other",
            scope["path"] if known else "other",
            str(status),
        ).observe(seconds)
    if not log.isEnabledFor(logging.INFO):
        return
    path = _logged_path(scope)
    if services is not None:  # the address the login limits see (TRUSTED_PROXIES applied)
        peer: str | None = client_ip(Request(scope), services.settings.trusted_proxies)
    else:
        peer = scope["client"][0] if scope.get("client") else None
    fields: dict[str, Any] = {
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round(seconds * 1000, 2),
        "request_id": request_id,
        "client_id": scope.get(_CLIENT_ID),
        "client_ip": peer,
    }
    log.info(
        "%s %s %d %.2fms request_id=%s client_id=%s client_ip=%s",
        method if method in _METHODS else "other",
        path,
        status,
        fields["duration_ms"],
        request_id,
        fields["client_id"],
        fields["client_ip"],
        extra={"fields": fields},
    )


def _logged_path(scope: Scope) -> str:
    """The path as received (still percent-encoded, so no decoded control characters), without
    the query string."""
    raw: bytes | None = scope.get("raw_path")
    path: str = raw.split(b"?", 1)[0].decode("latin-1") if raw else scope["path"]
    if not path.isprintable():
        path = path.encode("unicode_escape").decode("ascii")
    return _REFRESH_TOKEN.sub(
        f"{REFRESH_TOKEN_PREFIX}[redacted]", path
    )  # a client that put a token in the path
