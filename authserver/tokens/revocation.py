"""Token revocation (RFC 7009 §2): what POST /revoke and `tokens revoke --user` do.

A refresh token is revoked with its whole family (every token of the login, RFC 7009 §2.1
"SHOULD also invalidate … the same authorization grant"); an access token by recording its `jti`
until it expires, which introspection sees and offline verifiers cannot. Revoking an access
token leaves its family alone. A client can revoke only its own tokens; anything else —
another client's token, an unknown or malformed token — has no effect and gets the same 200.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from authserver.models import Client
from authserver.observability.audit import AuditEvent, record
from authserver.services import Services
from authserver.store import revocation as store
from authserver.store.db import Database
from authserver.tokens.introspection import looks_like_access_token, verify_access_token
from authserver.tokens.opaque import token_digest


@dataclass(frozen=True)
class Revocation:
    """What one revocation did; the HTTP client is told none of it (RFC 7009 §2.2)."""

    kind: str  # "refresh_token", "access_token" or "user_sessions"
    subject: str | None  # the family id, the jti, or the username; never a token
    count: int  # families or tokens this call revoked; 0 = no effect


async def revoke_token(svc: Services, client: Client, token: str, now: datetime) -> Revocation:
    """RFC 7009 §2.1. `token_type_hint` is not needed: an access token (a JWS, two dots) and a
    refresh token (no dot) cannot be confused, so the search always covers both kinds."""
    if looks_like_access_token(token):
        claims = verify_access_token(svc.keys, svc.settings.issuer, token, now)
        if claims is None or claims.client_id != client.client_id:
            return Revocation("access_token", None, 0)  # expired, foreign, not ours
        recorded = await store.record_revoked_access_token(
            svc.db,
            jti=claims.jti,
            client_id=client.client_id,
            now=now,
            expires_at=datetime.fromtimestamp(claims.exp, UTC),
        )
        return Revocation("access_token", claims.jti, int(recorded))
    family_id = await store.revoke_family_of_token(
        svc.db, token_hash=token_digest(token), client_id=client.client_id, now=now
    )
    return Revocation(
        "refresh_token", None if family_id is None else str(family_id), int(bool(family_id))
    )


async def token_revoked(
    db: Database, revocation: Revocation, *, actor: str, ip: str | None, now: datetime
) -> None:
    """The audit record of a revocation that took effect (`token.revoked` from /revoke,
    `tokens.user_revoked` from the CLI). Revocations without effect are not recorded: they are
    indistinguishable from probes with made-up tokens."""
    if revocation.count == 0:
        return
    if revocation.kind == "user_sessions":
        event = AuditEvent(
            "tokens.user_revoked",
            "success",
            actor=actor,
            subject=revocation.subject,
            detail={"sessions": revocation.count},
        )
    else:
        event = AuditEvent(
            "token.revoked",
            "success",
            actor=actor,
            client_id=actor,
            ip=ip,
            subject=revocation.subject,
            detail={"kind": revocation.kind},
        )
    await record(db, event, now)
