"""RFC 9068 JWT access tokens: the one function every grant issues them with."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson

from authserver.clients.policy import access_token_ttl, audiences
from authserver.keys.ring import KeyRing
from authserver.models import Client
from authserver.settings import Settings


@dataclass(frozen=True)
class AccessToken:
    token: str  # JWS compact serialization
    expires_in: int  # seconds (RFC 6749 §5.1)


def audience_claim(audiences: Sequence[str]) -> str | list[str]:
    """RFC 7519 §4.1.3: a string for one audience, an array for several."""
    return audiences[0] if len(audiences) == 1 else list(audiences)


def issue_access_token(
    keys: KeyRing,
    settings: Settings,
    client: Client,
    *,
    subject: str,
    scope: str,
    family_id: uuid.UUID | None,
    now: datetime,
) -> AccessToken:
    """RFC 9068 §2: header `typ: at+jwt`, RS256 with the current key's kid; claims `iss`, `sub`
    (the user's id, or the client_id for client_credentials), `aud` (the client's audiences or
    DEFAULT_AUDIENCE), `client_id`, `scope`, `iat`, `exp` (the client's TTL or
    ACCESS_TOKEN_TTL), `jti`, and `sid`, the refresh-token family, for users' tokens."""
    ttl = access_token_ttl(client, settings)
    iat = int(now.timestamp())
    claims: dict[str, object] = {
        "iss": settings.issuer,
        "sub": subject,
        "aud": audience_claim(audiences(client, settings)),
        "client_id": client.client_id,
        "scope": scope,
        "iat": iat,
        "exp": iat + ttl,
        "jti": secrets.token_urlsafe(16),
    }
    if family_id is not None:
        claims["sid"] = str(family_id)
    return AccessToken(keys.signer.sign(orjson.dumps(claims)), ttl)
