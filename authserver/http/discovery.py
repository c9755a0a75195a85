"""GET /.well-known/jwks.json (RFC 7517) and the server metadata (RFC 8414 §3), as prepared
bytes with an ETag (http/prepared.py)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from authserver.grants import GRANTS
from authserver.http.prepared import PreparedDocument, prepare, send_document
from authserver.services import Services
from authserver.store.clients import all_client_scopes


class JwksEndpoint:
    """GET /.well-known/jwks.json, an ASGI app: the current KeyRing's JWKS bytes, with their
    ETag and SPEC's `Cache-Control: public, max-age=JWKS_MAX_AGE`. The prepared response is
    rebuilt only when the key poller installs a ring with other JWKS bytes."""

    def __init__(self) -> None:
        self._prepared: PreparedDocument | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        svc: Services = scope["app"].state.services
        jwks = svc.keys.jwks
        prepared = self._prepared
        if prepared is None or prepared.body is not jwks:
            prepared = prepare(jwks, f"public, max-age={svc.settings.jwks_max_age}")
            self._prepared = prepared
        await send_document(scope, send, prepared)


class MetadataEndpoint:
    """The server metadata (RFC 8414 §3; also served as openid-configuration), an ASGI app.

    With SCOPES set the document never changes; without, `scopes_supported` is read from the
    registered clients on every request (a new client's scopes show at once), and the prepared
    document is reused while they stay the same."""

    def __init__(self) -> None:
        self._prepared: tuple[tuple[str, ...], PreparedDocument] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        svc: Services = scope["app"].state.services
        scopes = tuple(svc.settings.scopes or await all_client_scopes(svc.db))
        cached = self._prepared
        if cached is None or cached[0] != scopes:
            body = orjson.dumps(server_metadata(svc.settings.issuer, list(scopes)))
            cached = self._prepared = (scopes, prepare(body))
        await send_document(scope, send, cached[1])


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
