"""The audit events of /authorize (observability/audit.py EVENTS): a code issued, consent given
or declined, a logout. Each is written once per thing that happened, never per refused request
(security review, finding 2: what costs a client nothing writes no row)."""

from __future__ import annotations

from datetime import datetime

from authserver.models import LoginSession
from authserver.observability.audit import AuditEvent, DetailValue, record
from authserver.services import Services


async def audit_session_event(
    svc: Services,
    event: str,
    outcome: str,
    *,
    session: LoginSession,
    client_id: str | None,
    ip: str,
    now: datetime,
    **detail: DetailValue,
) -> None:
    """An event of a signed-in person: actor their username, subject their user id."""
    entry = AuditEvent(
        event,
        outcome,
        actor=session.username,
        client_id=client_id,
        ip=ip,
        subject=str(session.user_id),
        detail={"session": str(session.id), **detail},
    )
    await record(svc.db, entry, now)
