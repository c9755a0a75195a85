"""Client authentication at POST /token (RFC 6749 §2.3): client_secret_basic, client_secret_post
and none (public clients), and every way of getting it wrong."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from urllib.parse import quote, quote_plus

import httpx
import pytest

from authserver import admin
from authserver.services import Services
from tests.conftest import PASSWORD, RegisteredClient
from tests.helpers import assert_uncached_oauth_error, insert_client, jwt_parts, password_login

MakeClient = Callable[..., Awaitable[RegisteredClient]]
MakeUser = Callable[..., Awaitable[str]]

CHALLENGE = 'Basic realm="authserver"'
CC = {"grant_type": "client_credentials"}


def basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode("ascii")


def assert_invalid_client(response: httpx.Response) -> None:
    assert_uncached_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"] == CHALLENGE


async def confidential(make_client: MakeClient) -> RegisteredClient:
    client = await make_client(grants=("client_credentials", "password", "refresh_token"))
    assert client.secret is not None
    return client


# --- the three methods -------------------------------------------------------------------------


async def test_client_secret_basic_authenticates(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await confidential(make_client)
    response = await http.post("/token", data=CC, auth=client.basic)
    assert response.status_code == 200, response.text
    assert jwt_parts(response.json()["access_token"])[1]["client_id"] == client.client_id


async def test_client_secret_basic_with_matching_client_id_in_body_is_accepted(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await confidential(make_client)
    response = await http.post(
        "/token", data={**CC, "client_id": client.client_id}, auth=client.basic
    )
    assert response.status_code == 200, response.text


async def test_basic_scheme_name_is_case_insensitive(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    """RFC 7617 §2 / RFC 9110 §11.1: auth schemes are case-insensitive."""
    client = await confidential(make_client)
    token = base64.b64encode(f"{client.client_id}:{client.secret}".encode()).decode()
    response = await http.post("/token", data=CC, headers={"authorization": f"bAsIc {token}"})
    assert response.status_code == 200, response.text


async def test_client_secret_post_authenticates(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await confidential(make_client)
    assert client.secret is not None
    response = await http.post(
        "/token", data={**CC, "client_id": client.client_id, "client_secret": client.secret}
    )
    assert response.status_code == 200, response.text
    assert jwt_parts(response.json()["access_token"])[1]["client_id"] == client.client_id


async def test_public_client_authenticates_with_client_id_only(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client(public=True)
    assert client.secret is None
    await make_user()
    response = await http.post(
        "/token",
        data={
            "grant_type": "password",
            "username": "alice",
            "password": PASSWORD,
            "client_id": client.client_id,
        },
    )
    assert response.status_code == 200, response.text
    assert jwt_parts(response.json()["access_token"])[1]["client_id"] == client.client_id


async def test_public_client_with_empty_client_secret_is_treated_as_none(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    """RFC 6749 §3.1: an empty parameter is an omitted one."""
    client = await make_client(public=True)
    await make_user()
    response = await password_login(http, client, client_secret="")
    assert response.status_code == 200, response.text


# --- failures: 401 invalid_client with the Basic challenge --------------------------------------


async def test_unknown_client_with_basic_is_invalid_client_with_basic_challenge(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post("/token", data=CC, auth=("no-such-client", "secret"))
    assert_invalid_client(response)


async def test_unknown_client_with_post_is_invalid_client_with_basic_challenge(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post(
        "/token", data={**CC, "client_id": "no-such-client", "client_secret": "secret"}
    )
    assert_invalid_client(response)


async def test_unknown_client_id_without_secret_is_invalid_client(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post(
        "/token",
        data={"grant_type": "password", "username": "a", "password": "b", "client_id": "nope"},
    )
    assert_invalid_client(response)


async def test_wrong_secret_is_invalid_client_with_basic_challenge(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await confidential(make_client)
    response = await http.post("/token", data=CC, auth=(client.client_id, "wrong-secret"))
    assert_invalid_client(response)


async def test_wrong_secret_with_post_is_invalid_client_with_basic_challenge(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await confidential(make_client)
    response = await http.post(
        "/token", data={**CC, "client_id": client.client_id, "client_secret": "wrong-secret"}
    )
    assert_invalid_client(response)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s[:-1],
        lambda s: s + "x",
        lambda s: s.upper() if s != s.upper() else s.lower(),
        lambda s: " " + s,
        lambda s: "",
    ],
)
async def test_near_miss_secrets_are_invalid_client(
    http: httpx.AsyncClient, make_client: MakeClient, mangle: Callable[[str], str]
) -> None:
    client = await confidential(make_client)
    assert client.secret is not None
    response = await http.post("/token", data=CC, auth=(client.client_id, mangle(client.secret)))
    assert_invalid_client(response)


async def test_secret_of_another_client_is_invalid_client(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    first = await confidential(make_client)
    second = await make_client("other", grants=("client_credentials",))
    assert second.secret is not None
    response = await http.post("/token", data=CC, auth=(first.client_id, second.secret))
    assert_invalid_client(response)


async def test_unknown_client_and_wrong_secret_are_indistinguishable(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await confidential(make_client)
    unknown = await http.post("/token", data=CC, auth=("no-such-client", "secret"))
    wrong = await http.post("/token", data=CC, auth=(client.client_id, "secret"))
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.content == wrong.content
    assert unknown.headers["www-authenticate"] == wrong.headers["www-authenticate"]


async def test_confidential_client_with_client_id_only_is_invalid_client(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await confidential(make_client)
    response = await http.post("/token", data={**CC, "client_id": client.client_id})
    assert_invalid_client(response)


async def test_confidential_client_with_empty_secret_in_body_is_invalid_client(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await confidential(make_client)
    response = await http.post(
        "/token", data={**CC, "client_id": client.client_id, "client_secret": ""}
    )
    assert_invalid_client(response)


async def test_request_without_any_client_authentication_is_invalid_client(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    await make_user()
    response = await http.post(
        "/token", data={"grant_type": "password", "username": "alice", "password": PASSWORD}
    )
    assert_invalid_client(response)


async def test_client_secret_without_client_id_is_invalid_client(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await confidential(make_client)
    assert client.secret is not None
    response = await http.post("/token", data={**CC, "client_secret": client.secret})
    assert_invalid_client(response)


async def test_deleted_client_is_invalid_client(
    http: httpx.AsyncClient, make_client: MakeClient, services: Services
) -> None:
    client = await confidential(make_client)
    assert (await http.post("/token", data=CC, auth=client.basic)).status_code == 200
    await admin.delete_client(services.db, client.client_id)
    assert_invalid_client(await http.post("/token", data=CC, auth=client.basic))


# --- malformed Basic ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic !!!not base64!!!",
        "Basic YWJj",  # "abc": no colon
        "Basic YWJjOmRlZg",  # missing padding
        "Basic YWJj OmRlZg==",  # whitespace inside
        basic(b"no colon at all"),
        basic(b":secret-with-empty-id"),
        basic(b"\xff\xfe:secret"),
        basic(b"id:\xff\xfe"),
        basic(b"\xc3\x28:\xc3\x28"),
        basic(b"%ff:secret"),  # form-decodes to invalid UTF-8
        basic(b"id:%c3%28"),
        basic(b"id%00:secret"),  # form-decodes to NUL
        basic(b"id\x00:secret"),
        basic(b"id:sec\x00ret"),
        basic(b"id\r\n:secret"),
        basic(b"\x00"),
        basic(b""),
        "Basic",
        "Basic ",
        "Basic " + "=" * 8,
        "Basic " + "QQ" * 4000,
        "Bearer eyJhbGciOiJub25lIn0.e30.",
        "Digest username=x",
        "basic:" + base64.b64encode(b"id:secret").decode(),
    ],
)
async def test_malformed_basic_credentials_are_invalid_client_not_500(
    http: httpx.AsyncClient, make_client: MakeClient, authorization: str
) -> None:
    await confidential(make_client)
    response = await http.post("/token", data=CC, headers={"authorization": authorization})
    assert_invalid_client(response)


async def test_non_ascii_authorization_header_bytes_are_invalid_client_not_500(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    await confidential(make_client)
    response = await http.post(
        "/token", data=CC, headers={b"authorization": b"Basic \xff\xfe\xfd\x00"}
    )
    assert_invalid_client(response)


async def test_basic_with_valid_id_but_malformed_secret_encoding_is_invalid_client(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await confidential(make_client)
    response = await http.post(
        "/token",
        data=CC,
        headers={"authorization": basic(client.client_id.encode() + b":%ff%fe")},
    )
    assert_invalid_client(response)


# --- mixing methods ----------------------------------------------------------------------------


async def test_basic_plus_client_secret_in_body_is_invalid_request(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    """RFC 6749 §2.3: a client MUST NOT use more than one authentication method per request."""
    client = await confidential(make_client)
    assert client.secret is not None
    response = await http.post(
        "/token",
        data={**CC, "client_id": client.client_id, "client_secret": client.secret},
        auth=client.basic,
    )
    assert_uncached_oauth_error(response, 400, "invalid_request")


async def test_basic_plus_wrong_client_secret_in_body_never_succeeds(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await confidential(make_client)
    response = await http.post(
        "/token", data={**CC, "client_secret": "something-else"}, auth=client.basic
    )
    assert_uncached_oauth_error(response, 400, "invalid_request")


async def test_basic_id_different_from_body_client_id_is_invalid_client(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    client = await confidential(make_client)
    other = await make_client("other", grants=("client_credentials",))
    response = await http.post(
        "/token", data={**CC, "client_id": other.client_id}, auth=client.basic
    )
    assert_invalid_client(response)


async def test_basic_of_one_client_cannot_act_as_a_public_client_named_in_the_body(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await confidential(make_client)
    public = await make_client("spa", public=True)
    await make_user()
    response = await http.post(
        "/token",
        data={
            "grant_type": "password",
            "username": "alice",
            "password": PASSWORD,
            "client_id": public.client_id,
        },
        auth=client.basic,
    )
    assert_invalid_client(response)


# --- public clients ----------------------------------------------------------------------------


async def test_public_client_presenting_a_secret_in_body_is_invalid_client(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client(public=True)
    await make_user()
    response = await password_login(http, client, client_secret="made-up")
    assert_invalid_client(response)


async def test_public_client_presenting_a_secret_via_basic_is_invalid_client(
    http: httpx.AsyncClient, make_client: MakeClient, make_user: MakeUser
) -> None:
    client = await make_client(public=True)
    await make_user()
    response = await http.post(
        "/token",
        data={"grant_type": "password", "username": "alice", "password": PASSWORD},
        auth=(client.client_id, "made-up"),
    )
    assert_invalid_client(response)


# --- RFC 6749 §2.3.1: form-encoded id and secret inside Basic ----------------------------------

AWKWARD_SECRET = "p@ss:w+rd %/é&=?"  # every character that form-encoding changes


async def test_form_encoded_id_and_secret_inside_basic_are_decoded(
    http: httpx.AsyncClient, services: Services
) -> None:
    client = await insert_client(
        services,
        client_id="svc:reports+1 é",
        secret=AWKWARD_SECRET,
        grants=("client_credentials",),
    )
    raw = f"{quote_plus(client.client_id)}:{quote_plus(AWKWARD_SECRET)}"
    response = await http.post("/token", data=CC, headers={"authorization": basic(raw.encode())})
    assert response.status_code == 200, response.text
    claims = jwt_parts(response.json()["access_token"])[1]
    assert claims["client_id"] == "svc:reports+1 é"
    assert claims["sub"] == "svc:reports+1 é"


async def test_percent_encoded_space_inside_basic_is_decoded_like_plus(
    http: httpx.AsyncClient, services: Services
) -> None:
    client = await insert_client(services, secret=AWKWARD_SECRET, grants=("client_credentials",))
    raw = f"{quote(client.client_id, safe='')}:{quote(AWKWARD_SECRET, safe='')}"
    response = await http.post("/token", data=CC, headers={"authorization": basic(raw.encode())})
    assert response.status_code == 200, response.text


async def test_unencoded_plus_inside_basic_means_space(
    http: httpx.AsyncClient, services: Services
) -> None:
    """A client that forgets §2.3.1's encoding sends '+' raw; the server reads it as a space."""
    client = await insert_client(services, secret="a+b", grants=("client_credentials",))
    raw_response = await http.post("/token", data=CC, auth=(client.client_id, "a+b"))
    assert_invalid_client(raw_response)
    encoded = basic(f"{client.client_id}:a%2Bb".encode())
    response = await http.post("/token", data=CC, headers={"authorization": encoded})
    assert response.status_code == 200, response.text


