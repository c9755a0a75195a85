"""POST /token request handling: body parsing, parameter rules, grant dispatch, error format.

Hostile input must always get an RFC 6749 §5.2 JSON error with the right status, never a 5xx.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlencode

import httpx
import pytest

from authserver.http.forms import MAX_BODY_BYTES
from tests.conftest import RegisteredClient
from tests.helpers import assert_uncached_oauth_error, password_login

MakeClient = Callable[..., Awaitable[RegisteredClient]]
MakeUser = Callable[..., Awaitable[str]]

FORM = "application/x-www-form-urlencoded"


async def post_raw(
    http: httpx.AsyncClient,
    body: bytes | str,
    client: RegisteredClient | None = None,
    content_type: str | None = FORM,
) -> httpx.Response:
    headers = {} if content_type is None else {"content-type": content_type}
    if client is not None and client.secret is not None:
        return await http.post("/token", content=body, headers=headers, auth=client.basic)
    return await http.post("/token", content=body, headers=headers)


async def test_well_formed_request_succeeds(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    """The baseline the error tests below deviate from."""
    client = await make_client()
    await make_user()
    response = await password_login(http, client)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


# --- content type ------------------------------------------------------------------------------


async def test_missing_content_type_is_invalid_request(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await make_client(grants=("client_credentials",))
    response = await post_raw(http, "grant_type=client_credentials", client, content_type=None)
    assert_uncached_oauth_error(response, 400, "invalid_request")


async def test_json_body_is_invalid_request(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client()
    await make_user()
    assert client.secret is not None
    response = await http.post(
        "/token",
        json={"grant_type": "password", "username": "alice", "password": "x" * 10},
        auth=client.basic,
    )
    assert response.request.headers["content-type"] == "application/json"
    assert_uncached_oauth_error(response, 400, "invalid_request")


async def test_form_body_declared_as_json_is_invalid_request(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await make_client(grants=("client_credentials",))
    response = await post_raw(http, "grant_type=client_credentials", client, "application/json")
    assert_uncached_oauth_error(response, 400, "invalid_request")


async def test_multipart_body_is_invalid_request(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await make_client(grants=("client_credentials",))
    response = await http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        files={"file": ("a.txt", b"hello")},
        auth=client.basic,
    )
    assert response.request.headers["content-type"].startswith("multipart/form-data")
    assert_uncached_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "content_type",
    [
        f"{FORM}; charset=latin-1",
        f"{FORM}; charset=ISO-8859-1",
        f"{FORM}; charset=utf-16",
        "text/plain",
        f"{FORM}x",
        "application/x-www-form-urlencoded-evil",
    ],
)
async def test_other_content_types_and_charsets_are_invalid_request(
    http: httpx.AsyncClient, make_client: MakeClient, content_type: str
) -> None:
    client = await make_client(grants=("client_credentials",))
    response = await post_raw(http, "grant_type=client_credentials", client, content_type)
    assert_uncached_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "content_type",
    [
        f"{FORM}; charset=utf-8",
        f"{FORM}; charset=UTF-8",
        f'{FORM}; charset="utf-8"',
        "Application/X-WWW-Form-URLEncoded",
    ],
)
async def test_form_content_type_with_utf8_charset_or_any_case_is_accepted(
    http: httpx.AsyncClient, make_client: MakeClient, content_type: str
) -> None:
    client = await make_client(grants=("client_credentials",))
    response = await post_raw(http, "grant_type=client_credentials", client, content_type)
    assert response.status_code == 200, response.text


# --- grant_type --------------------------------------------------------------------------------


async def test_missing_grant_type_is_invalid_request(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await make_client(grants=("client_credentials",))
    response = await post_raw(http, "scope=read", client)
    assert_uncached_oauth_error(response, 400, "invalid_request")


async def test_empty_body_without_client_is_invalid_request(http: httpx.AsyncClient) -> None:
    response = await post_raw(http, "")
    assert_uncached_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "grant_type",
    [
        "implicit",
        "AUTHORIZATION_CODE",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "PASSWORD",
        "password ",
        "__class__",
        "__init__",
        "invalid",
        "x" * 2000,
    ],
)
async def test_unknown_grant_type_is_unsupported_grant_type(
    http: httpx.AsyncClient, make_client: MakeClient, grant_type: str
) -> None:
    client = await make_client(grants=("password", "refresh_token", "client_credentials"))
    response = await post_raw(http, urlencode({"grant_type": grant_type}), client)
    assert_uncached_oauth_error(response, 400, "unsupported_grant_type")


@pytest.mark.parametrize(
    ("registered", "requested"),
    [
        (("password",), "client_credentials"),
        (("password",), "refresh_token"),
        (("client_credentials",), "password"),
        (("client_credentials",), "refresh_token"),
        (("password", "refresh_token"), "client_credentials"),
    ],
)
async def test_grant_not_registered_for_the_client_is_unauthorized_client(
    http: httpx.AsyncClient,
    make_client: MakeClient,
    make_user: MakeUser,
    registered: tuple[str, ...],
    requested: str,
) -> None:
    client = await make_client(grants=registered)
    await make_user()
    params = {
        "grant_type": requested,
        "username": "alice",
        "password": "correct horse battery staple",
        "refresh_token": "x" * 43,
    }
    response = await post_raw(http, urlencode(params), client)
    assert_uncached_oauth_error(response, 400, "unauthorized_client")


# --- repeated and empty parameters -------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "grant_type=password&grant_type=password&username=alice&password=pw123456",
        "grant_type=password&grant_type=client_credentials&username=alice&password=pw123456",
        "grant_type=password&username=alice&username=bob&password=pw123456",
        "grant_type=password&username=alice&password=pw123456&password=pw123456",
        "grant_type=password&username=alice&password=pw123456&scope=read&scope=write",
        "grant_type=password&username=alice&password=pw123456&scope=&scope=read",
        "grant_type=password&username=alice&password=pw123456&foo=1&foo=2",
    ],
)
async def test_repeated_parameter_is_invalid_request(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, body: str
) -> None:
    client = await make_client()
    await make_user()
    response = await post_raw(http, body, client)
    assert_uncached_oauth_error(response, 400, "invalid_request")


async def test_repeated_client_id_in_body_is_invalid_request(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client(public=True)
    await make_user()
    body = urlencode(
        [
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "correct horse battery staple"),
            ("client_id", client.client_id),
            ("client_id", client.client_id),
        ]
    )
    response = await post_raw(http, body)
    assert_uncached_oauth_error(response, 400, "invalid_request")


async def test_empty_scope_is_treated_as_omitted(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client(scopes=("read", "write"))
    await make_user()
    response = await password_login(http, client, scope="")
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "read write"


async def test_empty_grant_type_is_treated_as_missing(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await make_client(grants=("client_credentials",))
    response = await post_raw(http, "grant_type=", client)
    assert_uncached_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize("empty", ["username", "password"])
async def test_empty_credential_is_treated_as_missing(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, empty: str
) -> None:
    client = await make_client()
    await make_user()
    response = await password_login(http, client, **{empty: ""})
    assert_uncached_oauth_error(response, 400, "invalid_request")


async def test_empty_client_secret_next_to_basic_is_not_a_second_method(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await make_client(grants=("client_credentials",))
    response = await post_raw(http, "grant_type=client_credentials&client_secret=", client)
    assert response.status_code == 200, response.text


async def test_empty_client_id_is_treated_as_no_client(http: httpx.AsyncClient) -> None:
    response = await post_raw(http, "grant_type=client_credentials&client_id=&client_secret=")
    assert_uncached_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"] == 'Basic realm="authserver"'


# --- body size ---------------------------------------------------------------------------------


def padded_body(size: int) -> bytes:
    """A form body of exactly `size` bytes, many short parameters (none too long by itself)."""
    head = b"grant_type=client_credentials"
    body = head + b"&pad=" + b"a" * (size - len(head) - 5)
    assert len(body) == size
    return body


async def test_body_over_64_kib_is_413_invalid_request(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await make_client(grants=("client_credentials",))
    body = padded_body(80_000)
    response = await post_raw(http, body, client)
    assert response.request.headers["content-length"] == str(len(body))
    assert_uncached_oauth_error(response, 413, "invalid_request")


async def test_body_of_exactly_64_kib_is_not_413(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    """At the limit the body is read and parsed: the oversized `pad` value is the problem."""
    client = await make_client(grants=("client_credentials",))
    response = await post_raw(http, padded_body(MAX_BODY_BYTES), client)
    assert_uncached_oauth_error(response, 400, "invalid_request")


async def test_body_one_byte_over_64_kib_is_413(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await make_client(grants=("client_credentials",))
    response = await post_raw(http, padded_body(MAX_BODY_BYTES + 1), client)
    assert_uncached_oauth_error(response, 413, "invalid_request")


async def chunks(body: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_chunked_body_over_64_kib_is_413_invalid_request(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await make_client(grants=("client_credentials",))
    response = await http.post(
        "/token",
        content=chunks(padded_body(80_000)),
        headers={"content-type": FORM},
        auth=client.basic,
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_uncached_oauth_error(response, 413, "invalid_request")


async def test_chunked_body_within_the_limit_is_accepted(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await make_client(grants=("client_credentials",))
    response = await http.post(
        "/token",
        content=chunks(b"grant_type=client_credentials&scope=read", size=7),
        headers={"content-type": FORM},
        auth=client.basic,
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "read"


async def test_oversized_body_to_an_unknown_path_is_413_invalid_request(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post("/nowhere", content=b"a" * 80_000, headers={"content-type": FORM})
    assert_uncached_oauth_error(response, 413, "invalid_request")


# --- encoding and hostile characters -----------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"grant_type=password&username=\xff\xfe&password=pw123456",
        b"grant_type=password&username=alice&password=\xc3\x28",
        b"grant_type=password&username=\xed\xa0\x80&password=pw123456",  # a UTF-16 surrogate
        b"\xff=1&grant_type=password&username=alice&password=pw123456",
    ],
)
async def test_non_utf8_body_is_invalid_request(
    http: httpx.AsyncClient, make_client: MakeClient, body: bytes
) -> None:
    client = await make_client()
    response = await post_raw(http, body, client)
    assert_uncached_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "body",
    [
        "grant_type=password&username=%ff&password=pw123456",
        "grant_type=password&username=alice&password=%C3%28",
        "grant_type=password&username=%c0%af&password=pw123456",  # overlong "/"
        "grant_type=password&username=%ED%A0%80&password=pw123456",  # surrogate
        "grant_type=password&%ff=1&username=alice&password=pw123456",
        "grant_type=pass%ffword&username=alice&password=pw123456",
    ],
)
async def test_percent_encoded_invalid_utf8_is_invalid_request(
    http: httpx.AsyncClient, make_client: MakeClient, body: str
) -> None:
    client = await make_client()
    response = await post_raw(http, body, client)
    assert_uncached_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "body",
    [
        "grant_type=password&username=al%00ice&password=pw123456",
        "grant_type=password&username=alice&password=pw%00123456",
        "grant_type=password&username=alice%0a&password=pw123456",
        "grant_type=password&username=alice%0d%0aX-Injected:%201&password=pw123456",
        "grant_type=password&username=al%01ice&password=pw123456",
        "grant_type=password&username=al%7fice&password=pw123456",
        "grant_type=password&username=alice&password=pw123456&scope=read%00",
        "grant_type=password%00&username=alice&password=pw123456",
        "grant_type=password&user%00name=alice&password=pw123456",
        "grant_type=password&username=al\x00ice&password=pw123456",
        "grant_type=password&username=al\x1bice&password=pw123456",
    ],
)
async def test_control_characters_in_parameters_are_invalid_request(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, body: str
) -> None:
    client = await make_client()
    await make_user()
    response = await post_raw(http, body, client)
    assert_uncached_oauth_error(response, 400, "invalid_request")


async def test_nul_in_client_id_is_an_rfc_error_not_a_database_error(
    http: httpx.AsyncClient,
) -> None:
    """PostgreSQL cannot even store NUL: it must be refused before any query is made."""
    response = await post_raw(http, "grant_type=client_credentials&client_id=abc%00def")
    assert_uncached_oauth_error(response, 400, "invalid_request")


async def test_too_many_parameters_is_invalid_request(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await make_client(grants=("client_credentials",))
    extra = "&".join(f"p{i}=v" for i in range(100))
    response = await post_raw(http, f"grant_type=client_credentials&{extra}", client)
    assert_uncached_oauth_error(response, 400, "invalid_request")


async def test_a_few_unknown_parameters_are_ignored(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    """RFC 6749 §3.2: the server MUST ignore unrecognised request parameters."""
    client = await make_client(grants=("client_credentials",))
    response = await post_raw(http, "grant_type=client_credentials&foo=bar&resource=x", client)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "body",
    [
        "grant_type=password&username=alice&password=" + "p" * 9000,
        "grant_type=password&username=alice&password=pw123456&" + "n" * 200 + "=1",
        "grant_type=password&username=" + "u" * 9000 + "&password=pw123456",
    ],
)
async def test_overlong_parameters_are_invalid_request(
    http: httpx.AsyncClient, make_client: MakeClient, body: str
) -> None:
    client = await make_client()
    response = await post_raw(http, body, client)
    assert_uncached_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"&&&&",
        b"=",
        b"==&==",
        b"grant_type",
        b"grant_type=password=password&username=alice&password=pw123456",
        b"grant_type=password;username=alice;password=pw123456",
        b"grant_type[]=password&username=alice&password=pw123456",
        b"grant_type=password&username[$ne]=x&password[$ne]=x",
        b"grant_type=password&username=alice' OR '1'='1&password=x' OR '1'='1",
        b"grant_type=password&username=%&password=%%",
        b"grant_type=password&username=%zz&password=%2",
        b"grant_type=password&username=" + "\u202eecila".encode() + b"&password=pw123456",
        b"grant_type=password&username=" + "\U0001f600".encode() * 100 + b"&password=pw123456",
        b"grant_type=password&username=alice&password=pw123456&scope=" + b"a%20" * 1000,
        b"grant_type=password&username=alice&password=pw123456&scope=%22%5C",
        b"grant_type=refresh_token&refresh_token=" + b"A" * 8000,
        b"grant_type=refresh_token&refresh_token=%00",
        b"grant_type=client_credentials&scope=" + b"s%20" * 2000,
        b"\xef\xbb\xbfgrant_type=password&username=alice&password=pw123456",
    ],
)
async def test_hostile_bodies_get_an_rfc_error_never_a_5xx(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser, body: bytes
) -> None:
    client = await make_client(grants=("password", "refresh_token", "client_credentials"))
    await make_user()
    response = await post_raw(http, body, client)
    assert 400 <= response.status_code < 500, response.text
    assert_uncached_oauth_error(response, response.status_code, response.json()["error"])
    assert response.json()["error"] in {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "invalid_scope",
        "unauthorized_client",
        "unsupported_grant_type",
    }


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic " + "A" * 6000,
        "Bearer x",
        "Basic",
        "Basic =",
        "Basic ===",
        "NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAFASgKAAAADw==",
    ],
)
async def test_hostile_authorization_headers_get_an_rfc_error_never_a_5xx(
    http: httpx.AsyncClient, authorization: str
) -> None:
    response = await http.post(
        "/token",
        content="grant_type=client_credentials",
        headers={"content-type": FORM, "authorization": authorization},
    )
    assert_uncached_oauth_error(response, 401, "invalid_client")


# --- other paths and methods -------------------------------------------------------------------


async def test_unknown_path_is_json_404(http: httpx.AsyncClient) -> None:
    response = await http.get("/no/such/path")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["error"], str)
    assert "Traceback" not in response.text


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_wrong_method_on_token_is_json_405(http: httpx.AsyncClient, method: str) -> None:
    response = await http.request(method, "/token")
    assert response.status_code == 405
    assert response.headers["content-type"].startswith("application/json")
    assert isinstance(response.json()["error"], str)
    assert "POST" in response.headers["allow"]


async def test_get_token_with_credentials_in_query_is_405_and_never_issues_a_token(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    """RFC 6749 §3.2: the token endpoint takes POST only (no credentials in URLs)."""
    client = await make_client()
    await make_user()
    response = await http.get(
        "/token",
        params={
            "grant_type": "password",
            "username": "alice",
            "password": "correct horse battery staple",
            "client_id": client.client_id,
            "client_secret": client.secret or "",
        },
    )
    assert response.status_code == 405
    assert "access_token" not in response.text


@pytest.mark.parametrize(("method", "path"), [("GET", "/no/such/path"), ("GET", "/token")])
async def test_404_and_405_are_not_cacheable(
    http: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await http.request(method, path)
    assert response.status_code in (404, 405)
    assert response.headers.get("cache-control") == "no-store", response.headers


async def test_query_parameters_on_post_token_are_not_read_as_the_body(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    """Credentials in the URL are not form parameters: without a body there is no grant_type."""
    client = await make_client(grants=("client_credentials",))
    response = await http.post(
        "/token",
        params={"grant_type": "client_credentials"},
        content=b"",
        headers={"content-type": FORM},
        auth=client.basic,
    )
    assert_uncached_oauth_error(response, 400, "invalid_request")
