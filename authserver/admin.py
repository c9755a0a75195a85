"""Operator actions (the CLI's work): validate input, then call the same store functions the
server uses. Each raises `AdminError` with a one-line message on bad input."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from authserver.clients.authentication import new_client_id, new_client_secret
from authserver.clients.grant_types import DEFAULT_GRANT_TYPES, GRANT_TYPES
from authserver.clients.redirect_uris import redirect_uri_problem
from authserver.login.passwords import Passwords, check_new_password
from authserver.models import Client, User
from authserver.settings import SCOPE_TOKEN, Settings
from authserver.store import clients as client_store
from authserver.store import users as user_store
from authserver.store.db import Database
from authserver.tokens.opaque import token_digest

SHOWN_URI_LENGTH = 80  # a refused redirect URI is named, cut to this length


class AdminError(Exception):
    """Bad operator input; the message is one line."""


class NotFound(AdminError):
    """The user or client named does not exist."""


class AlreadyExists(AdminError):
    """What was to be created exists already."""


@dataclass(frozen=True)
class NewClient:
    client: Client
    secret: str | None  # shown once, never stored


async def create_user(
    db: Database, passwords: Passwords, username: str, password: str, now: datetime
) -> User:
    if not valid_username(username):
        raise AdminError(
            "username must be 1-255 printable characters, without spaces or invisible "
            "characters (control, format or bidi characters)"
        )
    problem = check_new_password(password)
    if problem:
        raise AdminError(problem)
    try:
        return await user_store.create_user(db, username, await passwords.hash(password), now)
    except user_store.UserExists:
        raise AlreadyExists(f"user {username!r} already exists") from None


def valid_username(name: str) -> bool:
    """1-255 characters, each printable and none a space of any kind: no control character, no
    bidi override, zero-width or other format character, no line separator, no non-breaking
    space. A name shows as what it is, in `audit tail`, a terminal or a log (finding 7)."""
    return 1 <= len(name) <= 255 and name.isprintable() and not any(c.isspace() for c in name)


async def set_password(
    db: Database, passwords: Passwords, username: str, password: str, now: datetime
) -> User:
    problem = check_new_password(password)
    if problem:
        raise AdminError(problem)
    return _found(
        await user_store.set_password(db, username, await passwords.hash(password), now), username
    )


async def disable_user(db: Database, username: str, now: datetime) -> User:
    return _found(await user_store.disable_user(db, username, now), username)


async def enable_user(db: Database, username: str) -> User:
    return _found(await user_store.enable_user(db, username), username)


async def delete_user(db: Database, username: str) -> User:
    return _found(await user_store.delete_user(db, username), username)


async def get_user(db: Database, username: str) -> User:
    return _found(await user_store.get_user(db, username), username)


def _found(user: User | None, username: str) -> User:
    if user is None:
        raise NotFound(f"no such user: {username!r}")
    return user


async def create_client(
    db: Database,
    settings: Settings,
    *,
    name: str,
    public: bool,
    grant_types: Sequence[str],
    scopes: Sequence[str],
    audiences: Sequence[str],
    can_introspect: bool,
    access_token_ttl: int | None,
    now: datetime,
    redirect_uris: Sequence[str] = (),
    consent: bool = False,
) -> NewClient:
    grants = tuple(dict.fromkeys(grant_types or DEFAULT_GRANT_TYPES))
    uris = tuple(dict.fromkeys(redirect_uris))
    _check_client(settings, name, public, grants, scopes, audiences, access_token_ttl)
    _check_sign_in(grants, uris, consent)
    if public and can_introspect:  # RFC 7662 §2.1: the caller must authenticate
        raise AdminError("a public client cannot introspect: /introspect needs a client secret")
    secret = None if public else new_client_secret()
    client = Client(
        client_id=new_client_id(),
        name=name,
        secret_hash=None if secret is None else token_digest(secret),
        grant_types=frozenset(grants),
        scopes=tuple(dict.fromkeys(scopes)),
        audiences=tuple(dict.fromkeys(audiences)),
        can_introspect=can_introspect,
        access_token_ttl=access_token_ttl,
        created_at=now,
        redirect_uris=uris,
        consent=consent,
    )
    await client_store.create_client(db, client)
    return NewClient(client, secret)


def _check_client(
    settings: Settings,
    name: str,
    public: bool,
    grants: Sequence[str],
    scopes: Sequence[str],
    audiences: Sequence[str],
    access_token_ttl: int | None,
) -> None:
    if not name.strip() or len(name) > 255 or not name.isprintable():
        raise AdminError("client name must be 1-255 printable characters")
    for grant in grants:
        if grant not in GRANT_TYPES:
            raise AdminError(f"unknown grant {grant!r}; choose from {', '.join(GRANT_TYPES)}")
    if public and "client_credentials" in grants:
        raise AdminError("a public client cannot use the client_credentials grant")
    for scope in scopes:
        if not SCOPE_TOKEN.match(scope):
            raise AdminError(f"{scope!r} is not a valid scope (RFC 6749 §3.3)")
        if settings.scopes and scope not in settings.scopes:
            raise AdminError(f"scope {scope!r} is not one of the configured SCOPES")
    for audience in audiences:
        if not audience or not SCOPE_TOKEN.match(audience):
            raise AdminError(f"{audience!r} is not a valid audience (no spaces or quotes)")
    if access_token_ttl is not None and not 1 <= access_token_ttl <= settings.access_token_ttl:
        raise AdminError(
            f"access token TTL must be between 1 and ACCESS_TOKEN_TTL ({settings.access_token_ttl})"
        )


def _check_sign_in(grants: Sequence[str], redirect_uris: Sequence[str], consent: bool) -> None:
    """SPEC "Command line": `--grant authorization_code` needs at least one redirect URI, and a
    URI that breaks the rules of /authorize (clients/redirect_uris.py) is refused with one line
    naming it. Redirect URIs and --consent mean nothing without that grant: refused too, since
    they are most likely a forgotten `--grant authorization_code`."""
    for uri in redirect_uris:
        problem = redirect_uri_problem(uri)
        if problem is not None:
            raise AdminError(f"redirect URI {_shown(uri)}: {problem}")
    if "authorization_code" in grants:
        if not redirect_uris:
            raise AdminError("the authorization_code grant needs at least one --redirect-uri")
        return
    if redirect_uris:
        raise AdminError("--redirect-uri needs --grant authorization_code (sign-in at /authorize)")
    if consent:
        raise AdminError("--consent needs --grant authorization_code (sign-in at /authorize)")


def _shown(uri: str) -> str:
    """The URI as a one-line quoted string, cut short if it is long."""
    if len(uri) > SHOWN_URI_LENGTH:
        uri = uri[: SHOWN_URI_LENGTH - 1] + "…"
    return repr(uri)


async def get_client(db: Database, client_id: str) -> Client:
    client = await client_store.get_client(db, client_id)
    if client is None:
        raise NotFound(f"no such client: {client_id!r}")
    return client


async def update_client(
    db: Database, settings: Settings, client_id: str, change: client_store.ClientUpdate
) -> Client:
    """Change the fields given, checked as `create_client` checks them, against the client as
    it will be. Whether it is public never changes; the sign-in fields that the rules tie
    together (grants, redirect URIs, consent) are written only if nobody changed them since
    they were checked."""
    current = await get_client(db, client_id)
    grants = tuple(sorted(change.grant_types or current.grant_types))
    uris = current.redirect_uris if change.redirect_uris is None else change.redirect_uris
    consent = current.consent if change.consent is None else change.consent
    ttl = change.access_token_ttl or None  # 0: back to ACCESS_TOKEN_TTL
    _check_client(
        settings,
        current.name if change.name is None else change.name,
        current.is_public,
        grants,
        change.scopes or (),
        change.audiences or (),
        ttl,
    )
    _check_sign_in(grants, uris, consent)
    if current.is_public and change.can_introspect:
        raise AdminError("a public client cannot introspect: /introspect needs a client secret")
    updated = await client_store.update_client(db, client_id, change, current)
    if updated is None:
        await get_client(db, client_id)  # NotFound, or else:
        raise AdminError(f"client {client_id!r} was changed meanwhile; run the command again")
    return updated


async def rotate_client_secret(
    db: Database, client_id: str, *, revoke_sessions: bool, now: datetime
) -> tuple[str, int]:
    """A new secret for a confidential client (shown once, stored as its digest) and the number
    of sessions revoked with it (`revoke_sessions`)."""
    secret = new_client_secret()
    revoked = await client_store.rotate_secret(
        db, client_id, token_digest(secret), revoke_sessions=revoke_sessions, now=now
    )
    if revoked is None:
        await get_client(db, client_id)  # NotFound, or else:
        raise AdminError(f"client {client_id!r} is public: it has no secret to rotate")
    return secret, revoked


async def delete_client(db: Database, client_id: str) -> None:
    if not await client_store.delete_client(db, client_id):
        raise NotFound(f"no such client: {client_id!r}")
