"""What /revoke and /introspect both start with: the strict form, the authenticated client
(exactly as at /token), and the required `token` parameter. `token_type_hint` (RFC 7009 §2.1,
RFC 7662 §2.1) may be ignored: both token kinds are always searched."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from authserver.clients.authentication import authenticate_client
from authserver.errors import invalid_request
from authserver.http.forms import client_credentials, read_form
from authserver.http.request_log import note_client_id
from authserver.models import Client
from authserver.services import Services


@dataclass(frozen=True)
class ClientTokenRequest:
    client: Client
    token: str


async def read_client_token_request(request: Request, svc: Services) -> ClientTokenRequest:
    """Raises OAuthError (rendered by the app's handlers) on a bad form, client or token."""
    params = await read_form(request)
    client = await authenticate_client(svc.db, client_credentials(request.scope, params))
    note_client_id(request.scope, client.client_id)  # for the access log
    token = params.get("token")
    if token is None:
        raise invalid_request("The token parameter is missing.")
    return ClientTokenRequest(client, token)
