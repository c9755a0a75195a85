"""What each client may do: its grants, its scopes (RFC 6749 §3.3), its audience and token TTL."""

from __future__ import annotations

from collections.abc import Sequence

from authserver.errors import invalid_scope
from authserver.models import Client
from authserver.settings import SCOPE_TOKEN, Settings


def allowed_scopes(client: Client, settings: Settings) -> tuple[str, ...]:
    """The client's scopes, limited to SCOPES when the server declares any."""
    if not settings.scopes:
        return client.scopes
    known = set(settings.scopes)
    return tuple(scope for scope in client.scopes if scope in known)


def parse_scope(value: str) -> list[str]:
    """RFC 6749 §3.3: space-delimited scope tokens; malformed → invalid_scope."""
    tokens = value.split(" ")
    if not all(SCOPE_TOKEN.match(token) for token in tokens):
        raise invalid_scope("The scope parameter is malformed.")
    return list(dict.fromkeys(tokens))


def grant_scope(requested: str | None, allowed: Sequence[str]) -> str:
    """The scope to grant: all of `allowed` by default, else the requested subset of it."""
    if requested is None:
        return " ".join(allowed)
    tokens = parse_scope(requested)
    if not set(tokens) <= set(allowed):
        raise invalid_scope("The requested scope is not allowed.")
    return " ".join(tokens)


def audiences(client: Client, settings: Settings) -> tuple[str, ...]:
    return client.audiences or (settings.audience,)


def access_token_ttl(client: Client, settings: Settings) -> int:
    return client.access_token_ttl or settings.access_token_ttl
