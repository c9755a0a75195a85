"""A document served as prepared bytes with a strong `ETag`, and `If-None-Match` → 304
(RFC 9110 §8.8.3, §13.1.2, §15.4.5): the JWKS and the discovery documents.

The body, its ETag and both header lists are built once per distinct document; a request then
costs a header scan and two `send` calls. A 304 carries the ETag and the Cache-Control the 200
would have carried, and no body (RFC 9110 §15.4.5).
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from starlette.types import Scope, Send

_IF_NONE_MATCH = b"if-none-match"
_ENTITY_TAG = re.compile(rb'(?:W/)?("[\x21\x23-\x7e\x80-\xff]*")')  # RFC 9110 §8.8.3


@dataclass(frozen=True)
class PreparedDocument:
    body: bytes
    etag: bytes  # with its quotes: b'"..."'
    headers: list[tuple[bytes, bytes]]  # of the 200
    not_modified_headers: list[tuple[bytes, bytes]]  # of the 304


def prepare(body: bytes, cache_control: str | None = None) -> PreparedDocument:
    """`body` (JSON) with a strong ETag: 128 bits of its SHA-256, so equal bytes get equal tags
    on every process and host (a load balancer may send the next request anywhere)."""
    digest = hashlib.sha256(body).digest()[:16]
    etag = b'"' + base64.urlsafe_b64encode(digest).rstrip(b"=") + b'"'
    caching = [] if cache_control is None else [(b"cache-control", cache_control.encode("ascii"))]
    headers = [
        *caching,
        (b"content-length", str(len(body)).encode("ascii")),
        (b"content-type", b"application/json"),
        (b"etag", etag),
    ]
    return PreparedDocument(body, etag, headers, [*caching, (b"etag", etag)])


def none_match(scope: Scope, etag: bytes) -> bool:
    """False when an If-None-Match field lists `etag` (weak comparison, RFC 9110 §13.1.2: a W/
    prefix is ignored) or is `*`: the client's copy is current. Several fields are one list."""
    for name, value in scope["headers"]:
        if name == _IF_NONE_MATCH:
            if value.strip() == b"*":
                return False
            if etag in _ENTITY_TAG.findall(value):
                return False
    return True


async def send_document(scope: Scope, send: Send, document: PreparedDocument) -> None:
    """200 with the body, or 304 without one when the client already holds these bytes."""
    if none_match(scope, document.etag):
        await send({"type": "http.response.start", "status": 200, "headers": document.headers})
        await send({"type": "http.response.body", "body": document.body})
    else:
        await send(
            {"type": "http.response.start", "status": 304, "headers": document.not_modified_headers}
        )
        await send({"type": "http.response.body", "body": b""})
