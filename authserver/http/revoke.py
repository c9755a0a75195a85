"""POST /revoke (RFC 7009): parse → authenticate the client → revoke → 200, whatever the token.

Public clients may revoke their own tokens with their client_id alone (RFC 7009 §2.1
authenticates confidential clients only): a public client's token is no safer for being
unrevocable, and a stranger holding that token could already use it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from authserver.clients import authenticate_client
from authserver.errors import NO_STORE, OAuthError, invalid_request, temporarily_unavailable
from authserver.http.client_ip import client_ip
from authserver.http.forms import client_credentials, read_form
from authserver.http.request_log import note_client_id
from authserver.http.responses import error_response
from authserver.revocation import revoke_token, token_revoked
from authserver.services import Services
from authserver.store.db import DATABASE_UNAVAILABLE


async def revoke_endpoint(request: Request) -> Response:
    svc: Services = request.app.state.services
    try:
        params = await read_form(request)
        client = await authenticate_client(svc.db, client_credentials(request.headers, params))
        note_client_id(request.scope, client.client_id)  # for the access log
        token = params.get("token")
        if token is None:
            raise invalid_request("The token parameter is missing.")
        # token_type_hint (§2.1) is optional and may be ignored: both kinds are always searched.
        revocation = await revoke_token(svc, client, token, svc.clock())
    except OAuthError as error:
        return error_response(error)
    except DATABASE_UNAVAILABLE:
        return error_response(temporarily_unavailable())
    ip = client_ip(request, svc.settings.trusted_proxies)
    await token_revoked(svc.db, revocation, actor=client.client_id, ip=ip, now=svc.clock())
    # §2.2: 200 whether or not anything was revoked; the body carries nothing.
    return JSONResponse({}, headers=NO_STORE)
