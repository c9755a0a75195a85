"""One async function per grant type (RFC 6749 §4.1, §4.3, §4.4, §6), looked up by `grant_type`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from authserver.grants.authorization_code import authorization_code_grant
from authserver.grants.base import GrantRequest, TokenResponse
from authserver.grants.client_credentials import client_credentials_grant
from authserver.grants.password import password_grant
from authserver.grants.refresh_token import refresh_token_grant
from authserver.services import Services

Grant = Callable[[Services, GrantRequest], Awaitable[TokenResponse]]

GRANTS: dict[str, Grant] = {
    "password": password_grant,
    "refresh_token": refresh_token_grant,
    "client_credentials": client_credentials_grant,
    "authorization_code": authorization_code_grant,
}

# Grants whose one statement re-checks the client row's version (GrantRequest.client_version),
# so they may start from a cached client (clients/cache.py).
CONFIRMS_CLIENT = frozenset({"refresh_token"})

__all__ = ["CONFIRMS_CLIENT", "GRANTS", "Grant", "GrantRequest", "TokenResponse"]
