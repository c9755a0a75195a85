"""`audit_events` rows: append and read. The trail is append-only: no code path updates a row,
and only `tokens purge` deletes, rows older than AUDIT_RETENTION_DAYS (store/purge.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, String, bindparam, insert, select

from authserver.store.db import Database
from authserver.store.dialect import Prepared
from authserver.store.tables import UTCDateTime, audit_events


@dataclass(frozen=True)
class AuditRecord:
    id: int
    occurred_at: datetime
    event: str
    outcome: str
    actor: str | None
    client_id: str | None
    ip: str | None
    subject: str | None
    detail: dict[str, Any]


# Written on every sign-in and every code /authorize issues: a Prepared statement (one round
# trip on the driver, store/dialect.py).
_COLUMNS = ("event", "outcome", "actor", "client_id", "ip", "subject", "detail")
_APPEND = Prepared(
    insert(audit_events)
    .values(
        occurred_at=bindparam("occurred_at", type_=UTCDateTime),
        **{name: bindparam(name, type_=String) for name in _COLUMNS},
    )
    .returning(audit_events.c.id)
)


async def append(db: Database, fields: Mapping[str, Any], now: datetime) -> None:
    values = {name: fields.get(name) for name in _COLUMNS}
    detail = values["detail"]
    values["detail"] = json.dumps(dict(detail), sort_keys=True) if detail else None
    await db.fetch_row(_APPEND, {**values, "occurred_at": now})


async def latest(db: Database, limit: int) -> list[AuditRecord]:
    """The last `limit` events, oldest first."""
    query = select(audit_events).order_by(audit_events.c.id.desc()).limit(limit)
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    return [_record(row._mapping) for row in reversed(rows)]


async def after(db: Database, last_id: int, limit: int = 1000) -> list[AuditRecord]:
    """Events newer than `last_id`, oldest first (for `audit tail --follow`)."""
    query = (
        select(audit_events)
        .where(audit_events.c.id > last_id)
        .order_by(audit_events.c.id)
        .limit(limit)
    )
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    return [_record(row._mapping) for row in rows]


def _record(row: RowMapping) -> AuditRecord:
    values = dict(row)
    values["detail"] = json.loads(values["detail"]) if values["detail"] else {}
    return AuditRecord(**values)
