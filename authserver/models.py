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
class VersionedClient:
    """A client as read, with its row's version (PostgreSQL): what a statement that acts for the
    client can check it against, in the same round trip (clients/cache.py)."""

    client: Client
    version: int


class StaleClient(Exception):
    """The client's row changed (or went) since the request was authenticated against it;
    nothing was written. Raised with the client_id."""


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


# --- Sign-in through GET /authorize (issue 12) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoginSession:
    """A live browser login session (cookie `authserver_session`; only its hash is stored)."""

    id: UUID
    user_id: UUID
    username: str
    auth_time: datetime  # when the password was checked: refresh families count from it


@dataclass(frozen=True, slots=True)
class PendingAuthorization:
    """A validated authorization request waiting for the person on the sign-in or consent page
    (table authorization_requests; the form carries a random handle, only its hash is stored)."""

    id: UUID
    client_id: str
    redirect_uri: str  # the one to answer at (a loopback URI with the port the app used)
    redirect_uri_sent: bool  # /token must then repeat it (RFC 6749 §4.1.3)
    scope: str
    state: str | None
    code_challenge: str
    prompt: str | None  # "login" or None
    session_id: UUID | None  # the login session answering it, once there is one
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class CodeGrant:
    """What an authorization code was issued for (table authorization_codes)."""

    id: UUID
    client_id: str
    user_id: UUID
    session_id: UUID | None  # None once purge deleted the (ended) session
    redirect_uri: str
    redirect_uri_sent: bool
    code_challenge: str
    scope: str
    auth_time: datetime
    expires_at: datetime
    used_at: datetime | None
    family_id: UUID | None  # the refresh-token family its exchange started
