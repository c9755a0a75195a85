"""RFC 6749 §4.3: the resource owner password credentials grant."""

from __future__ import annotations

from authserver.clients.policy import allowed_scopes, grant_scope
from authserver.errors import invalid_client, invalid_grant, invalid_request, too_many_attempts
from authserver.grants.base import GrantRequest, TokenResponse
from authserver.login.check import (
    MAX_USERNAME_LENGTH,
    BadCredentials,
    LoginAttempt,
    LoginLocked,
    audit_login,
    check_password,
    start_login,
)
from authserver.models import RefreshGrant
from authserver.services import Services
from authserver.store import refresh
from authserver.tokens.access import issue_access_token
from authserver.tokens.opaque import new_refresh_token, token_digest

BAD_CREDENTIALS = "Invalid username or password."


async def password_grant(svc: Services, req: GrantRequest) -> TokenResponse:
    """§4.3.2: check the credentials (login/check.py: the login limits, argon2id, the same
    answer for an unknown user, a wrong password and a disabled user), then issue an access
    token and, if the client may use the refresh_token grant, a refresh token that starts a new
    family (the login), only while the user still holds the verified password."""
    username = req.required("username")
    password = req.required("password")
    if len(username) > MAX_USERNAME_LENGTH:
        raise invalid_request("The username parameter is too long.")
    client, settings = req.client, svc.settings
    scope = grant_scope(req.optional("scope"), allowed_scopes(client, settings))
    attempt = LoginAttempt(username, password, client.client_id, req.client_ip, req.now)
    refresh_token = new_refresh_token() if "refresh_token" in client.grant_types else None

    async def start_family(password_hash: str) -> RefreshGrant:
        return await refresh.start_family(
            svc.db,
            user_id=login.user.id,
            verified_password_hash=password_hash,
            client_id=client.client_id,
            scope=scope,
            token_hash=None if refresh_token is None else token_digest(refresh_token),
            now=req.now,
            token_ttl=settings.refresh_token_ttl,
            family_max_age=settings.refresh_family_max_age,
        )

    try:
        login = await check_password(svc, attempt)
        family = await start_login(svc, login, start_family)
    except LoginLocked as locked:
        raise too_many_attempts(locked.retry_after) from None
    except BadCredentials:
        raise invalid_grant(BAD_CREDENTIALS) from None
    except refresh.OwnerGone:
        raise invalid_client() from None  # deleted by an operator a moment ago
    user_id = str(login.user.id)
    await audit_login(svc, attempt, "login.success", "success", user_id, sid=str(family.family_id))
    access = issue_access_token(
        svc.keys,
        settings,
        client,
        subject=user_id,
        scope=scope,
        family_id=family.family_id,
        now=req.now,
    )
    return TokenResponse(access.token, access.expires_in, scope, refresh_token)
