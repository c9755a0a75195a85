"""When a refresh token, a family or a login session still counts, written once as SQLAlchemy
expressions.

Rotation (store/rotation.py), its grace-window replay, and introspection
(store/introspection.py) all build their statements from these, on both databases, so "usable"
there and "active" here cannot drift apart. Likewise `live_session` is what /authorize accepts as
"signed in" (store/sessions.py) and what the code exchange requires (store/refresh.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, FromClause, and_, exists, select

from authserver.store.tables import refresh_families, users

fam = refresh_families


def live_family(family_id: ColumnElement[Any]) -> ColumnElement[bool]:
    """The family (the login) is not revoked and its user is not disabled. Aliased, so that it
    correlates only through `family_id`, also in a query that has the same tables in its FROM."""
    family, user = fam.alias("live_family"), users.alias("live_family_user")
    return exists(
        select(1)
        .select_from(family.join(user, user.c.id == family.c.user_id))
        .where(family.c.id == family_id, family.c.revoked_at.is_(None), user.c.disabled.is_(False))
    )


def usable_refresh_token(token: FromClause, now: ColumnElement[Any]) -> ColumnElement[bool]:
    """A refresh token that rotation accepts `now`: never used, not revoked (by a grace-window
    replay of its parent), not expired, in a live family of an enabled user."""
    return and_(
        token.c.rotated_at.is_(None),
        token.c.revoked_at.is_(None),
        token.c.expires_at > now,
        live_family(token.c.family_id),
    )


def replayable_refresh_token(
    token: FromClause, now: ColumnElement[Any], window_start: ColumnElement[Any]
) -> ColumnElement[bool]:
    """A refresh token whose rotation's response may have been lost (REFRESH_REUSE_GRACE): used
    after `window_start`, and otherwise as usable as above (the successor's state is the
    replay's own condition)."""
    return and_(
        token.c.rotated_at > window_start,
        token.c.revoked_at.is_(None),
        token.c.expires_at > now,
        live_family(token.c.family_id),
    )


def live_session(
    session: FromClause, user: FromClause, now: ColumnElement[Any] | datetime
) -> ColumnElement[bool]:
    """A login session that counts `now`: not ended (logout, password change, disable), not
    past SESSION_TTL, and its user enabled. `user` must be in the query's FROM (joined, not an
    EXISTS), so that a FOR SHARE lock covers the user row too."""
    return and_(
        session.c.ended_at.is_(None),
        session.c.expires_at > now,
        user.c.id == session.c.user_id,
        user.c.disabled.is_(False),
    )
