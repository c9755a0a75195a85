"""Client credentials: minting them, and authenticating a client (RFC 6749 §2.3)."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from authserver.clients.cache import ClientCache
from authserver.errors import invalid_client
from authserver.models import Client, VersionedClient
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
    """128 random bits, URL-safe, never starting with "-": operators type client ids on command
    lines, where a leading dash is read as an option (`clients delete -eX…`)."""
    while True:
        client_id = secrets.token_urlsafe(16)
        if not client_id.startswith("-"):
            return client_id


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
    return _authenticated(client, presented)


async def authenticate_versioned_client(
    db: Database, presented: ClientCredentials, grant_type: str, cache: ClientCache | None
) -> tuple[Client, int | None]:
    """`authenticate_client` for a grant whose statement confirms the client row's version
    (clients/cache.py): the client, and the version to confirm (None on SQLite, which reads the
    client afresh every time). A cached entry is used only if it accepts the presented secret and
    allows `grant_type`; otherwise the row is read afresh and decides. `cache` None: read afresh
    (after a StaleClient)."""
    if not presented.client_id:
        raise invalid_client()
    if not db.dialect.row_versions:
        return await authenticate_client(db, presented), None
    if cache is not None:
        entry = cache.get(presented.client_id)
        if entry is not None:
            if _accepts(entry.client, presented) and grant_type in entry.client.grant_types:
                return entry.client, entry.version
            cache.forget(presented.client_id)
    found = await client_store.get_versioned_client(db, presented.client_id)
    client = _authenticated(None if found is None else found.client, presented)
    assert found is not None
    if cache is not None:
        cache.put(VersionedClient(client, found.version))
    return client, found.version


def _authenticated(client: Client | None, presented: ClientCredentials) -> Client:
    if client is None:
        hmac.compare_digest(_DUMMY_DIGEST, token_digest(presented.secret or ""))
        raise invalid_client()
    if not _accepts(client, presented):
        raise invalid_client()
    return client


def _accepts(client: Client, presented: ClientCredentials) -> bool:
    """The presented credentials are this client's: no secret for a public client, else its
    secret (the digests compared in constant time)."""
    if client.is_public:
        return not presented.secret  # a public client has no secret to present
    if presented.secret is None:
        return False
    assert client.secret_hash is not None
    return hmac.compare_digest(client.secret_hash, token_digest(presented.secret))
