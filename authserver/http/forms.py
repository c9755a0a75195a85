"""Strict `application/x-www-form-urlencoded` parsing and client credentials (RFC 6749 §2.3.1).

Starlette's `request.form()` silently returns an empty form for other content types and keeps the
last of repeated parameters; RFC 6749 §3.2 forbids repeats, so the token, revocation and
introspection endpoints parse their bodies here instead. The two headers and the body are read
from the ASGI scope and `receive` directly: Starlette's `Headers` and body stream cost more than
the parsing on the token endpoint's hot path.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import unquote, unquote_to_bytes

from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope

from authserver.clients.authentication import ClientCredentials
from authserver.errors import OAuthError, invalid_client, invalid_request

MAX_BODY_BYTES = 64 * 1024
MAX_PARAMETERS = 32
MAX_VALUE_LENGTH = 8 * 1024
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def body_too_large() -> OAuthError:
    return OAuthError("invalid_request", "The request body is too large.", 413)


def header(scope: Scope, name: bytes) -> str | None:
    """The first `name` field of the request (lower-case, as ASGI gives them), as Starlette's
    `request.headers.get` returns it."""
    fields: list[tuple[bytes, bytes]] = scope["headers"]
    for key, value in fields:
        if key == name:
            return value.decode("latin-1")
    return None


async def read_form(request: Request) -> dict[str, str]:
    """The body's parameters, each at most once; empty values dropped (RFC 6749 §3.1)."""
    content_type = header(request.scope, b"content-type") or ""
    media_type, _, options = content_type.partition(";")
    if media_type.strip().lower() != FORM_MEDIA_TYPE:
        raise invalid_request(f"The request body must be {FORM_MEDIA_TYPE}.")
    charset = _charset(options)
    if charset not in (None, "utf-8", "us-ascii"):
        raise invalid_request("The request body must be UTF-8.")
    body = await _body(request.receive)
    try:
        pairs = _pairs(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise invalid_request("The request body is not valid UTF-8.") from None
    params: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in pairs:
        if name in seen:
            raise invalid_request("A parameter is repeated.")
        seen.add(name)
        if len(value) > MAX_VALUE_LENGTH or len(name) > 64:
            raise invalid_request("A parameter is too long.")
        if not _printable(name) or not _printable(value):
            raise invalid_request("A parameter contains control characters.")
        if value:
            params[name] = value
    return params


async def _body(receive: Receive) -> bytes:
    """The whole body, as Starlette's `request.body()` collects it (the pipeline's `receive`
    raises the 413 past MAX_BODY_BYTES)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


def _pairs(text: str) -> list[tuple[str, str]]:
    """`urllib.parse.parse_qsl(text, keep_blank_values=True, errors="strict",
    max_num_fields=MAX_PARAMETERS)` without its generality: fields split on "&" only, empty
    fields skipped, a field without "=" an empty value, "+" a space, then percent-decoding as
    strict UTF-8 (UnicodeDecodeError)."""
    if text.count("&") >= MAX_PARAMETERS:  # parse_qsl counts 1 + the separators
        raise invalid_request("The request has too many parameters.")
    return [
        (_unquote_plus(name), _unquote_plus(value))
        for name, _, value in (field.partition("=") for field in text.split("&") if field)
    ]


def _unquote_plus(text: str) -> str:
    return unquote(text.replace("+", " "), encoding="utf-8", errors="strict")


def _charset(options: str) -> str | None:
    for option in options.split(";"):
        key, _, value = option.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


def _printable(text: str) -> bool:
    """No C0 control characters (NUL cannot even be stored by PostgreSQL) and no DEL."""
    return _CONTROL.search(text) is None


def client_credentials(scope: Scope, params: dict[str, str]) -> ClientCredentials:
    """client_secret_basic, client_secret_post, or a bare client_id ("none"), never two at once."""
    authorization = header(scope, b"authorization")
    if authorization is None:
        return ClientCredentials(params.get("client_id"), params.get("client_secret"))
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise invalid_client()
    if "client_secret" in params:
        raise invalid_request("Use one client authentication method only.")
    client_id, secret = _decode_basic(encoded.strip())
    if "client_id" in params and params["client_id"] != client_id:
        raise invalid_client()
    return ClientCredentials(client_id, secret)


def _decode_basic(encoded: str) -> tuple[str, str]:
    """RFC 7617 with RFC 6749 §2.3.1's form-encoding of the id and secret."""
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        raw_id, sep, raw_secret = decoded.partition(":")
        if not sep or not raw_id:
            raise ValueError
        client_id = unquote_to_bytes(raw_id.replace("+", " ")).decode("utf-8")
        secret = unquote_to_bytes(raw_secret.replace("+", " ")).decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        raise invalid_client() from None
    if not _printable(client_id) or not _printable(secret):
        raise invalid_client()
    return client_id, secret
