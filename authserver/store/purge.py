"""`authserver tokens purge`: delete rows that can no longer affect any decision.

Safe while serving: every batch is one short DELETE of at most `batch_size` rows (its own
transaction), whose WHERE clause repeats the eligibility condition outside the batch subquery,
so PostgreSQL re-checks it on any row a concurrent request changed meanwhile (READ COMMITTED
re-evaluates the outer WHERE on the new row version; the subquery's choice is not re-checked).

What goes (`now` is the purge's start; nothing live is ever eligible):
- refresh tokens past their expiry (rotated tokens are kept until then: reuse detection needs
  them), and every token of a family revoked more than REFRESH_TOKEN_TTL ago;
- families revoked more than REFRESH_TOKEN_TTL ago, or past their absolute expiry by more than
  ACCESS_TOKEN_TTL (their last access tokens, which carry the family as `sid`, have expired by
  then, so introspection never misses the family); the token passes have taken their tokens;
- revoked access tokens (`jti`s) past the token's own expiry;
- login-failure rows equivalent to no row at all (login/limits.py `is_reset`): a username,
  or a (username, known IP) pair, with no lock running and either nothing since its last success
  (failures = 0, lock_seconds = 0) or quiet for LOGIN_FAILURE_RESET_SECONDS (its last failure
  and its last lock's end that long ago); and an IP whose window has ended or holds no failure;
- known IPs whose last success is LOGIN_KNOWN_IP_DAYS or more ago (all of them when it is 0):
  they no longer let an attempt past a username lock;
- audit events older than AUDIT_RETENTION_DAYS (none when it is 0: kept for ever);
- sign-in through /authorize: authorization codes past their expiry that no family links to
  (a used code is kept while the family it started exists, so a late replay still revokes it;
  run after the family pass, whose deletions unlink their codes), login sessions that ended or
  expired (their codes are unlinked, their pending requests go with them), and pending
  authorization requests past their expiry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, FromClause, Table, delete, exists, false, select, tuple_

from authserver.settings import Settings
from authserver.store.db import Database
from authserver.store.tables import (
    audit_events,
    authorization_codes,
    authorization_requests,
    login_ip_failures,
    login_known_ips,
    login_sessions,
    login_user_failures,
    login_user_ip_failures,
    refresh_families,
    refresh_tokens,
    revoked_access_tokens,
)

DEFAULT_BATCH_SIZE = 1000

Condition = Callable[[FromClause], ColumnElement[bool]]  # eligibility, for a table or alias


@dataclass(frozen=True)
class PurgePolicy:
    refresh_token_ttl: int
    access_token_ttl: int
    login_ip_window_seconds: int
    login_known_ip_days: int
    login_failure_reset_seconds: int
    audit_retention_days: int

    @classmethod
    def from_settings(cls, settings: Settings) -> PurgePolicy:
        return cls(
            settings.refresh_token_ttl,
            settings.access_token_ttl,
            settings.login_ip_window_seconds,
            settings.login_known_ip_days,
            settings.login_failure_reset_seconds,
            settings.audit_retention_days,
        )


@dataclass(frozen=True)
class PurgeCounts:
    """Rows deleted, per table."""

    refresh_tokens: int = 0
    refresh_families: int = 0
    revoked_access_tokens: int = 0
    login_user_failures: int = 0
    login_ip_failures: int = 0
    login_user_ip_failures: int = 0
    login_known_ips: int = 0
    audit_events: int = 0
    authorization_codes: int = 0
    login_sessions: int = 0
    authorization_requests: int = 0

    def items(self) -> list[tuple[str, int]]:
        return [(field.name, getattr(self, field.name)) for field in fields(self)]


async def purge(
    db: Database, policy: PurgePolicy, now: datetime, *, batch_size: int = DEFAULT_BATCH_SIZE
) -> PurgeCounts:
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    revoked_before = now - timedelta(seconds=policy.refresh_token_ttl)
    expired_before = now - timedelta(seconds=policy.access_token_ttl)
    window_started_before = now - timedelta(seconds=policy.login_ip_window_seconds)
    known_until = now - timedelta(days=max(policy.login_known_ip_days, 0))
    quiet_since = now - timedelta(seconds=policy.login_failure_reset_seconds)
    audit_before = now - timedelta(days=policy.audit_retention_days)

    def expired_token(t: FromClause) -> ColumnElement[bool]:
        return t.c.expires_at <= now

    def token_of_long_revoked_family(t: FromClause) -> ColumnElement[bool]:
        family = refresh_families
        return exists(
            select(1).where(family.c.id == t.c.family_id, family.c.revoked_at <= revoked_before)
        )

    def dead_family(t: FromClause) -> ColumnElement[bool]:
        """No `NOT EXISTS (its tokens)`: the two token passes, run first with the same `now`,
        have taken every token such a family had (a token never outlives its family, and a
        revoked or expired family gets no new one). That anti-join made PostgreSQL hash the
        whole token table for every batch: 14 s for 120,000 families (bench/purge.py)."""
        return (t.c.revoked_at <= revoked_before) | (t.c.expires_at <= expired_before)

    def expired_jti(t: FromClause) -> ColumnElement[bool]:
        return t.c.expires_at <= now

    def reset_counter(t: FromClause) -> ColumnElement[bool]:
        no_lock_running = t.c.locked_until.is_(None) | (t.c.locked_until <= now)
        nothing_since_success = (t.c.failures == 0) & (t.c.lock_seconds == 0)
        quiet = (t.c.last_failure_at <= quiet_since) & (
            t.c.locked_until.is_(None) | (t.c.locked_until <= quiet_since)
        )
        return no_lock_running & (nothing_since_success | quiet)

    def old_audit_event(t: FromClause) -> ColumnElement[bool]:
        if policy.audit_retention_days <= 0:
            return false()
        return t.c.occurred_at < audit_before

    def expired_known_ip(t: FromClause) -> ColumnElement[bool]:
        return t.c.last_success_at <= known_until

    def ended_ip_window(t: FromClause) -> ColumnElement[bool]:
        return (t.c.failures == 0) | (t.c.window_started_at <= window_started_before)

    def dead_code(t: FromClause) -> ColumnElement[bool]:
        return (t.c.expires_at <= now) & t.c.family_id.is_(None)

    def ended_session(t: FromClause) -> ColumnElement[bool]:
        return t.c.ended_at.is_not(None) | (t.c.expires_at <= now)

    def expired_request(t: FromClause) -> ColumnElement[bool]:
        return t.c.expires_at <= now

    tokens = await _delete_in_batches(db, refresh_tokens, "id", expired_token, batch_size)
    tokens += await _delete_in_batches(
        db, refresh_tokens, "id", token_of_long_revoked_family, batch_size
    )
    families = await _delete_in_batches(db, refresh_families, "id", dead_family, batch_size)
    return PurgeCounts(
        refresh_tokens=tokens,
        refresh_families=families,
        authorization_codes=await _delete_in_batches(
            db, authorization_codes, "id", dead_code, batch_size
        ),
        login_sessions=await _delete_in_batches(
            db, login_sessions, "id", ended_session, batch_size
        ),
        authorization_requests=await _delete_in_batches(
            db, authorization_requests, "id", expired_request, batch_size
        ),
        revoked_access_tokens=await _delete_in_batches(
            db, revoked_access_tokens, "jti", expired_jti, batch_size
        ),
        login_user_failures=await _delete_in_batches(
            db, login_user_failures, "username", reset_counter, batch_size
        ),
        login_ip_failures=await _delete_in_batches(
            db, login_ip_failures, "ip", ended_ip_window, batch_size
        ),
        login_user_ip_failures=await _delete_in_batches(
            db, login_user_ip_failures, ("username", "ip"), reset_counter, batch_size
        ),
        login_known_ips=await _delete_in_batches(
            db, login_known_ips, ("username", "ip"), expired_known_ip, batch_size
        ),
        audit_events=await _delete_in_batches(db, audit_events, "id", old_audit_event, batch_size),
    )


async def _delete_in_batches(
    db: Database, table: Table, key: str | tuple[str, ...], eligible: Condition, batch_size: int
) -> int:
    """DELETE … WHERE key IN (up to batch_size eligible keys) AND eligible, until none is left.

    The batch is chosen from an alias so that it is not correlated with the DELETE's own table.
    A composite key is compared as a row value, `(a, b) IN (SELECT a, b …)` (SQLite ≥ 3.15).
    """
    batch = table.alias("batch")
    names = (key,) if isinstance(key, str) else key
    chosen = select(*(batch.c[name] for name in names)).where(eligible(batch)).limit(batch_size)
    target = table.c[names[0]] if len(names) == 1 else tuple_(*(table.c[n] for n in names))
    statement = delete(table).where(target.in_(chosen), eligible(table))
    total = 0
    while True:
        async with db.statement() as conn:
            deleted = (await conn.execute(statement)).rowcount
        total += deleted
        if deleted == 0:
            return total
