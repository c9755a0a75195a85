"""Property-based fuzzing of every endpoint the app serves, on SQLite and PostgreSQL.

Hostile requests (random bytes, huge, repeated, unicode and NUL parameters, wrong content
types, random grant types, random Basic headers and tokens, random methods and paths) must
never get a 5xx or a stack trace, errors must be RFC-style JSON (or, at the HTML pages of
/authorize and /logout, the error page with SPEC's security headers), and a request that fails
must leave the database exactly as it was. tests/fuzz/test_hostile_sign_in.py goes deeper into
/authorize and its sign-in form.

Some tables are allowed to change on a failed request, and only then:
- the login counters (`login_user_failures`, `login_ip_failures`, `login_user_ip_failures`), when
  the request is a password-grant attempt: counting failed logins is their job (SPEC "Login
  limits");
- `audit_events`, always: recording failed attempts is what an audit trail is for.
Every other table (users, clients, refresh tokens and families, signing keys, revoked access
tokens) is compared row by row.

The routes come from the application itself, so an endpoint added later is fuzzed too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.routing import Route

from authserver.services import Services
from authserver.store.tables import metadata
from tests.conftest import PASSWORD, RegisteredClient
from tests.fuzz.profiles import FUZZ

MakeClient = Callable[..., Awaitable[RegisteredClient]]
MakeUser = Callable[..., Awaitable[str]]

LOGIN_TABLES = frozenset({"login_user_failures", "login_ip_failures", "login_user_ip_failures"})
ALWAYS_ALLOWED = frozenset({"audit_events"})
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
# What a leaked stack trace or source path looks like in a body.
LEAK = re.compile(r"Traceback|File \"|\.py\b|site-packages|/work/|sqlalchemy|asyncpg", re.I)

# The HTML pages of sign-in through /authorize: their errors are the error page, not JSON (the
# router's 404/405 and the body limit's 413 stay JSON there too).
PAGE_PATHS = frozenset({"/authorize", "/authorize/sign-in", "/authorize/consent", "/logout"})

# Placeholders the strategies use for the real client's credentials (known only at run time).
CLIENT_ID = "\x00CLIENT_ID\x00"
SECRET = "\x00SECRET\x00"


@dataclass(frozen=True)
class Hostile:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


# --- strategies ---------------------------------------------------------------------------------

printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
latin1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")

values = st.one_of(
    st.sampled_from(
        [
            "password",
            "refresh_token",
            "client_credentials",
            "authorization_code",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "alice",
            PASSWORD,
            "read",
            "read write admin",
            "asrt_" + "A" * 43,
            "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
            "access_token",
            "S256",
            "none",
            "allow",
            "https://app.example/callback",
            CLIENT_ID,
            SECRET,
            "",
        ]
    ),
    st.text(max_size=40),
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=5),  # NUL and control chars
    st.integers(1, 70_000).map(lambda n: "a" * n),  # up to past the 64 KiB body cap
    st.text(alphabet=st.characters(min_codepoint=0x80, codec="utf-8"), max_size=20),  # beyond ASCII
)
names = st.one_of(
    st.sampled_from(
        [
            "grant_type",
            "username",
            "password",
            "scope",
            "refresh_token",
            "client_id",
            "client_secret",
            "token",
            "token_type_hint",
            "code",
            "code_verifier",
            "redirect_uri",
            "response_type",
            "code_challenge",
            "code_challenge_method",
            "state",
            "prompt",
            "authorization_request",
            "csrf_token",
            "decision",
        ]
    ),
    st.text(max_size=10),
)


@st.composite
def form_bodies(draw: st.DrawFn) -> bytes:
    """Mostly well-formed forms with hostile values; sometimes repeated names or raw junk."""
    pairs: list[tuple[str, str]] = draw(st.lists(st.tuples(names, values), max_size=40))
    repeat: bool = draw(st.booleans())
    if pairs and repeat:
        pairs.append(draw(st.sampled_from(pairs)))  # a repeated parameter
    encode = draw(st.sampled_from(["quote", "raw"]))
    if encode == "quote":
        text = "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs)
    else:
        text = "&".join(f"{k}={v}" for k, v in pairs)
    return text.encode("utf-8", "surrogatepass")


bodies = st.one_of(form_bodies(), st.binary(max_size=2048), st.just(b""))

content_types = st.one_of(
    st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=utf-8",
            "application/x-www-form-urlencoded; charset=latin-1",
            "APPLICATION/X-WWW-FORM-URLENCODED",
            "application/json",
            "multipart/form-data; boundary=x",
            "text/plain",
            "",
        ]
    ),
    st.text(alphabet=printable, max_size=60),
)


def basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


authorizations = st.one_of(
    st.none(),
    st.just(basic(CLIENT_ID, SECRET)),
    st.just(basic(CLIENT_ID, "wrong")),
    st.builds(basic, st.text(alphabet=latin1, max_size=30), st.text(alphabet=latin1, max_size=30)),
    st.text(alphabet=latin1, max_size=80),
    st.text(alphabet=printable, max_size=80).map(lambda t: "Basic " + t),
    st.text(alphabet=printable, max_size=80).map(lambda t: "Bearer " + t),
)

forwarded_for = st.one_of(
    st.none(),
    st.ip_addresses().map(str),
    st.text(alphabet=printable, max_size=100),
)


@st.composite
def hostile_requests(draw: st.DrawFn, routes: list[tuple[str, list[str]]]) -> Hostile:
    path, allowed = draw(st.sampled_from(routes))
    method = draw(st.one_of(st.sampled_from(allowed), st.sampled_from(METHODS)))
    headers: dict[str, str] = {}
    content_type = draw(content_types)
    if content_type:
        headers["content-type"] = content_type
    authorization = draw(authorizations)
    if authorization is not None:
        headers["authorization"] = authorization
    xff = draw(forwarded_for)
    if xff is not None:
        headers["x-forwarded-for"] = xff
    if draw(st.booleans()):
        query = draw(st.lists(st.tuples(names, st.text(max_size=60)), max_size=4))
        path += "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in query)
    body = draw(bodies) if method not in ("GET", "HEAD") else b""
    return Hostile(method, path, headers, body)


random_paths = st.one_of(
    st.text(max_size=60).map(lambda t: "/" + quote(t)),
    st.sampled_from(["/token/", "//token", "/TOKEN", "/.well-known/", "/%2e%2e/etc/passwd"]),
)


# --- the properties -------------------------------------------------------------------------------


def app_routes(app: Starlette) -> list[tuple[str, list[str]]]:
    """Every (path, methods) the application routes, read from the app itself (a path served
    by two routes, GET /logout and POST /logout, once with both methods)."""
    merged: dict[str, set[str]] = {}
    for route in app.routes:
        if isinstance(route, Route):
            merged.setdefault(route.path, set()).update(route.methods or ["GET"])
    return [(path, sorted(methods)) for path, methods in merged.items()]


@pytest.fixture
async def fuzz_client(make_client: MakeClient, make_user: MakeUser) -> RegisteredClient:
    """A confidential client with every grant, and user alice: enough for hostile requests to
    get past client authentication and reach the grants' own checks."""
    await make_user("alice")
    return await make_client(
        "fuzz", grants=("password", "refresh_token", "client_credentials"), introspect=True
    )


