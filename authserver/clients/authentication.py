"""Client credentials: minting them, and authenticating a client (RFC 6749 §2.3)."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from authserver.errors import invalid_client
from authserver.models import Client
from authserver.store import clients as client_store
from authserver.store.db import Database
from authserver.tokens.opaque import token_digest

_DUMMY_DIGEST = token_digest("authserver dummy client secret")


@dataclass(frozen=True)
class ClientCredentials:
    """What the request presented: from HTTP Basic, or from the form body."""

    client_id: str | None
    secret: str | None


def new_client_id() -> str:
    return secrets.token_urlsafe(16)


def new_client_secret() -> str:
    """256 bits from the OS CSPRNG; only its digest is stored."""
    return secrets.token_urlsafe(32)


async def authenticate_client(db: Database, presented: ClientCredentials) -> Client:
    """Return the client the request authenticates as, or raise invalid_client (401).

    Confidential clients must present their secret (client_secret_basic or client_secret_post);
    public clients (auth method "none") present only their client_id. The digest comparison runs
    in constant time, against a dummy digest when the client is unknown.
    """
    if not presented.client_id:
        raise invalid_client()
    client = await client_store.get_client(db, presented.client_id)
    if client is None:
        hmac.compare_digest(_DUMMY_DIGEST, token_digest(presented.secret or ""))
        raise invalid_client()
    if client.is_public:
        if presented.secret:  # a public client has no secret to present
            raise invalid_client()
        return client
    if presented.secret is None:
        raise invalid_client()
    assert client.secret_hash is not None
    if not hmac.compare_digest(client.secret_hash, token_digest(presented.secret)):
        raise invalid_client()
    return client
