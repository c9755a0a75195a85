"""POST /introspect (RFC 7662): only confidential clients registered with `--introspect`.

Unauthenticated (or a public client, which cannot authenticate): 401 invalid_client, as at
/token. Authenticated but not allowed to introspect: 403 unauthorized_client (SPEC). Any token
not currently valid: exactly `{"active": false}` (§2.2).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from authserver.errors import OAuthError, invalid_client
from authserver.http.client_request import read_client_token_request
from authserver.http.responses import NoStoreJsonResponse
from authserver.services import Services
from authserver.tokens.introspection import introspect


async def introspect_endpoint(request: Request) -> Response:
    """Errors (OAuthError, database unavailable) are rendered by the app's exception handlers."""
    svc: Services = request.app.state.services
    asked = await read_client_token_request(request, svc)
    if asked.client.is_public:
        raise invalid_client()  # §2.1: the caller must be authorized; a public one is not
    if not asked.client.can_introspect:
        raise OAuthError(
            "unauthorized_client", "The client may not use the introspection endpoint.", 403
        )
    body = await introspect(svc, asked.token, svc.clock())
    return NoStoreJsonResponse(body)
