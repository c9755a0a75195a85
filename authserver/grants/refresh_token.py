"""RFC 6749 §6: the refresh_token grant, with rotation and reuse detection (RFC 9700 §4.14.2)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from authserver.clients.policy import parse_scope
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

    With REFRESH_REUSE_GRACE > 0, the immediately previous token presented within the window
    while its successor is unused gets a new pair instead (`refresh.rotate` decides atomically).

    Raises StaleClient, having written nothing, if the client changed since `req.client` was
    read (the caller authenticates afresh and tries again).
    """
    presented_hash = token_digest(req.required("refresh_token"))
    requested = req.optional("scope")
    if requested is not None:
        await _check_narrowing(svc, req, presented_hash, parse_scope(requested))

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

    scope = " ".join(parse_scope(requested)) if requested is not None else grant.scope
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
    svc: Services, req: GrantRequest, presented_hash: bytes, requested: list[str]
) -> None:
    """§6: the requested scope must not include any scope not originally granted.

    Checked before the rotation so an invalid_scope answer leaves the token usable. Tokens that
    are not this client's, or already used (outside the grace window), are left to the rotation
    to refuse (and, for reuse, to revoke their family).
    """
    record = await refresh.find_token(svc.db, presented_hash)
    if record is None or record.client_id != req.client.client_id:
        return
    if record.rotated_at is not None and not _within_grace(svc, req, record.rotated_at):
        return
    if not set(requested) <= set(record.scope.split()):
        raise invalid_scope("The requested scope exceeds the scope originally granted.")


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
