"""RFC 6749 §4.1.3: the authorization code grant, with PKCE (RFC 7636 §4.6), for codes issued
by GET /authorize (SPEC "GET /authorize").

Parameters: `code`, `code_verifier` (required: PKCE), and `redirect_uri` — required and equal to
the one in the authorization request when that request carried one (§4.1.3), else optional
and, when sent, equal to the URI the code was sent to.

The code is used up by the first presentation from its own client, even one that fails
(store/codes.py); an expired code, a wrong verifier or redirect URI, or a login session ended
since (logout, password change, disable) then answer invalid_grant. Another client's code is
invalid_grant and burns nothing. A code presented a second time by its client revokes the
refresh-token family its first exchange started (§4.1.2; Hydra does the same, before checking
the verifier).

Success is the password grant's answer: an access token whose `sub` is the user and `sid` the
new family, and, if the client may refresh, a refresh token whose family's absolute limit
counts from the sign-in (the session's auth_time), not from the exchange.
"""

from __future__ import annotations

import logging

from authserver.authorize.pkce import verifier_matches
from authserver.errors import invalid_client, invalid_grant
from authserver.grants.base import GrantRequest, TokenResponse
from authserver.models import CodeGrant
from authserver.observability.audit import AuditEvent, record
from authserver.services import Services
from authserver.store import codes, refresh
from authserver.tokens.access import issue_access_token
from authserver.tokens.opaque import new_refresh_token, token_digest

log = logging.getLogger("authserver.authorization_code")

INVALID_CODE = "The authorization code is invalid, expired or already used."
CODE_REPLAY = "code_replay"  # refresh_families.revoked_reason


async def authorization_code_grant(svc: Services, req: GrantRequest) -> TokenResponse:
    code_hash = token_digest(req.required("code"))
    verifier = req.required("code_verifier")
    redirect_uri = req.optional("redirect_uri")
    client, settings = req.client, svc.settings
    refresh_token = new_refresh_token() if "refresh_token" in client.grant_types else None

    def problem(code: CodeGrant) -> str | None:
        if code.expires_at <= req.now:
            return "expired"
        if redirect_uri != code.redirect_uri and (
            code.redirect_uri_sent or redirect_uri is not None
        ):
            return "redirect_uri"
        if not verifier_matches(verifier, code.code_challenge):
            return "code_verifier"
        return None

    try:
        result = await codes.redeem_code(
            svc.db,
            code_hash=code_hash,
            client_id=client.client_id,
            now=req.now,
            problem=problem,
            token_hash=None if refresh_token is None else token_digest(refresh_token),
            token_ttl=settings.refresh_token_ttl,
            family_max_age=settings.refresh_family_max_age,
        )
    except refresh.OwnerGone:
        raise invalid_client() from None  # deleted by an operator a moment ago
    if result is None:
        await _explain_refusal(svc, req, code_hash)
        raise invalid_grant(INVALID_CODE)
    if isinstance(result, codes.Refused):
        log.info(
            "authorization code refused (%s), now used up: client=%s ip=%s",
            result.reason,
            client.client_id,
            req.client_ip,
        )
        raise invalid_grant(INVALID_CODE)
    access = issue_access_token(
        svc.keys,
        settings,
        client,
        subject=str(result.code.user_id),
        scope=result.code.scope,
        family_id=result.family.family_id,
        now=req.now,
    )
    return TokenResponse(access.token, access.expires_in, result.code.scope, refresh_token)


async def _explain_refusal(svc: Services, req: GrantRequest, code_hash: bytes) -> None:
    """No unused code of this client had this hash: unknown, another client's, or a replay.

    A replay revokes the family the code started. Its audit row is written only when that
    revocation ended a live family, so it is written once per code however often it is
    replayed (a refusal that costs the caller nothing writes nothing: review finding 2)."""
    code = await codes.find_code(svc.db, code_hash)
    if code is None:
        return
    if code.client_id != req.client.client_id:
        log.warning(
            "authorization code of another client presented: owner=%s client=%s ip=%s",
            code.client_id,
            req.client.client_id,
            req.client_ip,
        )
        return
    revoked = code.family_id is not None and await refresh.revoke_family(
        svc.db, code.family_id, reason=CODE_REPLAY, now=req.now
    )
    log.warning(
        "authorization code replayed: client=%s ip=%s family=%s revoked=%s",
        req.client.client_id,
        req.client_ip,
        code.family_id,
        revoked,
    )
    if revoked:
        entry = AuditEvent(
            "code.replay_detected",
            "denied",
            actor=req.client.client_id,
            client_id=req.client.client_id,
            ip=req.client_ip,
            subject=str(code.family_id),
            detail={"user": str(code.user_id)},
        )
        await record(svc.db, entry, req.now)
