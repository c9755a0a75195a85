"""RFC 6749 §4.4: the client_credentials grant."""

from __future__ import annotations

from authserver.clients import access_token_ttl, allowed_scopes, audiences, grant_scope
from authserver.errors import unauthorized_client
from authserver.grants.base import GrantRequest, TokenResponse
from authserver.services import Services
from authserver.tokens import issue_access_token


async def client_credentials_grant(svc: Services, req: GrantRequest) -> TokenResponse:
    """§4.4.2: confidential clients only; §4.4.3: no refresh token. `sub` is the client_id."""
    client = req.client
    if client.is_public:
        raise unauthorized_client("Public clients cannot use the client_credentials grant.")
    scope = grant_scope(req.optional("scope"), allowed_scopes(client, svc.settings))
    ttl = access_token_ttl(client, svc.settings)
    access_token = issue_access_token(
        svc.keys,
        issuer=svc.settings.issuer,
        subject=client.client_id,
        audiences=audiences(client, svc.settings),
        client_id=client.client_id,
        scope=scope,
        now=req.now,
        ttl=ttl,
        family_id=None,
    )
    return TokenResponse(access_token, ttl, scope)
