"""authserver.verify against a live `authserver serve`: real tokens, the real JWKS and discovery,
a key rotation followed without restarting the verifier, and the example resource server run
the way the README says (`uvicorn --app-dir examples resource_server:app`)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import RSAKey

from authserver.verify import (
    BadSignature,
    ExpiredToken,
    InvalidToken,
    MalformedToken,
    NotYetValid,
    TokenVerifier,
    UnknownKey,
    UnsupportedAlgorithm,
    WrongAudience,
    WrongIssuer,
    WrongTokenType,
)
from tests.e2e.conftest import (
    AUTHSERVER,
    Server,
    assert_ok,
    clean_env,
    free_port,
    run_authserver,
    stop_server,
    wait_until_ready,
)
from tests.verify.helpers import (
    ManualClock,
    b64json,
    header,
    sign_hs256,
    sign_rs256,
    unsigned,
)

pytestmark = pytest.mark.e2e

PASSWORD = "verify-live-password-1"
REPOSITORY = Path(__file__).resolve().parents[2]
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
READY_TIMEOUT = 20.0
ROTATION_TIMEOUT = 15.0


@dataclass(frozen=True)
class Live:
    """A serving authserver whose ISSUER is its own URL, with alice and two clients."""

    server: Server
    home: Path
    env: Mapping[str, str]
    user_id: str
    reader: httpx.BasicAuth  # scope profile:read
    reader_id: str
    other: httpx.BasicAuth  # scope orders

    @property
    def issuer(self) -> str:
        return self.server.base_url

    def token(self, client: httpx.BasicAuth | None = None) -> str:
        response = httpx.post(
            f"{self.issuer}/token",
            data={"grant_type": "password", "username": "alice", "password": PASSWORD},
            auth=client or self.reader,
            timeout=10,
        )
        assert response.status_code == 200, response.text
        access_token: str = response.json()["access_token"]
        return access_token

    def jwks(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.issuer}/.well-known/jwks.json", timeout=10).json()
        return body


def start_live(home: Path, logs: Path) -> Live:
    """`authserver serve` on a free port with ISSUER = its URL and a 1 s key refresh, then the
    user and clients made with the CLI, as an operator would."""
    port = free_port()
    env = {
        "AUTHSERVER_ISSUER": f"http://127.0.0.1:{port}",
        "AUTHSERVER_KEYS_REFRESH_INTERVAL": "1",
    }
    log = logs / f"serve-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [AUTHSERVER, "serve", "--port", str(port)],
            cwd=home,
            env=clean_env(env),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", port, process, log)
    try:
        wait_until_ready(server)
        user = run_authserver(
            ["users", "create", "alice", "--password-stdin"], home, env=env, stdin=PASSWORD
        )
        assert_ok(user)
        user_id = UUID.search(user.stdout)
        assert user_id is not None, user.stdout
        clients: dict[str, tuple[str, str]] = {}
        for name, scope in (("reader", "profile:read"), ("other", "orders")):
            created = run_authserver(
                ["clients", "create", name, "--scope", scope, "--json"], home, env=env
            )
            assert_ok(created)
            body = json.loads(created.stdout)
            clients[name] = (body["client_id"], body["client_secret"])
    except BaseException:
        stop_server(process)
        raise
    return Live(
        server,
        home,
        env,
        user_id.group(),
        httpx.BasicAuth(*clients["reader"]),
        clients["reader"][0],
        httpx.BasicAuth(*clients["other"]),
    )


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    running = start_live(tmp_path_factory.mktemp("verify-live"), tmp_path_factory.mktemp("logs"))
    try:
        yield running
    finally:
        stop_server(running.server.process)


def counting_client(counter: Counter[str]) -> httpx.Client:
    def count(request: httpx.Request) -> None:
        counter[request.url.path] += 1

    return httpx.Client(event_hooks={"request": [count]}, timeout=5)


def counting_async_client(counter: Counter[str]) -> httpx.AsyncClient:
    async def count(request: httpx.Request) -> None:
        counter[request.url.path] += 1

    return httpx.AsyncClient(event_hooks={"request": [count]}, timeout=5)


# --- real tokens ------------------------------------------------------------------------------


async def test_a_real_token_verifies_through_discovery_async_and_sync(live: Live) -> None:
    verifier = TokenVerifier(live.issuer, live.issuer)  # aud defaults to the issuer
    token = live.token()

    for claims in (await verifier.verify(token), verifier.verify_sync(token)):
        assert claims.iss == live.issuer
        assert claims.sub == live.user_id
        assert claims.client_id == live.reader_id
        assert claims.aud == (live.issuer,)
        assert claims.scopes == {"profile:read"}
        assert claims.sid is not None
        assert claims.exp - claims.iat == 900


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _tampered(token: str) -> str:
    """The same signature over a payload that grants more."""
    head, payload, signature = token.split(".")
    claims = json.loads(_b64decode(payload))
    claims["scope"] = "profile:read admin"
    return f"{head}.{b64json(claims)}.{signature}"


async def test_forged_and_damaged_versions_of_real_tokens_are_rejected(
    live: Live, foreign_key: RSAKey
) -> None:
    verifier = TokenVerifier(live.issuer, live.issuer)
    token = live.token()
    kid = json.loads(_b64decode(token.split(".")[0]))["kid"]
    published = next(key for key in live.jwks()["keys"] if key["kid"] == kid)
    public_pem = RSAKey.import_key(published).as_pem(private=False)
    claims = json.loads(_b64decode(token.split(".")[1]))
    live_header = {"alg": "RS256", "typ": "at+jwt", "kid": kid}

    cases: dict[str, tuple[str, type[InvalidToken]]] = {
        "tampered payload": (_tampered(token), BadSignature),
        "truncated": (token[: token.rindex(".")], MalformedToken),
        "truncated mid-payload": (token[: len(token) // 2], MalformedToken),
        "alg none": (unsigned({**live_header, "alg": "none"}, claims), UnsupportedAlgorithm),
        "HS256 keyed with the public PEM": (
            sign_hs256(public_pem, {**live_header, "alg": "HS256"}, claims),
            UnsupportedAlgorithm,
        ),
        "HS256 keyed with the public JWK": (
            sign_hs256(json.dumps(published).encode(), {**live_header, "alg": "HS256"}, claims),
            UnsupportedAlgorithm,
        ),
        "a foreign RSA key under the live kid": (
            sign_rs256(foreign_key, live_header, claims),
            BadSignature,
        ),
        "an unpublished kid": (
            sign_rs256(foreign_key, header(foreign_key), claims),
            UnknownKey,
        ),
        "typ JWT": (sign_rs256(foreign_key, {**live_header, "typ": "JWT"}, claims), WrongTokenType),
    }
    for name, (forged, expected) in cases.items():
        with pytest.raises(InvalidToken) as caught:
            await verifier.verify(forged)
        assert type(caught.value) is expected, (name, caught.value)
        with pytest.raises(InvalidToken) as caught_sync:
            verifier.verify_sync(forged)
        assert type(caught_sync.value) is expected, (name, caught_sync.value)
    assert (await verifier.verify(token)).sub == live.user_id  # the real one still passes


async def test_real_tokens_fail_the_time_issuer_and_audience_checks(live: Live) -> None:
    token = live.token()
    jwks_uri = f"{live.issuer}/.well-known/jwks.json"

    def at(offset: float) -> TokenVerifier:
        return TokenVerifier(live.issuer, live.issuer, clock=lambda: time.time() + offset)

    assert (await at(900 + 20).verify(token)).sub  # 20 s past exp: within the 30 s leeway
    with pytest.raises(ExpiredToken):
        await at(900 + 31).verify(token)
    with pytest.raises(NotYetValid):
        await at(-60).verify(token)  # a resource server whose clock is a minute behind
    with pytest.raises(WrongIssuer):
        await TokenVerifier("http://as.example", live.issuer, jwks_uri=jwks_uri).verify(token)
    with pytest.raises(WrongAudience):
        await TokenVerifier(live.issuer, "https://api.other.example").verify(token)


def test_an_unknown_kid_makes_exactly_one_request_to_the_live_jwks(
    live: Live, foreign_key: RSAKey
) -> None:
    requests: Counter[str] = Counter()
    clock = ManualClock()  # the cache's clock: 10 s pass without waiting for them
    forged = sign_rs256(foreign_key, header(foreign_key), {"iss": live.issuer})
    with counting_client(requests) as client:
        verifier = TokenVerifier(
            live.issuer, live.issuer, http_client=client, monotonic=clock.monotonic
        )
        verifier.verify_sync(live.token())
        assert requests == {
            "/.well-known/oauth-authorization-server": 1,
            "/.well-known/jwks.json": 1,
        }
        clock.advance(10)
        for _ in range(200):
            with pytest.raises(UnknownKey):
                verifier.verify_sync(forged)
    assert requests["/.well-known/jwks.json"] == 2  # one refetch for 200 unknown kids


# --- rotation ---------------------------------------------------------------------------------


def _kid(token: str) -> str:
    kid: str = json.loads(_b64decode(token.split(".")[0]))["kid"]
    return kid


def _rotate_and_wait(live: Live, old_kid: str) -> str:
    """`authserver keys rotate --now`, then tokens until the server signs with another kid."""
    rotated = run_authserver(["keys", "rotate", "--now"], live.home, env=live.env)
    assert_ok(rotated)
    deadline = time.monotonic() + ROTATION_TIMEOUT
    while time.monotonic() < deadline:
        token = live.token()
        if _kid(token) != old_kid:
            return token
        time.sleep(0.2)
    pytest.fail(f"the server still signs with {old_kid} {ROTATION_TIMEOUT} s after rotating")


async def test_a_rotation_on_the_server_is_followed_without_restarting_the_verifier(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    live = start_live(tmp_path_factory.mktemp("verify-rotate"), tmp_path_factory.mktemp("logs"))
    requests: Counter[str] = Counter()  # JWKS requests, from the sync and the async client
    client, async_client = counting_client(requests), counting_async_client(requests)
    try:
        clock = ManualClock()
        verifier = TokenVerifier(
            live.issuer,
            live.issuer,
            jwks_uri=f"{live.issuer}/.well-known/jwks.json",
            http_client=client,
            async_http_client=async_client,
            monotonic=clock.monotonic,
        )
        before = live.token()
        verifier.verify_sync(before)

        # 1. The `next` key, already published, starts signing: known from the cached JWKS.
        first = _rotate_and_wait(live, _kid(before))
        assert (await verifier.verify(first)).sub == live.user_id
        assert requests["/.well-known/jwks.json"] == 1

        # 2. Rotating again at once (--now) promotes a key the verifier has never seen: the
        #    unknown kid costs one refetch, and the token passes.
        clock.advance(10)
        second = _rotate_and_wait(live, _kid(first))
        assert (await verifier.verify(second)).sub == live.user_id
        assert verifier.verify_sync(second).sub == live.user_id
        assert requests["/.well-known/jwks.json"] == 2

        # Tokens signed before the rotations stay valid while their keys are published.
        assert verifier.verify_sync(before).sub == live.user_id
        assert verifier.verify_sync(first).sub == live.user_id
    finally:
        client.close()
        await async_client.aclose()
        stop_server(live.server.process)


# --- the example resource server --------------------------------------------------------------


@pytest.fixture(scope="module")
def example(live: Live, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`uvicorn --app-dir examples resource_server:app`, run from the repository as the
    README says, pointed at the live server."""
    port = free_port()
    log = tmp_path_factory.mktemp("example") / "uvicorn.log"
    uvicorn = str(Path(sys.executable).with_name("uvicorn"))
    env = clean_env({"RESOURCE_ISSUER": live.issuer, "RESOURCE_AUDIENCE": live.issuer})
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [uvicorn, "--app-dir", "examples", "resource_server:app", "--port", str(port)],
            cwd=REPOSITORY,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"the example exited early:\n{log.read_text(errors='replace')}")
            try:
                httpx.get(f"{base_url}/profile", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the example did not start:\n{log.read_text(errors='replace')}")
                time.sleep(0.1)
        yield base_url
    finally:
        stop_server(process)


CHALLENGE = re.compile(
    r'^Bearer realm="example", error="(?P<error>[a-z_]+)", error_description="[^"]+"'
    r'(, scope="(?P<scope>[^"]+)")?$'
)


def test_the_example_answers_401_without_a_token_or_with_a_bad_one(example: str) -> None:
    for headers in ({}, {"Authorization": "Bearer not.a.token"}):
        response = httpx.get(f"{example}/profile", headers=headers, timeout=10)
        assert response.status_code == 401
        match = CHALLENGE.match(response.headers["www-authenticate"])
        assert match is not None, response.headers["www-authenticate"]
        assert match["error"] == "invalid_token"
        assert response.json()["error"] == "invalid_token"


def test_the_example_answers_403_without_the_profile_read_scope(live: Live, example: str) -> None:
    token = live.token(live.other)
    response = httpx.get(
        f"{example}/profile", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert response.status_code == 403
    match = CHALLENGE.match(response.headers["www-authenticate"])
    assert match is not None, response.headers["www-authenticate"]
    assert match["error"] == "insufficient_scope"
    assert match["scope"] == "profile:read"


def test_the_example_answers_200_with_the_profile_for_a_good_token(
    live: Live, example: str
) -> None:
    token = live.token()
    response = httpx.get(
        f"{example}/profile", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "sub": live.user_id,
        "client_id": live.reader_id,
        "scope": "profile:read",
    }
