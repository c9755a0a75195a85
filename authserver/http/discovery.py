"""GET /.well-known/jwks.json (RFC 7517) and the server metadata (RFC 8414 §3)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from authserver.grants import GRANTS
from authserver.services import Services
from authserver.store.clients import all_client_scopes


async def jwks_endpoint(request: Request) -> Response:
    """The prepared bytes of the current KeyRing: no work per request."""
    svc: Services = request.app.state.services
    return Response(
        svc.keys.jwks,
        media_type="application/json",
        headers={"Cache-Control": f"public, max-age={svc.settings.jwks_max_age}"},
    )


async def metadata_endpoint(request: Request) -> Response:
    svc: Services = request.app.state.services
    scopes = svc.settings.scopes or await all_client_scopes(svc.db)
    return JSONResponse(server_metadata(svc.settings.issuer, scopes))


def server_metadata(issuer: str, scopes: list[str]) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "revocation_endpoint": f"{issuer}/revoke",
        "introspection_endpoint": f"{issuer}/introspect",
        "grant_types_supported": list(GRANTS),
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        # RFC 7009 §2.1: public clients may revoke their own tokens with their client_id alone.
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        # RFC 7662 §2.1: only authenticated (confidential) clients may introspect.
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],  # RFC 7636: plain is refused
        "authorization_response_iss_parameter_supported": True,  # RFC 9207
        "id_token_signing_alg_values_supported": ["RS256"],
        "subject_types_supported": ["public"],
    }
