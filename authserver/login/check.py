"""The one password check: the password grant (RFC 6749 §4.3) and the sign-in page of
`/authorize` both prove a user's password here, so both get exactly the same rules.

1. The login limits decide first (login/limits.py): a refused attempt costs the server reads
   only and is answered "locked" with the seconds to wait; an allowed one is counted as a
   failure before the password is checked, so concurrent guesses cannot exceed the limit.
2. argon2id runs in a thread; an unknown user is checked against a dummy hash, and a failed
   check of a stored hash not at today's parameters lasts as long as one that is
   (login/passwords.py), so unknown user, wrong password and disabled user cost the same,
   whatever is stored, and give the same answer (`BadCredentials`).
   The reason is recorded for operators only (audit `login.failure`).
3. A right password takes the attempt back off the counters and upgrades a hash made with older
   argon2 parameters.
4. Whatever the login starts (a refresh-token family, a sign-in session) is written by
   `start_login`, conditional on the user still holding the verified hash and being enabled
   (security review, finding 1): a password change or disable that commits during the check
   leaves nothing alive.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from authserver.login.limits import limit_key
from authserver.models import User
from authserver.observability.audit import AuditEvent, DetailValue, record
from authserver.services import Services
from authserver.store import login_failures, users
from authserver.store.login_failures import Attempt
from authserver.store.refresh import CredentialsChanged

T = TypeVar("T")
MAX_USERNAME_LENGTH = 255


class LoginLocked(Exception):
    """The login limits refuse the attempt (429 at /token, a message on the sign-in page)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class BadCredentials(Exception):
    """Unknown user, wrong password, disabled user, or credentials changed during the check:
    one answer for all (SPEC: indistinguishable in body and timing)."""


@dataclass(frozen=True)
class LoginAttempt:
    """Who asks to log in, through which client, from where."""

    username: str
    password: str = field(repr=False)
    client_id: str
    client_ip: str  # the address the limits count (TRUSTED_PROXIES applied)
    now: datetime
    via: str | None = None  # "sign_in_page" for /authorize's page; None: the password grant


@dataclass(frozen=True)
class VerifiedLogin:
    """A password proven right: `start_login` may now record what the login starts."""

    attempt: LoginAttempt
    user: User
    verified_hash: str = field(repr=False)  # the stored hash the password was checked against


async def check_password(svc: Services, attempt: LoginAttempt) -> VerifiedLogin:
    """Steps 1-3 above; raises LoginLocked or BadCredentials."""
    if len(attempt.username) > MAX_USERNAME_LENGTH:
        raise BadCredentials
    counted_as = limit_key(attempt.client_ip)  # an IPv6 client is its /64
    decision = await login_failures.begin_attempt(
        svc.db, attempt.username, counted_as, svc.lockout, attempt.now
    )
    if decision.retry_after is not None:  # writes nothing: one audit row per lock, not per try
        svc.metrics.login_refused.inc()
        raise LoginLocked(decision.retry_after)

    user = await users.get_user(svc.db, attempt.username)
    started = time.perf_counter()
    valid = await svc.passwords.verify(user.password_hash if user else None, attempt.password)
    svc.metrics.password_hash_seconds.observe(time.perf_counter() - started)
    if user is None or not valid or user.disabled:
        reason = "unknown_user" if user is None else "disabled" if user.disabled else "password"
        subject = None if user is None else str(user.id)
        await audit_login(svc, attempt, "login.failure", "failure", subject, reason=reason)
        await _audit_locks(svc, attempt, subject, decision)
        raise BadCredentials  # the attempt stays counted as a failure

    await login_failures.attempt_succeeded(
        svc.db, attempt.username, counted_as, decision, svc.lockout, attempt.now
    )
    verified_hash = user.password_hash
    if svc.passwords.needs_rehash(verified_hash):
        new_hash = await svc.passwords.hash(attempt.password)
        if await users.rehash_password(svc.db, user.id, verified_hash, new_hash):
            verified_hash = new_hash
    return VerifiedLogin(attempt, user, verified_hash)


async def start_login(
    svc: Services, login: VerifiedLogin, start: Callable[[str], Awaitable[T]]
) -> T:
    """Run `start(password_hash)`, a store write that applies only while the user row holds
    `password_hash` and is enabled (raising CredentialsChanged otherwise).

    The one case where the stored hash changes without a credential change is a concurrent
    login's rehash (new argon2 parameters) of the same password: then the password is checked
    once more against the hash now stored, and `start` tried with that one. Anything else is
    BadCredentials, recorded as `login.failure` with reason `credentials_changed`.
    """
    try:
        return await start(login.verified_hash)
    except CredentialsChanged:
        current = await users.get_user(svc.db, login.user.username)
        if (
            current is not None
            and current.id == login.user.id
            and not current.disabled
            and current.password_hash != login.verified_hash
            and await svc.passwords.verify(current.password_hash, login.attempt.password)
        ):
            try:
                return await start(current.password_hash)
            except CredentialsChanged:
                pass
    subject = str(login.user.id)
    await audit_login(
        svc, login.attempt, "login.failure", "failure", subject, reason="credentials_changed"
    )
    raise BadCredentials


async def audit_login(
    svc: Services,
    attempt: LoginAttempt,
    event: str,
    outcome: str,
    subject: str | None = None,
    **detail: DetailValue,
) -> None:
    """The audit record of a login attempt. The reason for a failure is for operators only:
    the client sees the same answer, after the same work, whatever it is. An attempt on the
    sign-in page says so (`via`); one through the password grant carries no `via`.

    The username is kept only when it names a user (`subject`, the user's id, is known): what a
    client types for a user that does not exist may be a password typed into the wrong field,
    or a stranger's e-mail address, and has no use worth keeping it for AUDIT_RETENTION_DAYS
    (security review, finding 7). The address, the client and the reason are kept.
    """
    if attempt.via is not None:
        detail = {**detail, "via": attempt.via}
    entry = AuditEvent(
        event,
        outcome,
        actor=attempt.username if subject is not None else None,
        client_id=attempt.client_id,
        ip=attempt.client_ip,
        subject=subject,
        detail=detail,
    )
    await record(svc.db, entry, attempt.now)


async def _audit_locks(
    svc: Services, attempt: LoginAttempt, subject: str | None, decision: Attempt
) -> None:
    """The one `login.locked` row of a lock: written by the failure that set it. The attempts
    refused while it runs are not recorded one by one (they cost an attacker nothing)."""
    if decision.locks_counter_for is not None:
        locked = "username_ip" if decision.from_known_ip else "username"
        seconds = decision.locks_counter_for
        await audit_login(
            svc, attempt, "login.locked", "denied", subject, locked=locked, seconds=seconds
        )
    if decision.blocks_ip_for is not None:
        seconds = decision.blocks_ip_for
        await audit_login(
            svc, attempt, "login.locked", "denied", subject, locked="ip", seconds=seconds
        )