async def test_awkward_secret_works_with_client_secret_post(
    http: httpx.AsyncClient, services: Services
) -> None:
    client = await insert_client(services, secret=AWKWARD_SECRET, grants=("client_credentials",))
    response = await http.post(
        "/token", data={**CC, "client_id": client.client_id, "client_secret": AWKWARD_SECRET}
    )
    assert response.status_code == 200, response.text


async def test_secret_checked_in_full_after_colon_inside_basic(
    http: httpx.AsyncClient, services: Services
) -> None:
    """The first colon separates id and secret; later colons belong to the secret."""
    client = await insert_client(services, secret="left:right", grants=("client_credentials",))
    ok = await http.post(
        "/token",
        data=CC,
        headers={"authorization": basic(f"{client.client_id}:left:right".encode())},
    )
    assert ok.status_code == 200, ok.text
    truncated = await http.post(
        "/token", data=CC, headers={"authorization": basic(f"{client.client_id}:left".encode())}
    )
    assert_invalid_client(truncated)


async def test_each_client_is_authenticated_as_itself(
    http: httpx.AsyncClient, make_client: MakeClient
) -> None:
    first = await confidential(make_client)
    second = await make_client("second", grants=("client_credentials",))
    for client in (first, second):
        response = await http.post("/token", data=CC, auth=client.basic)
        assert response.status_code == 200, response.text
        assert jwt_parts(response.json()["access_token"])[1]["client_id"] == client.client_id


@pytest.mark.parametrize(
    "client_id",
    ["c" * 65, "c" * 8000, "é" * 64, "\U0001f600" * 40, "' OR '1'='1", "%", "_", "*", "\\"],
)
async def test_odd_client_ids_are_invalid_client_not_500(
    http: httpx.AsyncClient, make_client: MakeClient, client_id: str
) -> None:
    """Longer than the column, non-ASCII, SQL or LIKE metacharacters: just an unknown client."""
    await confidential(make_client)
    by_post = await http.post(
        "/token", data={**CC, "client_id": client_id, "client_secret": "secret"}
    )
    assert_invalid_client(by_post)
    by_basic = await http.post(
        "/token",
        data=CC,
        headers={"authorization": basic(f"{quote_plus(client_id)}:secret".encode())},
    )
    assert_invalid_client(by_basic)
