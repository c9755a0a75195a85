"""The one ASGI layer every HTTP request passes through, between uvicorn and the endpoints.

In order, for each request: the X-Request-ID (http/request_log.py), the 64 KiB body cap (413,
SPEC), the REQUEST_TIMEOUT deadline (http/timeout.py: 503), the route, the mapping of every
exception to its RFC error JSON (http/responses.py; an unexpected one is a 500 without details),
and at the end the latency histogram and the access-log line.

One layer instead of Starlette's stack (ServerErrorMiddleware, three middlewares of ours,
ExceptionMiddleware, the router's loop over the routes): every response message used to pass
through five `send` wrappers, and every request paid a timer on the loop's heap and a regular
expression per route tried. Here a request costs one `send` and one `receive` wrapper, a dict
lookup for its route and a dict entry for its deadline. Anything the exact-path table does not
hold (404, 405, a trailing slash) goes to Starlette's router, which answers it as before.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authserver.errors import temporarily_unavailable
from authserver.http.forms import MAX_BODY_BYTES, body_too_large
from authserver.http.request_log import (
    REQUEST_ID_HEADER,
    REQUEST_ID_SCOPE_KEY,
    AccessLog,
    RequestIds,
)
from authserver.http.responses import error_response, server_error_handler
from authserver.http.timeout import Deadlines
from authserver.observability.logs import request_id_var

log = logging.getLogger("authserver.http")

_CONTENT_LENGTH = b"content-length"

Handler = Callable[[Request, Exception], Awaitable[Response]]


class Application(Starlette):
    """Starlette (routes, lifespan, `state`) with `Pipeline` as its whole middleware stack."""

    def __init__(
        self,
        *,
        routes: Sequence[BaseRoute],
        exception_handlers: Mapping[type[Exception], Handler],
        request_timeout: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(routes=routes, **kwargs)
        self.pipeline = Pipeline(self.router, exception_handlers, request_timeout)

    def build_middleware_stack(self) -> ASGIApp:
        return self.pipeline


class Pipeline:
    def __init__(
        self,
        router: Router,
        handlers: Mapping[type[Exception], Handler],
        request_timeout: float,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.router = router
        self.handlers = dict(handlers)
        self.deadlines = Deadlines(request_timeout)
        self.max_body_bytes = max_body_bytes
        self.exact = _exact_routes(router)
        self.request_ids = RequestIds()
        self.access_log = AccessLog()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan
            await self.router(scope, receive, send)
            return
        began = time.perf_counter()
        incoming_id: bytes | None = None
        declared_too_large = False
        for name, value in scope["headers"]:
            if name == REQUEST_ID_HEADER:
                if incoming_id is None:
                    incoming_id = value
            elif name == _CONTENT_LENGTH and (
                not value.isdigit() or int(value) > self.max_body_bytes
            ):
                declared_too_large = True
        request_id = self.request_ids.for_request(incoming_id)
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        echoed = (REQUEST_ID_HEADER, request_id.encode("ascii"))
        status = 0  # no response started yet
        received = 0
        max_body_bytes = self.max_body_bytes

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body_bytes:
                    raise body_too_large()
            return message

        context = request_id_var.set(request_id)
        deadline = self.deadlines.start()
        try:
            try:
                if declared_too_large:
                    await error_response(body_too_large())(scope, receive, send_with_id)
                else:
                    await self._route(scope, limited_receive, send_with_id)
            except Exception as exc:
                if status:
                    raise  # the status line is out: the server closes the unfinished response
                handler = self._handler(exc)
                response = await handler(Request(scope, receive), exc)
                await response(scope, receive, send_with_id)
                if handler is server_error_handler:
                    raise  # uvicorn logs it too, as it did with Starlette's ServerErrorMiddleware
        except asyncio.CancelledError:
            if not deadline.timed_out():
                raise
            log.warning(
                "request timed out after %.1f s: %s", self.deadlines.seconds, scope.get("path")
            )
            if not status:
                await error_response(temporarily_unavailable())(scope, receive, send_with_id)
        except BaseException:
            if not status:
                status = 500  # answered by the server outside us
            raise
        finally:
            self.deadlines.finish(deadline)
            request_id_var.reset(context)
            self.access_log.record(scope, status or 500, time.perf_counter() - began, request_id)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The endpoint of an exact path and method, as Starlette's router would pick it."""
        if not scope.get("root_path"):
            found = self.exact.get((scope["path"], scope["method"]))
            if found is not None:
                scope["router"] = self.router
                scope["route"], scope["endpoint"] = found[0], found[0].endpoint
                scope["path_params"] = {}
                await found[1](scope, receive, send)
                return
        await self.router(scope, receive, send)

    def _handler(self, exc: Exception) -> Handler:
        for cls in type(exc).__mro__:
            handler = self.handlers.get(cls)
            if handler is not None:
                return handler
        return server_error_handler


def _exact_routes(router: Router) -> dict[tuple[str, str], tuple[Route, ASGIApp]]:
    """(path, method) → the route and its ASGI app, for routes without path parameters (all of
    ours); the first route listed wins, as in Starlette's loop."""
    table: dict[tuple[str, str], tuple[Route, ASGIApp]] = {}
    for route in router.routes:
        if isinstance(route, Route) and not route.param_convertors and route.methods:
            app = _direct(route.endpoint) if inspect.iscoroutinefunction(route.endpoint) else None
            for method in route.methods:
                table.setdefault((route.path, method), (route, app or route.app))
    return table


def _direct(endpoint: Callable[[Request], Awaitable[Response]]) -> ASGIApp:
    """A `request -> response` endpoint as an ASGI app: Starlette's `request_response` without
    its exception-handling wrapper (the pipeline maps exceptions itself)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await endpoint(Request(scope, receive, send))
        await response(scope, receive, send)

    return app
