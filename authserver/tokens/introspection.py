"""Token introspection (RFC 7662 §2.2): a token in, its claims or `{"active": false}` out.

Access tokens are read by authserver.verify's `read_access_token`, the checks a resource
server's TokenVerifier makes (RFC 9068 §4) — RS256 only, `typ: at+jwt`, our issuer, a key we
publish (retired-but-published keys included), not expired (no leeway) — and then checked against
what only the server knows: a revoked `jti`, a revoked refresh-token family (`sid`), a disabled
user, a deleted client. Refresh tokens are looked up by their SHA-256.
Every other input — malformed, foreign, expired, revoked, rotated — is simply inactive.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from authserver.clients.policy import audiences
from authserver.keys.ring import KeyRing
from authserver.services import Services
from authserver.store import introspection as store
from authserver.store.clients import get_client
from authserver.tokens.access import audience_claim
from authserver.tokens.opaque import REFRESH_TOKEN_PREFIX, token_digest
from authserver.verify import AccessTokenClaims, InvalidToken, read_access_token

INACTIVE: dict[str, Any] = {"active": False}
MAX_JTI_LENGTH = 64  # revoked_access_tokens.jti


def verify_access_token(
    keys: KeyRing, issuer: str, token: str, now: datetime
) -> AccessTokenClaims | None:
    """The claims of a valid, unexpired access token signed by one of our published keys, read
    by the same `read_access_token` resource servers use; None for anything else. No database
    access: what the JWKS alone can tell."""
    if not looks_like_access_token(token):
        return None
    try:
        claims = read_access_token(token, keys.verify_keys, issuer=issuer, now=now.timestamp())
    except InvalidToken:
        return None
    if len(claims.jti) > MAX_JTI_LENGTH or not _is_uuid(claims.sid):
        return None
    return claims


def _is_uuid(sid: str | None) -> bool:
    """`sid`, when present, is a family id (a UUID)."""
    if sid is None:
        return True
    try:
        uuid.UUID(sid)
    except ValueError:
        return False
    return True


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
    family_id = None if claims.sid is None else uuid.UUID(claims.sid)
    state = await store.access_token_state(
        svc.db, jti=claims.jti, client_id=claims.client_id, family_id=family_id
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
            "aud": claims.claims["aud"],  # as the token carries it: a string or an array
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
