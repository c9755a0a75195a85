"""Token introspection (RFC 7662 §2.2): a token in, its claims or `{"active": false}` out.

Access tokens are checked the way a careful resource server would (RFC 9068 §4) — RS256 only,
`typ: at+jwt`, our issuer, a key we publish (retired-but-published keys included), not
expired — and then against what only the server knows: a revoked `jti`, a revoked refresh-token
family (`sid`), a disabled user, a deleted client. Refresh tokens are looked up by their SHA-256.
Every other input — malformed, foreign, expired, revoked, rotated — is simply inactive.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError

from authserver.clients.policy import audiences
from authserver.keys.ring import ALG, KeyRing
from authserver.services import Services
from authserver.store import introspection as store
from authserver.store.clients import get_client
from authserver.tokens.access import ACCESS_TOKEN_TYPE, audience_claim
from authserver.tokens.opaque import REFRESH_TOKEN_PREFIX, token_digest

INACTIVE: dict[str, Any] = {"active": False}
MAX_JTI_LENGTH = 64  # revoked_access_tokens.jti


@dataclass(frozen=True)
class AccessTokenClaims:
    """The claims of an access token this server signed, checked for shape and expiry."""

    iss: str
    sub: str
    aud: str | list[str]
    client_id: str
    scope: str
    iat: int
    exp: int
    jti: str
    sid: uuid.UUID | None  # the refresh-token family; None for client_credentials


def verify_access_token(
    keys: KeyRing, issuer: str, token: str, now: datetime
) -> AccessTokenClaims | None:
    """The claims of a valid, unexpired access token signed by one of our published keys.

    None for anything else. No database access: what the JWKS alone can tell.
    """
    if not looks_like_access_token(token):
        return None
    try:
        decoded = jwt.decode(token, keys.public_keys, algorithms=[ALG])
    except (JoseError, ValueError, TypeError, KeyError):
        return None
    header, claims = decoded.header, decoded.claims
    if header.get("alg") != ALG or header.get("typ") != ACCESS_TOKEN_TYPE:
        return None
    if not isinstance(header.get("kid"), str):
        return None
    parsed = _parse_claims(claims)
    if parsed is None or parsed.iss != issuer or parsed.exp <= now.timestamp():
        return None
    return parsed


def _parse_claims(claims: dict[str, Any]) -> AccessTokenClaims | None:
    strings = ("iss", "sub", "client_id", "scope", "jti")
    if not all(isinstance(claims.get(name), str) for name in strings):
        return None
    if not all(_is_int(claims.get(name)) for name in ("iat", "exp")):
        return None
    aud = claims.get("aud")
    if not (
        isinstance(aud, str) or (isinstance(aud, list) and all(isinstance(a, str) for a in aud))
    ):
        return None
    if len(claims["jti"]) > MAX_JTI_LENGTH:
        return None
    sid: uuid.UUID | None = None
    if "sid" in claims:
        try:
            sid = uuid.UUID(str(claims["sid"]))
        except ValueError:
            return None
    return AccessTokenClaims(
        iss=claims["iss"],
        sub=claims["sub"],
        aud=aud,
        client_id=claims["client_id"],
        scope=claims["scope"],
        iat=claims["iat"],
        exp=claims["exp"],
        jti=claims["jti"],
        sid=sid,
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def looks_like_access_token(token: str) -> bool:
    """A JWS compact serialization has exactly two dots; a refresh token has none."""
    return token.count(".") == 2


async def introspect(svc: Services, token: str, now: datetime) -> dict[str, Any]:
    """RFC 7662 §2.2: the response for `token`. `token_type_hint` is not needed: the two kinds
    cannot be confused (a JWS has two dots, a refresh token none), so the search is complete."""
    if looks_like_access_token(token):
        return await _introspect_access_token(svc, token, now)
    if token.startswith(REFRESH_TOKEN_PREFIX):
        return await _introspect_refresh_token(svc, token, now)
    return dict(INACTIVE)


async def _introspect_access_token(svc: Services, token: str, now: datetime) -> dict[str, Any]:
    claims = verify_access_token(svc.keys, svc.settings.issuer, token, now)
    if claims is None:
        return dict(INACTIVE)
    state = await store.access_token_state(
        svc.db, jti=claims.jti, client_id=claims.client_id, family_id=claims.sid
    )
    if not state.active:
        return dict(INACTIVE)
    if claims.sid is not None and str(state.user_id) != claims.sub:
        return dict(INACTIVE)  # cannot happen for a token we signed; never trust it if it did
    body: dict[str, Any] = {
        "active": True,
        "scope": claims.scope,
        "client_id": claims.client_id,
    }
    if state.username is not None:
        body["username"] = state.username
    body.update(
        {
            "sub": claims.sub,
            "aud": claims.aud,
            "iss": claims.iss,
            "exp": claims.exp,
            "iat": claims.iat,
            "token_type": "access_token",
        }
    )
    return body


async def _introspect_refresh_token(svc: Services, token: str, now: datetime) -> dict[str, Any]:
    record = await store.live_refresh_token(svc.db, token_digest(token), now)
    client = None if record is None else await get_client(svc.db, record.client_id)
    if record is None or client is None:
        return dict(INACTIVE)
    return {
        "active": True,
        "scope": record.scope,
        "client_id": record.client_id,
        "username": record.username,
        "sub": str(record.user_id),
        "aud": audience_claim(audiences(client, svc.settings)),  # what its access tokens get
        "iss": svc.settings.issuer,
        "exp": int(record.expires_at.timestamp()),
        "iat": int(record.issued_at.timestamp()),
        "token_type": "refresh_token",
    }
