"""The audit trail: an append-only record of security-relevant events (who, what, when, from
where, with what outcome), in the `audit_events` table so every process and host writes to one
place. Read it with `authserver audit tail [--follow]`. `tokens purge` deletes rows older than
AUDIT_RETENTION_DAYS (default 90).

Bounded by design: a request that costs the client nothing (a login refused by the limits) writes
no row; the failure that sets a lock writes one `login.locked` row for the whole lock.

Never a secret: call sites pass usernames, client ids, kids, family and user ids, IPs and short
reason codes — never a password, token, token digest, client secret or key material. Routine
successful refreshes are not recorded (that is the hot path, and the metrics count them); every
refresh that is refused for reuse or a wrong client is.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from authserver.store import audit as audit_store
from authserver.store.db import Database

# What each event means; `outcome` is success, failure or denied.
EVENTS: Mapping[str, str] = {
    "login.success": "password grant or sign-in page accepted (actor: username; subject: user "
    "id); from the sign-in page of /authorize with detail via=sign_in_page and the session id",
    "login.failure": "password grant or sign-in page refused: unknown user (the name tried is "
    "not kept), wrong password or disabled user (detail: reason; via=sign_in_page from the "
    "sign-in page)",
    "login.locked": "a failed password attempt locked a username, a (username, known IP) pair "
    "or an IP (detail: locked, seconds); the attempts refused during the lock are not recorded",
    "consent.granted": "a user approved a client's scopes on the consent page (detail: scope)",
    "consent.denied": "a user declined on the consent page; the app gets access_denied",
    "code.issued": "/authorize issued an authorization code (actor: username; subject: user id; "
    "detail: scope, session)",
    "code.replay_detected": "an authorization code was presented again by its client: the "
    "refresh-token family its exchange started is revoked (one row per code)",
    "logout": "a user ended their browser login session (POST /logout); apps keep their tokens",
    "refresh.reuse_detected": "a rotated or revoked refresh token was presented; family revoked",
    "refresh.wrong_client": "a refresh token was presented by another client; nothing revoked",
    "token.revoked": "a client revoked one of its tokens at /revoke (RFC 7009)",
    "tokens.user_revoked": "an operator ended every session of a user",
    "tokens.purged": "an operator deleted expired rows",
    "key.rotated": "signing keys rotated (actor: operator, or `server` for automatic rotation)",
    "key.revoked": "a signing key was revoked",
    "key.rekeyed": "an operator re-encrypted the private signing keys under KEY_ENCRYPTION_KEY "
    "(subject: its KEK id; detail: keys, previous_kek_ids)",
    "user.created": "an operator created a user",
    "user.disabled": "an operator disabled a user (their sessions end)",
    "user.enabled": "an operator enabled a disabled user again",
    "user.deleted": "an operator deleted a user and their sessions (detail: username)",
    "user.unlocked": "an operator lifted a user's login locks (detail: counters cleared)",
    "user.password_changed": "an operator set a user's password (their sessions end)",
    "client.created": "an operator registered a client",
    "client.updated": "an operator changed a client (detail: the new value of each field changed)",
    "client.secret_rotated": "an operator gave a client a new secret; the old one stopped working "
    "(detail: sessions_revoked)",
    "client.deleted": "an operator deleted a client and its tokens",
}

DetailValue = str | int | bool | None


@dataclass(frozen=True)
class AuditEvent:
    event: str  # a key of EVENTS
    outcome: str  # success | failure | denied
    actor: str | None = None  # username, `cli:<os user>`, or `server`
    client_id: str | None = None
    ip: str | None = None
    subject: str | None = None  # what was acted on: user id, kid, family id, client id
    detail: Mapping[str, DetailValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise ValueError(f"unknown audit event {self.event!r}")
        if self.outcome not in ("success", "failure", "denied"):
            raise ValueError(f"unknown audit outcome {self.outcome!r}")


async def record(db: Database, event: AuditEvent, now: datetime) -> None:
    """Append one event (its own statement: it commits even when the request then fails)."""
    await audit_store.append(db, event.__dict__, now)


def operator() -> str:
    """The actor of a CLI command: `cli:` and the operating-system user who ran it."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry for the uid (some containers)
        return "cli:unknown"
