"""One access-log line and one latency observation per HTTP request, and the X-Request-ID.

Written by the request pipeline (http/pipeline.py) once the request is answered. The line goes
to the logger `authserver.access` with the fields `method`, `path` (never the query string: it
could carry a token), `status`, `duration_ms`, `request_id`, `client_id` (the client the endpoint
authenticated, else null) and `client_ip`. Nothing else from the request is
read: no body, no Authorization header, so no secret can reach the log.

X-Request-ID: an incoming value of at most 128 characters from [A-Za-z0-9._-] is kept (so a load
balancer's id ties its log to ours); anything else is replaced by a new UUID4. Either way the id
is echoed in the response's X-Request-ID header and attached to every log line of the request.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from starlette.types import Scope

from authserver.http.access_lines import FIELDS, AccessValues, BoundedCache, JsonAccessLines
from authserver.http.client_ip import scope_client_ip
from authserver.observability.logs import JsonFormatter, TextFormatter
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


class RequestIds:
    """X-Request-ID values: the incoming one when safe, else a new UUID4.

    A UUID4 (RFC 9562 §5.4) is 122 random bits; they are taken 16 bytes at a time from one
    `os.urandom` read of 4 KiB (one system call per 256 requests), whose hex is made once, and
    formatted as `str(uuid.uuid4())` would be: the 13th hex digit becomes the version, 4, and
    the 17th keeps its two low bits under the variant's `10`. Each worker process builds its
    own application, so no two processes share a buffer."""

    _BATCH = 16 * 256

    def __init__(self) -> None:
        self._hex = ""
        self._offset = 2 * self._BATCH

    def for_request(self, incoming: bytes | None) -> str:
        if incoming is not None and _SAFE_REQUEST_ID.fullmatch(incoming):
            return incoming.decode("ascii")
        return self.new()

    def new(self) -> str:
        offset = self._offset
        if offset >= 2 * self._BATCH:
            self._hex, offset = os.urandom(self._BATCH).hex(), 0
        self._offset = offset + 32
        h = self._hex[offset : offset + 32]
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


# A random hex digit's two low bits under the RFC 9562 variant bits 10: 8, 9, a or b.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


class AccessLog:
    """The latency observation and the access-log line of each answered request."""

    def __init__(self) -> None:
        self._json_lines = JsonAccessLines(log.name)
        self._logged_paths = BoundedCache[bytes, str]()

    def record(self, scope: Scope, status: int, seconds: float, request_id: str) -> None:
        method = scope["method"]
        services = getattr(scope["app"].state, "services", None) if "app" in scope else None
        if services is not None:
            services.metrics.observe_http_request(
                method if method in _METHODS else "other", _metric_path(scope), status, seconds
            )
        if not log.isEnabledFor(logging.INFO):
            return
        # Only a known route's path is cached: a path no route matched is the client's to make
        # up, and may even hold a token (redacted in the line, but not to be kept after it).
        raw_path: bytes | None = scope.get("raw_path") if scope.get("endpoint") else None
        path = self._logged_paths.get(raw_path) if raw_path else None
        if path is None:
            path = _logged_path(scope)
            if raw_path:
                self._logged_paths.put(raw_path, path)
        if services is not None:  # the address the login limits see (TRUSTED_PROXIES applied)
            peer: str | None = scope_client_ip(scope, services.settings.trusted_proxies)
        else:
            peer = scope["client"][0] if scope.get("client") else None
        values: AccessValues = (
            method,
            path,
            status,
            round(seconds * 1000, 2),
            request_id,
            scope.get(_CLIENT_ID),
            peer,
        )
        handler = _direct_handler()
        if handler is None:
            log.handle(_record(values))
            return
        formatter = handler.formatter
        created = time.time()
        try:
            if type(formatter) is JsonFormatter:
                line = self._json_lines.line(formatter.timestamp(created), values)
            else:
                assert isinstance(formatter, TextFormatter)
                line = formatter.access_line(log.name, created, _LINE, _text_args(values))
            with handler.lock:  # type: ignore[union-attr]  # created by Handler.__init__
                handler.stream.write(line + handler.terminator)
                handler.stream.flush()
        except Exception:  # as StreamHandler.emit does
            handler.handleError(_record(values))


def _text_args(values: AccessValues) -> tuple[Any, ...]:
    """The arguments of `_LINE` (LOG_FORMAT=text): an invented method shows as "other"."""
    method = values[0]
    return (method if method in _METHODS else "other", *values[1:])


def _metric_path(scope: Scope) -> str:
    """The path label: a route's own path, else "other", so that unknown paths and invented
    methods cannot grow the series."""
    known = scope.get("endpoint") is not None and not scope.get("path_params")
    return str(scope["path"]) if known else "other"


_LINE = "%s %s %d %.2fms request_id=%s client_id=%s client_ip=%s"


def _direct_handler() -> logging.StreamHandler[Any] | None:
    """The access logger's handler when it is the only one that would see the line and writes
    it with one of our formatters unfiltered, as `serve` configures it; else None.

    Why not `log.info`: this line is written once per request, and for the JWKS it was about
    half of the pipeline's CPU time, most of it in the logging machinery rather than in the line
    (the LogRecord with its process, thread and file name, the handler lookup, a second lock for
    the flush). So when the line can only go to the one handler `serve` configures for it
    (`logging_config`: a StreamHandler on stdout with our formatter, no filters, no propagation),
    `record` formats it as that handler's formatter would format the record, and writes it as
    `StreamHandler.emit` writes it: under the handler's lock, one write and one flush per line,
    so no line waits in a buffer. Any other configuration (a test's caplog, another handler, a
    filter) gets a LogRecord through `log.handle`. The logger's level and `disabled` are checked
    by the caller (`isEnabledFor`) either way."""
    if log.propagate or log.filters or len(log.handlers) != 1:
        return None
    handler = log.handlers[0]
    if (
        type(handler) is not logging.StreamHandler
        or handler.filters
        or handler.level > logging.INFO
        or type(handler.formatter) not in _DIRECT_FORMATTERS
    ):
        return None
    return handler


_DIRECT_FORMATTERS = (JsonFormatter, TextFormatter)


def _record(values: AccessValues) -> logging.LogRecord:
    """The access line as a LogRecord: `log.info(_LINE, *args, extra={"fields": fields})`
    without its search of the stack for the caller (no format shows it)."""
    return log.makeRecord(
        log.name,
        logging.INFO,
        __file__,
        0,
        _LINE,
        _text_args(values),
        None,
        extra={"fields": dict(zip(FIELDS, values, strict=True))},
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
