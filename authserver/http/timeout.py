"""A bound on how long any request may take (REQUEST_TIMEOUT), as a pure ASGI middleware.

A request still running after the limit is cancelled and answered 503 temporarily_unavailable
with Retry-After, like a database outage: a slow client trickling its body, a database that
stopped answering mid-query, or a lock held too long must not tie up a worker for ever.

Cancellation reaches the handler as `asyncio.CancelledError` at whatever it was awaiting. Store
code runs every multi-statement change inside `Database.transaction()`, whose context manager
rolls the transaction back on any exception, cancellation included; a single statement in
autocommit either ran or did not. So a cancelled request leaves the database as it was or
fully changed, never half changed (tests/http/test_request_limits.py checks this).
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authserver.errors import temporarily_unavailable
from authserver.http.responses import error_response

log = logging.getLogger("authserver.http")


class RequestTimeout:
    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        deadline = asyncio.timeout(self.seconds)
        try:
            async with deadline:
                await self.app(scope, receive, tracking_send)
        except TimeoutError:
            if not deadline.expired():
                raise  # a TimeoutError of the handler's own, not ours
            log.warning("request timed out after %.1f s: %s", self.seconds, scope.get("path"))
            if started:
                return  # the status line is out: the server closes the unfinished response
            await error_response(temporarily_unavailable())(scope, receive, send)