async def snapshot(services: Services) -> dict[str, str]:
    """A digest of every row of every table."""
    digests: dict[str, str] = {}
    async with services.db.statement() as conn:
        for table in metadata.sorted_tables:
            rows = (await conn.execute(select(table))).all()
            content = sorted(repr(tuple(row)) for row in rows)
            digests[table.name] = hashlib.sha256("\n".join(content).encode()).hexdigest()
    return digests


def is_password_attempt(request: Hostile) -> bool:
    try:
        params = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return False
    return ("grant_type", "password") in params


def fill_in(text: str, client: RegisteredClient) -> str:
    assert client.secret is not None
    return text.replace(CLIENT_ID, client.client_id).replace(SECRET, client.secret)


async def send(
    http: httpx.AsyncClient, request: Hostile, client: RegisteredClient
) -> httpx.Response:
    assert client.secret is not None
    headers = {name: fill_in(value, client) for name, value in request.headers.items()}
    if "authorization" in headers and headers["authorization"].startswith("Basic "):
        # The placeholders sit inside the base64: decode, fill in, re-encode.
        encoded = headers["authorization"][6:]
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except ValueError:
            pass
        else:
            filled = fill_in(decoded, client).encode()
            headers["authorization"] = "Basic " + base64.b64encode(filled).decode()
    body = fill_in(request.body.decode("utf-8", "surrogateescape"), client).encode(
        "utf-8", "surrogateescape"
    )
    raw_headers = [(name.encode(), value.encode("latin-1")) for name, value in headers.items()]
    return await http.request(request.method, request.path, headers=raw_headers, content=body)


