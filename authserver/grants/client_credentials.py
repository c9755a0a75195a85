"""RFC 6749 §4.4: the client_credentials grant."""

from __future__ import annotations

from authserver.clients.policy import allowed_scopes, grant_scope
from authserver.errors import unauthorized_client
from authserver.grants.base import GrantRequest, TokenResponse
from authserver.services import Services
from authserver.tokens.access import issue_access_token


async def client_credentials_grant(svc: Services, req: GrantRequest) -> TokenResponse:
    """§4.4.2: confidential clients only; §4.4.3: no refresh token. `sub` is the client_id."""
    client = req.client
    if client.is_public:
        raise unauthorized_client("Public clients cannot use the client_credentials grant.")
    scope = grant_scope(req.optional("scope"), allowed_scopes(client, svc.settings))
    access = issue_access_token(
        svc.keys,
        svc.settings,
        client,
        subject=client.client_id,
        scope=scope,
        family_id=None,
        now=req.now,
    )
    return TokenResponse(access.token, access.expires_in, scope)
