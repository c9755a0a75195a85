"""POST /token (RFC 6749 §3.2): parse → authenticate the client → dispatch the grant → render."""

from __future__ import annotations

import time
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from authserver.clients.authentication import (
    ClientCredentials,
    authenticate_client,
    authenticate_versioned_client,
)
from authserver.errors import OAuthError, invalid_request, temporarily_unavailable
from authserver.grants import CONFIRMS_CLIENT, GRANTS, GrantRequest, TokenResponse
from authserver.http.client_ip import client_ip as peer_ip
from authserver.http.forms import client_credentials, read_form
from authserver.http.request_log import note_client_id
from authserver.http.responses import NoStoreJsonResponse, error_response
from authserver.models import Client, StaleClient
from authserver.services import Services


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
        credentials = client_credentials(request.scope, params)
        if requested_grant in CONFIRMS_CLIENT:
            result = await _confirming_grant(request, svc, credentials, requested_grant, params)
        else:
            client = await authenticate_client(svc.db, credentials)
            note_client_id(request.scope, client.client_id)  # for the access log
            result = await _grant(request, svc, client, None, requested_grant, params)
        outcome = "success"
        response: Response = NoStoreJsonResponse(result.body())
    except OAuthError as error:
        outcome = error.error
        response = error_response(error)
    except svc.db.dialect.unavailable:
        outcome = "temporarily_unavailable"
        response = error_response(temporarily_unavailable())
    svc.metrics.observe_token_request(grant_type, outcome, time.perf_counter() - started)
    return response


async def _confirming_grant(
    request: Request,
    svc: Services,
    credentials: ClientCredentials,
    grant_type: str,
    params: Mapping[str, str],
) -> TokenResponse:
    """A grant whose statement confirms the client's row version may start from the cached
    client (clients/cache.py); if the row changed, nothing was written, and it runs once more
    on the row read afresh (and a second change in between is a 503)."""
    for cache in (svc.client_cache, None):
        client, version = await authenticate_versioned_client(
            svc.db, credentials, grant_type, cache
        )
        note_client_id(request.scope, client.client_id)  # for the access log
        try:
            return await _grant(request, svc, client, version, grant_type, params)
        except StaleClient:
            svc.client_cache.forget(client.client_id)
    raise temporarily_unavailable()


async def _grant(
    request: Request,
    svc: Services,
    client: Client,
    version: int | None,
    grant_type: str,
    params: Mapping[str, str],
) -> TokenResponse:
    grant = GRANTS.get(grant_type)
    if grant is None:
        raise OAuthError("unsupported_grant_type", "The grant type is not supported.")
    if grant_type not in client.grant_types:
        raise OAuthError("unauthorized_client", "The client may not use this grant type.")
    client_ip = peer_ip(request, svc.settings.trusted_proxies)
    return await grant(svc, GrantRequest(client, params, client_ip, svc.clock(), version))
