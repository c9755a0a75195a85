"""Plain records passed between the store and the rest: no SQL, no HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID


@dataclass(frozen=True, slots=True)
class User:
    id: UUID
    username: str
    password_hash: str
    disabled: bool
    created_at: datetime
    password_changed_at: datetime


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    name: str
    secret_hash: bytes | None  # None: a public client (token endpoint auth method "none")
    grant_types: frozenset[str]
    scopes: tuple[str, ...]
    audiences: tuple[str, ...]  # empty: the server's DEFAULT_AUDIENCE
    can_introspect: bool
    access_token_ttl: int | None
    created_at: datetime
    # Sign-in through /authorize (issue 12): the registered redirect URIs, in registration order
    # (clients/redirect_uris.py says what may be registered), and whether the user is asked to
    # approve the app's scopes (`clients create --consent`).
    redirect_uris: tuple[str, ...] = ()
    consent: bool = False

    @property
    def is_public(self) -> bool:
        return self.secret_hash is None


@dataclass(frozen=True, slots=True)
class RefreshGrant:
    """What the store hands back when a refresh token was issued or rotated."""

    family_id: UUID
    user_id: UUID
    client_id: str
    scope: str  # the login's scope (RFC 6749 §6: the new token keeps it)
    expires_at: datetime  # the new refresh token's expiry


@dataclass(frozen=True, slots=True)
class RefreshTokenRecord:
    """A stored refresh token, read to explain why a rotation did not happen."""

    family_id: UUID
    client_id: str
    scope: str  # the login's scope
    rotated_at: datetime | None
    revoked_at: datetime | None = None  # superseded by a grace-window replay of its parent


@dataclass(frozen=True, slots=True)
class SigningKeyRecord:
    kid: str
    state: str
    alg: str
    size: int
    public_jwk: str
    private_key: bytes  # encrypted
    created_at: datetime
    activated_at: datetime | None
    retired_at: datetime | None
    revoked_at: datetime | None
    kek_id: str | None  # the KEK that sealed `private_key`; None: stored before KEK ids existed
