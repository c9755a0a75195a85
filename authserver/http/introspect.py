"""POST /introspect (RFC 7662): only confidential clients registered with `--introspect`.

Unauthenticated (or a public client, which cannot authenticate): 401 invalid_client, as at
/token. Authenticated but not allowed to introspect: 403 unauthorized_client (SPEC). Any token
not currently valid: exactly `{"active": false}` (§2.2).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from authserver.clients import authenticate_client
from authserver.errors import (
    NO_STORE,
    OAuthError,
    invalid_client,
    invalid_request,
    temporarily_unavailable,
)
from authserver.http.forms import client_credentials, read_form
from authserver.http.request_log import note_client_id
from authserver.http.responses import error_response
from authserver.introspection import introspect
from authserver.services import Services
from authserver.store.db import DATABASE_UNAVAILABLE


async def introspect_endpoint(request: Request) -> Response:
    svc: Services = request.app.state.services
    try:
        params = await read_form(request)
        client = await authenticate_client(svc.db, client_credentials(request.headers, params))
        note_client_id(request.scope, client.client_id)  # for the access log
        if client.is_public:
            raise invalid_client()  # §2.1: the caller must be authorized; a public one is not
        if not client.can_introspect:
            raise OAuthError(
                "unauthorized_client", "The client may not use the introspection endpoint.", 403
            )
        token = params.get("token")
        if token is None:
            raise invalid_request("The token parameter is missing.")
        # token_type_hint (§2.1) may be ignored: both kinds are always searched.
        body = await introspect(svc, token, svc.clock())
    except OAuthError as error:
        return error_response(error)
    except DATABASE_UNAVAILABLE:
        return error_response(temporarily_unavailable())
    return JSONResponse(body, headers=NO_STORE)
