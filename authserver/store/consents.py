"""Consent remembered per user and client (clients registered with --consent): the scopes the
user approved, as one space-separated set. A request within it asks no question; a wider one
shows the consent page again, and its approval widens the set (authorize/steps.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from authserver.store.db import Database
from authserver.store.dialect import Dialect
from authserver.store.tables import consents


async def remembered_scope(db: Database, user_id: uuid.UUID, client_id: str) -> str | None:
    """The scopes the user approved for the client, or None if they never did."""
    query = select(consents.c.scope).where(
        consents.c.user_id == user_id, consents.c.client_id == client_id
    )
    async with db.read() as conn:
        scope: str | None = (await conn.execute(query)).scalar_one_or_none()
    return scope


async def remember(
    conn: AsyncConnection,
    dialect: Dialect,
    *,
    user_id: uuid.UUID,
    client_id: str,
    scope: str,
    now: datetime,
) -> None:
    """Store `scope` (the remembered set already widened by the caller) as the approval.

    Two approvals of different scopes racing for one user and client may keep only the last:
    the cost is one more consent page later, never a scope the user did not approve.
    """
    statement = dialect.insert(consents).values(
        user_id=user_id, client_id=client_id, scope=scope, granted_at=now, updated_at=now
    )
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[consents.c.user_id, consents.c.client_id],
            set_={"scope": statement.excluded.scope, "updated_at": now},
        )
    )
