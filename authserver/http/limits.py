"""A pure ASGI middleware capping request bodies at 64 KiB (SPEC: 413 with an RFC error body)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authserver.http.forms import MAX_BODY_BYTES, body_too_large
from authserver.http.responses import error_response


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                await error_response(body_too_large())(scope, receive, send)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise body_too_large()  # rendered by the OAuthError handler
            return message

        await self.app(scope, limited_receive, send)
