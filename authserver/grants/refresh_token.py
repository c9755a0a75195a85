"""RFC 6749 §6: the refresh_token grant, with rotation and reuse detection (RFC 9700 §4.14.2)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from authserver.clients.policy import allowed_scopes, parse_scope
from authserver.errors import invalid_grant, invalid_scope
from authserver.grants.base import GrantRequest, TokenResponse
from authserver.models import RefreshTokenRecord
from authserver.observability.audit import AuditEvent, DetailValue
from authserver.observability.audit import record as record_event
from authserver.services import Services
from authserver.store import refresh, rotation
from authserver.tokens.access import issue_access_token
from authserver.tokens.opaque import new_refresh_token, token_digest

log = logging.getLogger("authserver.refresh")

INVALID_REFRESH_TOKEN = "The refresh token is invalid, expired or revoked."  # noqa: S105


async def refresh_token_grant(svc: Services, req: GrantRequest) -> TokenResponse:
    """Every use rotates: the presented token is used up and a successor issued, in one atomic
    statement. A narrower `scope` narrows the access token only; the successor keeps the login's
    scope (§6). A failed refresh (invalid_scope, invalid_client) does not use the token up.

    The access token gets only scopes the client may have *today* (its scopes, within SCOPES
    when set): one the operator removed since the login is dropped when no `scope` is asked
    for, and invalid_scope when it is (security review, finding 6). The login keeps its scope,
    so a scope put back comes back.

    With REFRESH_REUSE_GRACE > 0, the immediately previous token presented within the window
    while its successor is unused gets a new pair instead (`refresh.rotate` decides atomically).

    Raises StaleClient, having written nothing, if the client changed since `req.client` was
    read (the caller authenticates afresh and tries again).
    """
    presented_hash = token_digest(req.required("refresh_token"))
    requested = req.optional("scope")
    narrowed = parse_scope(requested) if requested is not None else None
    allowed = allowed_scopes(req.client, svc.settings)
    if narrowed is not None:
        await _check_narrowing(svc, req, presented_hash, narrowed, allowed)

    successor = new_refresh_token()
    grant = await rotation.rotate(
        svc.db,
        old_hash=presented_hash,
        new_hash=token_digest(successor),
        client_id=req.client.client_id,
        now=req.now,
        token_ttl=svc.settings.refresh_token_ttl,
        grace=svc.settings.refresh_reuse_grace,
        client_version=req.client_version,
    )
    if grant is None:
        await _explain_refusal(svc, req, presented_hash)
        raise invalid_grant(INVALID_REFRESH_TOKEN)

    wanted = narrowed if narrowed is not None else grant.scope.split()
    scope = " ".join(name for name in wanted if name in allowed)  # allowed as of this request
    access = issue_access_token(
        svc.keys,
        svc.settings,
        req.client,
        subject=str(grant.user_id),
        scope=scope,
        family_id=grant.family_id,
        now=req.now,
    )
    return TokenResponse(access.token, access.expires_in, scope, successor)


async def _check_narrowing(
    svc: Services,
    req: GrantRequest,
    presented_hash: bytes,
    requested: list[str],
    allowed: tuple[str, ...],
) -> None:
    """§6: the requested scope must not include any scope not originally granted, nor (SPEC:
    "scope not allowed") one the client may no longer have.

    Checked before the rotation so an invalid_scope answer leaves the token usable, and only for
    a token the rotation would accept: one that is unknown, another client's, or dead (used, or
    revoked by a grace-window replay, outside what the window allows) is left to the rotation to
    refuse and, for reuse, to revoke its family (security review, finding 5).
    """
    scope = await rotation.rotatable_scope(
        svc.db,
        token_hash=presented_hash,
        client_id=req.client.client_id,
        now=req.now,
        grace=svc.settings.refresh_reuse_grace,
    )
    if scope is None:
        return
    if not set(requested) <= set(scope.split()):
        raise invalid_scope("The requested scope exceeds the scope originally granted.")
    if not set(requested) <= set(allowed):
        raise invalid_scope("The requested scope is not allowed.")


async def _explain_refusal(svc: Services, req: GrantRequest, presented_hash: bytes) -> None:
    """Work out why a token could not be rotated; on reuse, revoke its family.

    The answer to the client is the same invalid_grant whatever the reason.
    """
    record = await refresh.find_token(svc.db, presented_hash)
    if record is None:
        return
    if record.client_id != req.client.client_id:
        await _audit(svc, req, "refresh.wrong_client", record, owner_client_id=record.client_id)
        log.warning(
            "refresh token of another client presented: family=%s owner=%s client=%s ip=%s",
            record.family_id,
            record.client_id,
            req.client.client_id,
            req.client_ip,
        )
        return
    if record.rotated_at is None and record.revoked_at is None:
        return  # unused, but expired or its login ended: nothing more to revoke
    if (
        record.rotated_at is not None
        and record.revoked_at is None
        and _within_grace(svc, req, record.rotated_at)
        and await refresh.has_unused_successor(svc.db, presented_hash)
    ):
        # A replay that qualified for the grace window, refused only because a concurrent
        # replay of the same token took the successor first: the winner's pair stays valid.
        log.info(
            "refresh token replay lost a race with another replay: family=%s client=%s ip=%s",
            record.family_id,
            req.client.client_id,
            req.client_ip,
        )
        return
    # Used (rotated) or superseded (revoked by a replay): reuse.
    svc.metrics.refresh_reuse.inc()
    revoked = await refresh.revoke_family(
        svc.db, record.family_id, reason="reuse_detected", now=req.now
    )
    await _audit(svc, req, "refresh.reuse_detected", record, family_revoked=revoked)
    log.warning(
        "refresh token reuse detected, family revoked: family=%s client=%s ip=%s first=%s",
        record.family_id,
        req.client.client_id,
        req.client_ip,
        revoked,
    )


def _within_grace(svc: Services, req: GrantRequest, rotated_at: datetime) -> bool:
    grace = svc.settings.refresh_reuse_grace
    return grace > 0 and req.now - rotated_at < timedelta(seconds=grace)


async def _audit(
    svc: Services, req: GrantRequest, event: str, record: RefreshTokenRecord, **detail: DetailValue
) -> None:
    entry = AuditEvent(
        event,
        "denied",
        actor=req.client.client_id,
        client_id=req.client.client_id,
        ip=req.client_ip,
        subject=str(record.family_id),
        detail=detail,
    )
    await record_event(svc.db, entry, req.now)
