"""RFC 6749 §4.3: the resource owner password credentials grant."""

from __future__ import annotations

import time

from authserver.clients import access_token_ttl, allowed_scopes, audiences, grant_scope
from authserver.errors import invalid_client, invalid_grant, invalid_request, too_many_attempts
from authserver.grants.base import GrantRequest, TokenResponse
from authserver.lockout import limit_key
from authserver.models import RefreshGrant, User
from authserver.observability.audit import AuditEvent, DetailValue, record
from authserver.services import Services
from authserver.store import login_failures, refresh, users
from authserver.store.login_failures import Attempt
from authserver.tokens import issue_access_token, new_refresh_token, token_digest

MAX_USERNAME_LENGTH = 255
BAD_CREDENTIALS = "Invalid username or password."


async def password_grant(svc: Services, req: GrantRequest) -> TokenResponse:
    """§4.3.2: check the credentials, then issue an access token and, if the client may use
    the refresh_token grant, a refresh token that starts a new family (the login).

    Unknown user, wrong password and disabled user give the same answer after the same argon2
    work, and all count as failures for the username's and the IP's login limits. The attempt
    is counted before the password is checked, so concurrent guesses cannot exceed the limit.
    From an IP the username logged in from before, the count is per (username, IP) instead
    (authserver/lockout.py); the lookup is by username, so an unknown user costs the same.
    """
    username = req.required("username")
    password = req.required("password")
    if len(username) > MAX_USERNAME_LENGTH:
        raise invalid_request("The username parameter is too long.")
    client, settings, db = req.client, svc.settings, svc.db
    scope = grant_scope(req.optional("scope"), allowed_scopes(client, settings))

    counted_as = limit_key(req.client_ip)  # an IPv6 client is its /64
    attempt = await login_failures.begin_attempt(db, username, counted_as, svc.lockout, req.now)
    if attempt.retry_after is not None:  # writes nothing: one audit row per lock, not per try
        svc.metrics.login_refused.inc()
        raise too_many_attempts(attempt.retry_after)

    user = await users.get_user(db, username)
    started = time.perf_counter()
    valid = await svc.passwords.verify(user.password_hash if user else None, password)
    svc.metrics.password_hash_seconds.observe(time.perf_counter() - started)
    if user is None or not valid or user.disabled:
        reason = "unknown_user" if user is None else "disabled" if user.disabled else "password"
        subject = None if user is None else str(user.id)
        await _audit(svc, req, "login.failure", "failure", username, subject, reason=reason)
        await _audit_locks(svc, req, username, subject, attempt)
        raise invalid_grant(BAD_CREDENTIALS)  # the attempt stays counted as a failure

    await login_failures.attempt_succeeded(db, username, counted_as, attempt, svc.lockout, req.now)
    verified_hash = user.password_hash
    if svc.passwords.needs_rehash(verified_hash):
        new_hash = await svc.passwords.hash(password)
        if await users.rehash_password(db, user.id, verified_hash, new_hash):
            verified_hash = new_hash

    refresh_token = new_refresh_token() if "refresh_token" in client.grant_types else None
    try:
        family = await _start_family(svc, req, user, verified_hash, password, scope, refresh_token)
    except refresh.CredentialsChanged:
        await _audit(
            svc,
            req,
            "login.failure",
            "failure",
            username,
            str(user.id),
            reason="credentials_changed",
        )
        raise invalid_grant(BAD_CREDENTIALS) from None
    except refresh.OwnerGone:
        raise invalid_client() from None  # deleted by an operator a moment ago
    await _audit(
        svc, req, "login.success", "success", username, str(user.id), sid=str(family.family_id)
    )
    ttl = access_token_ttl(client, settings)
    access_token = issue_access_token(
        svc.keys,
        issuer=settings.issuer,
        subject=str(user.id),
        audiences=audiences(client, settings),
        client_id=client.client_id,
        scope=scope,
        now=req.now,
        ttl=ttl,
        family_id=family.family_id,
    )
    return TokenResponse(access_token, ttl, scope, refresh_token)


async def _start_family(
    svc: Services,
    req: GrantRequest,
    user: User,
    verified_hash: str,
    password: str,
    scope: str,
    refresh_token: str | None,
) -> RefreshGrant:
    """Start the login's family, only while the user still has the hash just verified and is
    enabled (security review, finding 1: a password change or disable that commits during the
    argon2 check must not leave this login alive).

    The one case where the stored hash changes without a credential change is a concurrent
    login's rehash (new argon2 parameters) of the same password: then the password is checked
    once more against the hash now stored, and the family started on that one.
    """

    async def start(password_hash: str) -> RefreshGrant:
        return await refresh.start_family(
            svc.db,
            user_id=user.id,
            verified_password_hash=password_hash,
            client_id=req.client.client_id,
            scope=scope,
            token_hash=None if refresh_token is None else token_digest(refresh_token),
            now=req.now,
            token_ttl=svc.settings.refresh_token_ttl,
            family_max_age=svc.settings.refresh_family_max_age,
        )

    try:
        return await start(verified_hash)
    except refresh.CredentialsChanged:
        current = await users.get_user(svc.db, user.username)
        if (
            current is None
            or current.id != user.id
            or current.disabled
            or current.password_hash == verified_hash
            or not await svc.passwords.verify(current.password_hash, password)
        ):
            raise
        return await start(current.password_hash)


async def _audit_locks(
    svc: Services, req: GrantRequest, username: str, subject: str | None, attempt: Attempt
) -> None:
    """The one `login.locked` row of a lock: written by the failure that set it. The attempts
    refused while it runs are not recorded one by one (they cost an attacker nothing)."""
    if attempt.locks_counter_for is not None:
        locked = "username_ip" if attempt.from_known_ip else "username"
        seconds = attempt.locks_counter_for
        await _audit(
            svc, req, "login.locked", "denied", username, subject, locked=locked, seconds=seconds
        )
    if attempt.blocks_ip_for is not None:
        seconds = attempt.blocks_ip_for
        await _audit(
            svc, req, "login.locked", "denied", username, subject, locked="ip", seconds=seconds
        )


async def _audit(
    svc: Services,
    req: GrantRequest,
    event: str,
    outcome: str,
    username: str,
    subject: str | None = None,
    **detail: DetailValue,
) -> None:
    """The audit record of a login attempt. The reason for a failure is for operators only:
    the client sees the same answer, after the same work, whatever it is."""
    entry = AuditEvent(
        event,
        outcome,
        actor=username,
        client_id=req.client.client_id,
        ip=req.client_ip,
        subject=subject,
        detail=detail,
    )
    await record(svc.db, entry, req.now)
