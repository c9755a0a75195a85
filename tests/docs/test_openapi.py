"""docs/openapi.yaml: a valid OpenAPI 3.1 document, with exactly the app's routes (both ways),
whose documented statuses, error codes and bodies are what the app answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib.metadata import version
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from starlette.routing import Route

from authserver.app import create_app
from authserver.settings import Settings
from docgen.openapi_reference import load_openapi, resolve
from tests.conftest import RegisteredClient
from tests.helpers import login
from tests.sign_in import authorize_params, pkce, web_client

OPENAPI = load_openapi()
METHODS = {"get", "post", "put", "patch", "delete", "head", "options", "trace"}
# Answered by the router for any path or method, documented once in the page's prose.
ROUTER_STATUSES = {404, 405}


def documented_operations() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in OPENAPI["paths"].items()
        for method in item
        if method in METHODS
    }


def served_operations() -> set[tuple[str, str]]:
    """The app's routes as (METHOD, path); HEAD, which Starlette adds to every GET, left out."""
    app = create_app(Settings())  # routes exist before the lifespan runs: nothing is opened
    served: set[tuple[str, str]] = set()
    for route in app.routes:
        assert isinstance(route, Route), route
        methods = set(route.methods or ())
        assert "GET" in methods or "HEAD" not in methods, route.path
        served |= {(method, route.path) for method in methods - {"HEAD"}}
    return served


def test_the_document_is_valid_openapi_3_1() -> None:
    assert OPENAPI["openapi"].startswith("3.1")
    validate(OPENAPI)


def test_the_document_describes_this_version() -> None:
    assert OPENAPI["info"]["version"] == version("authserver")


def test_every_route_the_app_serves_is_documented() -> None:
    missing = served_operations() - documented_operations()
    assert not missing, f"routes missing from docs/openapi.yaml: {sorted(missing)}"


def test_every_documented_operation_is_served() -> None:
    extra = documented_operations() - served_operations()
    assert not extra, f"docs/openapi.yaml documents routes the app does not serve: {sorted(extra)}"


def test_every_operation_has_a_summary_and_documents_success() -> None:
    """Success is 200, or for the consent form, whose every success is a redirect, 303."""
    for method, path in documented_operations():
        operation = OPENAPI["paths"][path][method.lower()]
        assert operation.get("summary"), (method, path)
        assert {"200", "303"} & set(operation["responses"]), (method, path)


# --- what the app answers, against what the document says ----------------------------------


def schema_of(node: Any) -> Any:
    """The schema with every local `$ref` replaced by what it names."""
    node = resolve(OPENAPI, node)
    if isinstance(node, dict):
        return {key: schema_of(value) for key, value in node.items()}
    if isinstance(node, list):
        return [schema_of(item) for item in node]
    return node


def check(method: str, path: str, response: httpx.Response) -> None:
    """The status is documented for the operation, the body fits its schema, and an error
    code is one the document names for that status."""
    status = response.status_code
    if status in ROUTER_STATUSES:
        assert response.json()["error"] in ("not_found", "method_not_allowed")
        return
    responses = OPENAPI["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path} answered {status}: {response.text}"
    documented = resolve(OPENAPI, responses[str(status)])
    for header in documented.get("headers", {}):
        assert header.lower() in response.headers, f"{method} {path} {status}: no {header}"
    if "content" not in documented:  # a redirect
        assert not response.content, f"{method} {path} {status}: {response.text}"
        return
    media_type = response.headers["content-type"].split(";")[0]
    content = documented["content"][media_type]
    if media_type == "application/json":
        body = response.json()
        Draft202012Validator(schema_of(content["schema"])).validate(body)
        examples = content.get("examples", {})
        if examples:
            codes = {resolve(OPENAPI, example)["value"]["error"] for example in examples.values()}
            assert body["error"] in codes, f"{method} {path} {status}: {body}"


async def test_the_documented_answers_are_the_app_answers(
    http: httpx.AsyncClient,
    make_client: Callable[..., Awaitable[RegisteredClient]],
    make_user: Callable[..., Awaitable[str]],
) -> None:
    await make_user("alice")
    app_client = await make_client("demo-app")
    api = await make_client("api", grants=("client_credentials",), introspect=True)
    tokens = await login(http, app_client, "alice")
    web = await web_client(make_client)
    authorize = authorize_params(web, pkce())
    form = {"content-type": "application/x-www-form-urlencoded"}
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/.well-known/jwks.json", {}),
        ("GET", "/.well-known/oauth-authorization-server", {}),
        ("GET", "/.well-known/openid-configuration", {}),
        ("GET", "/healthz", {}),
        ("GET", "/readyz", {}),
        ("GET", "/metrics", {}),
        ("POST", "/token", {"data": {"grant_type": "password"}, "auth": app_client.basic}),
        ("POST", "/token", {"data": {"grant_type": "nope"}, "auth": app_client.basic}),
        ("POST", "/token", {"data": {"grant_type": "password"}, "auth": ("x", "y")}),
        ("POST", "/token", {"content": "x" * 70_000, "headers": form}),
        (
            "POST",
            "/token",
            {
                "data": {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                "auth": app_client.basic,
            },
        ),
        ("POST", "/introspect", {"data": {"token": tokens["access_token"]}, "auth": api.basic}),
        ("POST", "/introspect", {"data": {"token": "nothing"}, "auth": api.basic}),
        ("POST", "/introspect", {"data": {"token": "x"}, "auth": app_client.basic}),
        ("POST", "/introspect", {"data": {}, "auth": api.basic}),
        ("POST", "/revoke", {"data": {"token": tokens["refresh_token"]}, "auth": app_client.basic}),
        ("POST", "/revoke", {"data": {"token": "x"}, "auth": ("x", "y")}),
        ("POST", "/revoke", {"data": {}, "auth": app_client.basic}),
        ("GET", "/authorize", {"params": authorize}),
        ("GET", "/authorize", {"params": {**authorize, "code_challenge_method": "plain"}}),
        ("GET", "/authorize", {"params": {"client_id": "nobody"}}),
        ("POST", "/authorize/sign-in", {"data": {"username": "alice", "password": "x"}}),
        ("POST", "/authorize/consent", {"data": {"decision": "allow"}}),
        ("GET", "/logout", {}),
        ("POST", "/logout", {"data": {}}),
        ("GET", "/static/authserver.css", {}),
        ("DELETE", "/token", {}),
        ("GET", "/nowhere", {}),
    ]
    statuses = set()
    for method, path, options in requests:
        response = await http.request(method, path, **options)
        check(method, path, response)
        statuses.add(response.status_code)
    assert statuses >= {200, 303, 400, 401, 403, 404, 405, 413}, statuses


@pytest.mark.parametrize("settings_overrides", [{"metrics_enabled": False}], indirect=True)
async def test_the_documented_metrics_404_is_the_app_answer(http: httpx.AsyncClient) -> None:
    response = await http.get("/metrics")
    assert response.status_code == 404
    check("GET", "/metrics", response)
