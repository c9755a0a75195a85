"""POST /token (RFC 6749 §3.2): parse → authenticate the client → dispatch the grant → render."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from authserver.clients.authentication import authenticate_client
from authserver.errors import NO_STORE, OAuthError, invalid_request, temporarily_unavailable
from authserver.grants import GRANTS, GrantRequest
from authserver.http.client_ip import client_ip as peer_ip
from authserver.http.forms import client_credentials, read_form
from authserver.http.request_log import note_client_id
from authserver.http.responses import JsonResponse, error_response
from authserver.services import Services
from authserver.store.db import DATABASE_UNAVAILABLE


async def token_endpoint(request: Request) -> Response:
    svc: Services = request.app.state.services
    started = time.perf_counter()
    grant_type = "invalid"
    try:
        params = await read_form(request)
        requested_grant = params.get("grant_type")
        if requested_grant is None:
            raise invalid_request("The grant_type parameter is missing.")
        if requested_grant in GRANTS:
            grant_type = requested_grant
        client = await authenticate_client(svc.db, client_credentials(request.headers, params))
        note_client_id(request.scope, client.client_id)  # for the access log
        grant = GRANTS.get(requested_grant)
        if grant is None:
            raise OAuthError("unsupported_grant_type", "The grant type is not supported.")
        if requested_grant not in client.grant_types:
            raise OAuthError("unauthorized_client", "The client may not use this grant type.")
        client_ip = peer_ip(request, svc.settings.trusted_proxies)
        result = await grant(svc, GrantRequest(client, params, client_ip, svc.clock()))
        outcome = "success"
        response: Response = JsonResponse(result.body(), headers=NO_STORE)
    except OAuthError as error:
        outcome = error.error
        response = error_response(error)
    except DATABASE_UNAVAILABLE:
        outcome = "temporarily_unavailable"
        response = error_response(temporarily_unavailable())
    svc.metrics.token_requests.labels(grant_type, outcome).inc()
    svc.metrics.token_duration.labels(grant_type).observe(time.perf_counter() - started)
    return response