def assert_well_behaved(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text)
    assert not LEAK.search(response.text), response.text
    if response.headers.get("content-type", "").startswith("text/html"):
        assert response.url.path in PAGE_PATHS, response.url
        assert_safe_page(response)
        return
    if response.status_code >= 400 and response.request.method != "HEAD":
        assert response.headers["content-type"].startswith("application/json"), response.headers
        body: Any = json.loads(response.text)
        assert isinstance(body, dict), body
        assert isinstance(body.get("error"), str), body
        assert isinstance(body.get("error_description", ""), str), body


def assert_safe_page(response: httpx.Response) -> None:
    """An HTML answer: SPEC's security headers, nothing reflected as markup."""
    assert response.headers["cache-control"] == "no-store", response.headers
    assert response.headers["x-frame-options"] == "DENY", response.headers
    assert response.headers["referrer-policy"] == "no-referrer", response.headers
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "<script" not in response.text.lower(), response.text


async def check(
    http: httpx.AsyncClient, services: Services, client: RegisteredClient, request: Hostile
) -> None:
    before = await snapshot(services)
    response = await send(http, request, client)
    assert_well_behaved(response)
    if response.status_code < 400:
        return
    after = await snapshot(services)
    allowed = ALWAYS_ALLOWED | (LOGIN_TABLES if is_password_attempt(request) else frozenset())
    changed = {name for name in before if before[name] != after[name]} - allowed
    assert not changed, (response.status_code, response.text, changed)


def test_the_fuzzed_route_list_comes_from_the_app_and_covers_every_endpoint(app: Starlette) -> None:
    paths = {path for path, _methods in app_routes(app)}
    assert {"/token", "/.well-known/jwks.json", "/healthz", "/readyz", "/metrics"} <= paths
    assert paths >= PAGE_PATHS
    assert paths == {r.path for r in app.routes if isinstance(r, Route)}


@FUZZ
@given(data=st.data())
async def test_hostile_requests_to_every_route_never_5xx_never_leak_never_change_the_database(
    app: Starlette,
    http: httpx.AsyncClient,
    services: Services,
    fuzz_client: RegisteredClient,
    data: st.DataObject,
) -> None:
    request = data.draw(hostile_requests(app_routes(app)), label="request")
    await check(http, services, fuzz_client, request)


@FUZZ
@given(form=form_bodies(), authorization=authorizations)
async def test_hostile_forms_posted_to_the_token_endpoint_are_answered_by_the_rules(
    http: httpx.AsyncClient,
    services: Services,
    fuzz_client: RegisteredClient,
    form: bytes,
    authorization: str | None,
) -> None:
    """The token endpoint with the right content type, so the bodies reach the grants."""
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if authorization is not None:
        headers["authorization"] = authorization
    await check(http, services, fuzz_client, Hostile("POST", "/token", headers, form))


@FUZZ
@given(
    path=random_paths,
    method=st.sampled_from(METHODS),
    body=st.binary(max_size=512),
)
async def test_random_paths_and_methods_get_json_errors(
    http: httpx.AsyncClient,
    services: Services,
    fuzz_client: RegisteredClient,
    path: str,
    method: str,
    body: bytes,
) -> None:
    request = Hostile(method, path, {}, b"" if method in ("GET", "HEAD") else body)
    await check(http, services, fuzz_client, request)
