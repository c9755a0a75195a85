"""What every grant receives and returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from authserver.errors import invalid_request
from authserver.models import Client


@dataclass(frozen=True)
class GrantRequest:
    client: Client  # already authenticated, and allowed this grant type
    params: Mapping[str, str]  # form parameters; empty values already dropped (RFC 6749 §3.1)
    client_ip: str
    now: datetime
    # The client row's version it was authenticated against, for grants in CONFIRMS_CLIENT
    # (PostgreSQL; None on SQLite): their statement acts only if it is still current.
    client_version: int | None = None

    def required(self, name: str) -> str:
        value = self.params.get(name)
        if value is None:
            raise invalid_request(f"The {name} parameter is missing.")
        return value

    def optional(self, name: str) -> str | None:
        return self.params.get(name)


@dataclass(frozen=True)
class TokenResponse:
    """RFC 6749 §5.1."""

    access_token: str
    expires_in: int
    scope: str
    refresh_token: str | None = None

    def body(self) -> dict[str, object]:
        body: dict[str, object] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        body["scope"] = self.scope
        return body
