"""resource_server.py's API as a plain WSGI app: `GET /profile` needs `profile:read`.

    RESOURCE_ISSUER=http://127.0.0.1:8000 .venv/bin/python examples/wsgi_resource_server.py

serves it on 127.0.0.1:9001 with the standard library's wsgiref (one request at a time: for a
look, not for production, where any WSGI server takes `wsgi_resource_server:app`). The
settings are resource_server.py's: RESOURCE_ISSUER, and RESOURCE_AUDIENCE (one value or a JSON
array; default the issuer).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from wsgiref.simple_server import make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from resource_server import audiences

from authserver.verify import TokenVerifier
from authserver.verify.wsgi import BearerAuth, access_token, requires_scope

logger = logging.getLogger("wsgi_resource_server")
PORT = 9001


def json_response(
    start_response: StartResponse, status: str, body: dict[str, str]
) -> Iterable[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


@requires_scope("profile:read")
def profile(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    claims = access_token(environ)
    body = {"sub": claims.sub, "client_id": claims.client_id, "scope": claims.scope}
    return json_response(start_response, "200 OK", body)


def routes(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    if environ.get("PATH_INFO") == "/profile" and environ.get("REQUEST_METHOD") == "GET":
        return profile(environ, start_response)
    return json_response(start_response, "404 Not Found", {"error": "not_found"})


def make_app(verifier: TokenVerifier) -> WSGIApplication:
    return BearerAuth(routes, verifier, realm="example")


ISSUER = os.environ.get("RESOURCE_ISSUER", "http://127.0.0.1:8000")
verifier = TokenVerifier(ISSUER, audiences(os.environ.get("RESOURCE_AUDIENCE", ISSUER)))
app = make_app(verifier)

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(name)s: %(message)s")
    if not verifier.prefetch_sync():
        logger.warning("could not fetch the JWKS of %s yet; will retry on demand", ISSUER)
    with make_server("127.0.0.1", PORT, app) as server:
        logger.info("serving http://127.0.0.1:%d/profile", PORT)
        server.serve_forever()
