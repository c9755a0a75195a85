"""GET /.well-known/jwks.json (RFC 7517, RFC 7638) and the server metadata (RFC 8414)."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from joserfc.jwk import RSAKey

from authserver.services import Services
from authserver.store import keys as key_store
from tests.conftest import ISSUER, RegisteredClient

MakeClient = Callable[..., Awaitable[RegisteredClient]]

JWKS_PATH = "/.well-known/jwks.json"
METADATA_PATHS = ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]
PUBLIC_MEMBERS = {"kty", "kid", "use", "alg", "n", "e"}
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
CONFIGURED_SCOPES = ["profile:read", "orders"]


async def get_jwks(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await http.get(JWKS_PATH)
    assert response.status_code == 200, response.text
    keys: list[dict[str, Any]] = response.json()["keys"]
    return keys


async def get_metadata(http: httpx.AsyncClient, path: str) -> dict[str, Any]:
    response = await http.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == "application/json"
    document: dict[str, Any] = response.json()
    return document


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


# --- JWKS ---------------------------------------------------------------------------------------


async def test_jwks_is_json_cacheable_for_five_minutes_by_default(http: httpx.AsyncClient) -> None:
    response = await http.get(JWKS_PATH)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "application/json"
    assert response.headers["cache-control"] == "public, max-age=300"
    assert isinstance(response.json()["keys"], list)


@pytest.mark.parametrize("settings_overrides", [{"jwks_max_age": 42}], indirect=True)
async def test_jwks_cache_control_follows_jwks_max_age(http: httpx.AsyncClient) -> None:
    response = await http.get(JWKS_PATH)
    assert response.headers["cache-control"] == "public, max-age=42"


async def test_every_jwk_has_exactly_the_public_rsa_members(http: httpx.AsyncClient) -> None:
    keys = await get_jwks(http)
    assert keys
    for key in keys:
        assert set(key) == PUBLIC_MEMBERS, key
        assert not set(key) & PRIVATE_MEMBERS
        assert key["kty"] == "RSA"
        assert key["use"] == "sig"
        assert key["alg"] == "RS256"
        assert key["e"] == "AQAB"
        assert len(b64url_decode(key["n"])) * 8 >= 2048
        assert not RSAKey.import_key(key).is_private


async def test_jwks_kid_is_the_rfc7638_thumbprint(http: httpx.AsyncClient) -> None:
    keys = await get_jwks(http)
    kids = [key["kid"] for key in keys]
    assert len(set(kids)) == len(kids)
    for key in keys:
        assert key["kid"] == RSAKey.import_key(key).thumbprint()


async def test_jwks_publishes_the_current_and_the_next_key_and_no_revoked_one(
    http: httpx.AsyncClient, services: Services
) -> None:
    records = await key_store.list_keys(services.db)
    by_state: dict[str, set[str]] = {}
    for record in records:
        by_state.setdefault(record.state, set()).add(record.kid)
    assert len(by_state["current"]) == 1
    assert len(by_state["next"]) == 1

    published = {key["kid"] for key in await get_jwks(http)}

    assert services.keys.kid in by_state["current"]
    assert by_state["current"] | by_state["next"] <= published
    assert not published & by_state.get("revoked", set())


async def test_jwks_never_contains_the_private_exponent_of_the_signing_key(
    http: httpx.AsyncClient, services: Services
) -> None:
    private = services.keys.signing_key.as_dict(private=True)
    response = await http.get(JWKS_PATH)
    for member in ("d", "p", "q", "dp", "dq", "qi"):
        assert str(private[member]) not in response.text


# --- discovery ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", METADATA_PATHS)
async def test_metadata_has_every_spec_field_with_the_right_values(
    http: httpx.AsyncClient, path: str
) -> None:
    document = await get_metadata(http, path)

    assert document["issuer"] == ISSUER
    assert document["token_endpoint"] == f"{ISSUER}/token"
    assert document["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert document["revocation_endpoint"] == f"{ISSUER}/revoke"
    assert document["introspection_endpoint"] == f"{ISSUER}/introspect"
    assert sorted(document["revocation_endpoint_auth_methods_supported"]) == [
        "client_secret_basic",
        "client_secret_post",
        "none",
    ]
    assert sorted(document["introspection_endpoint_auth_methods_supported"]) == [
        "client_secret_basic",
        "client_secret_post",
    ]
    assert sorted(document["grant_types_supported"]) == [
        "authorization_code",
        "client_credentials",
        "password",
        "refresh_token",
    ]
    assert sorted(document["token_endpoint_auth_methods_supported"]) == [
        "client_secret_basic",
        "client_secret_post",
        "none",
    ]
    # SPEC "Details": the authorization endpoint (issue 12), PKCE S256 only, RFC 9207's iss.
    assert document["authorization_endpoint"] == f"{ISSUER}/authorize"
    assert document["response_types_supported"] == ["code"]
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["authorization_response_iss_parameter_supported"] is True
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    assert document["subject_types_supported"] == ["public"]
    assert isinstance(document["scopes_supported"], list)


async def test_both_metadata_documents_are_identical(http: httpx.AsyncClient) -> None:
    first, second = [await get_metadata(http, path) for path in METADATA_PATHS]
    assert first == second


@pytest.mark.parametrize(
    "settings_overrides",
    [{"issuer": "https://login.example"}, {"issuer": "https://login.example/"}],
    ids=["plain", "trailing_slash"],
    indirect=True,
)
async def test_metadata_urls_are_derived_from_the_configured_issuer(
    http: httpx.AsyncClient,
) -> None:
    document = await get_metadata(http, METADATA_PATHS[0])
    assert document["issuer"] == "https://login.example"
    assert document["token_endpoint"] == "https://login.example/token"
    assert document["jwks_uri"] == "https://login.example/.well-known/jwks.json"


@pytest.mark.parametrize("path", METADATA_PATHS)
async def test_metadata_passes_authlib_rfc8414_validation(
    http: httpx.AsyncClient, make_client: MakeClient, path: str
) -> None:
    await make_client(scopes=("read", "write"))
    document = await get_metadata(http, path)
    metadata = AuthorizationServerMetadata(document)
    for name in AuthorizationServerMetadata.REGISTRY_KEYS:
        getattr(metadata, f"validate_{name}")()


async def test_metadata_endpoints_are_served_where_advertised(http: httpx.AsyncClient) -> None:
    document = await get_metadata(http, METADATA_PATHS[0])

    jwks_path = document["jwks_uri"].removeprefix(ISSUER)
    assert (await http.get(jwks_path)).json() == (await http.get(JWKS_PATH)).json()
    endpoints = [name for name in document if name.endswith("_endpoint")]
    assert "token_endpoint" in endpoints
    # The authorization endpoint is a browser's GET: without a client_id, the error page.
    authorize = await http.get(document["authorization_endpoint"].removeprefix(ISSUER))
    assert authorize.status_code == 400
    assert authorize.headers["content-type"].startswith("text/html")
    for name in endpoints:
        if name == "authorization_endpoint":
            continue
        response = await http.post(document[name].removeprefix(ISSUER), data={})
        assert response.status_code in (400, 401), (name, response.status_code, response.text)
        assert "error" in response.json()


async def test_scopes_supported_is_the_union_of_registered_client_scopes(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    assert (await get_metadata(http, METADATA_PATHS[0]))["scopes_supported"] == []
    await make_client("a", scopes=("read", "write"))
    await make_client("b", scopes=("orders", "read"))

    for path in METADATA_PATHS:
        scopes = (await get_metadata(http, path))["scopes_supported"]
        assert sorted(scopes) == ["orders", "read", "write"]
        assert len(scopes) == len(set(scopes))


@pytest.mark.parametrize("settings_overrides", [{"scopes": CONFIGURED_SCOPES}], indirect=True)
async def test_scopes_supported_is_the_scopes_setting_when_set(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    await make_client("orders-only", scopes=("orders",))
    for path in METADATA_PATHS:
        assert (await get_metadata(http, path))["scopes_supported"] == CONFIGURED_SCOPES


# --- ETag and If-None-Match (RFC 9110 §8.8.3, §13.1.2; issue 13) -------------------------------

DOCUMENT_PATHS = [JWKS_PATH, *METADATA_PATHS]


def is_strong_entity_tag(value: str) -> bool:
    return len(value) > 2 and value[0] == value[-1] == '"' and '"' not in value[1:-1]


@pytest.mark.parametrize("path", DOCUMENT_PATHS)
async def test_each_document_has_a_strong_etag_that_stays_the_same(
    http: httpx.AsyncClient, path: str
) -> None:
    first, second = await http.get(path), await http.get(path)
    assert first.status_code == second.status_code == 200
    assert is_strong_entity_tag(first.headers["etag"]), first.headers["etag"]
    assert first.headers["etag"] == second.headers["etag"]
    assert first.content == second.content
    assert first.headers["content-length"] == str(len(first.content))


async def test_both_metadata_paths_share_one_etag(http: httpx.AsyncClient) -> None:
    first, second = [await http.get(path) for path in METADATA_PATHS]
    assert first.headers["etag"] == second.headers["etag"]


@pytest.mark.parametrize("path", DOCUMENT_PATHS)
@pytest.mark.parametrize(
    "condition",
    ["{etag}", "W/{etag}", '"other", {etag}', '"a,b", W/{etag} , "c"', "*", " * "],
    ids=["exact", "weak", "list", "list-with-comma-in-tag", "star", "star-spaced"],
)
async def test_a_matching_if_none_match_gets_304_without_a_body(
    http: httpx.AsyncClient, path: str, condition: str
) -> None:
    current = await http.get(path)
    etag = current.headers["etag"]
    response = await http.get(path, headers={"If-None-Match": condition.format(etag=etag)})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert response.headers.get("cache-control") == current.headers.get("cache-control")
    assert "content-type" not in response.headers
    assert response.headers["x-request-id"]


@pytest.mark.parametrize("path", DOCUMENT_PATHS)
async def test_if_none_match_in_several_header_fields_is_one_list(
    http: httpx.AsyncClient, path: str
) -> None:
    etag = (await http.get(path)).headers["etag"]
    headers = [(b"if-none-match", b'"stale"'), (b"if-none-match", etag.encode())]
    assert (await http.get(path, headers=headers)).status_code == 304


@pytest.mark.parametrize("path", DOCUMENT_PATHS)
@pytest.mark.parametrize(
    "condition",
    ['"stale"', 'W/"stale", "older"', "{bare}", '"{bare}', "garbage", ""],
    ids=["other", "other-list", "unquoted", "unbalanced", "garbage", "empty"],
)
async def test_a_non_matching_if_none_match_gets_the_full_document(
    http: httpx.AsyncClient, path: str, condition: str
) -> None:
    current = await http.get(path)
    bare = current.headers["etag"].strip('"')
    response = await http.get(path, headers={"If-None-Match": condition.format(bare=bare)})
    assert response.status_code == 200
    assert response.content == current.content
    assert response.headers["etag"] == current.headers["etag"]


async def test_jwks_304_keeps_the_cache_control_of_jwks_max_age(http: httpx.AsyncClient) -> None:
    etag = (await http.get(JWKS_PATH)).headers["etag"]
    response = await http.get(JWKS_PATH, headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.headers["cache-control"] == "public, max-age=300"


async def test_metadata_etag_changes_when_a_new_client_adds_a_scope(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    before = await http.get(METADATA_PATHS[0])
    await make_client("new-scopes", scopes=("reports",))
    response = await http.get(METADATA_PATHS[0], headers={"If-None-Match": before.headers["etag"]})
    assert response.status_code == 200
    assert "reports" in response.json()["scopes_supported"]
    assert response.headers["etag"] != before.headers["etag"]


@pytest.mark.parametrize("path", DOCUMENT_PATHS)
async def test_head_answers_the_get_headers(http: httpx.AsyncClient, path: str) -> None:
    get = await http.get(path)
    head = await http.head(path)
    assert head.status_code == 200
    assert head.headers["etag"] == get.headers["etag"]
    assert head.headers["content-length"] == get.headers["content-length"]
