"""POST /revoke (RFC 7009): parse → authenticate the client → revoke → 200, whatever the token.

Public clients may revoke their own tokens with their client_id alone (RFC 7009 §2.1
authenticates confidential clients only): a public client's token is no safer for being
unrevocable, and a stranger holding that token could already use it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from authserver.http.client_ip import client_ip
from authserver.http.client_request import read_client_token_request
from authserver.http.responses import NoStoreJsonResponse
from authserver.services import Services
from authserver.tokens.revocation import revoke_token, token_revoked


async def revoke_endpoint(request: Request) -> Response:
    """Errors (OAuthError, database unavailable) are rendered by the app's exception handlers."""
    svc: Services = request.app.state.services
    asked = await read_client_token_request(request, svc)
    revocation = await revoke_token(svc, asked.client, asked.token, svc.clock())
    ip = client_ip(request, svc.settings.trusted_proxies)
    await token_revoked(svc.db, revocation, actor=asked.client.client_id, ip=ip, now=svc.clock())
    # §2.2: 200 whether or not anything was revoked; the body carries nothing.
    return NoStoreJsonResponse({})
