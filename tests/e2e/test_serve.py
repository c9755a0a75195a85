"""`authserver serve` for real: users and clients made with the CLI, tokens over real HTTP, and
access tokens verified the way a resource server would (PyJWT against the live JWKS)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import pytest

from tests.e2e.conftest import (
    DEFAULT_ISSUER,
    Cli,
    Invocation,
    ServeFactory,
    assert_ok,
    run_authserver,
    run_concurrently,
)

pytestmark = pytest.mark.e2e

PASSWORD = "e2e-serve-password-1"
NEW_PASSWORD = "e2e-serve-password-2"
PUBLIC_JWK_MEMBERS = {"kty", "kid", "use", "alg", "n", "e"}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Home:
    """A working directory with user `alice` and a confidential client made by the CLI."""

    path: Path
    user_id: str
    client_id: str
    client_secret: str

    @property
    def basic(self) -> httpx.BasicAuth:
        return httpx.BasicAuth(self.client_id, self.client_secret)


def prepare(
    path: Path, env: dict[str, str] | None = None, *, prompt: bool = False, upgrade: bool = True
) -> Home:
    """`db upgrade` (unless a `serve` made the database), then alice (from stdin, or at the
    prompt) and client `web`, at once."""
    if upgrade:
        assert_ok(run_authserver(["db", "upgrade"], path, env=env))
    if prompt:
        user = Invocation(["users", "create", "alice"], path, env, f"{PASSWORD}\n{PASSWORD}\n")
    else:
        user = Invocation(["users", "create", "alice", "--password-stdin"], path, env, PASSWORD)
    created_user, created_client = run_concurrently(
        user, Invocation(["clients", "create", "web", "--json"], path, env)
    )
    assert_ok(created_user)
    assert_ok(created_client)
    user_id = UUID.search(created_user.stdout)
    assert user_id is not None, created_user.stdout
    client = json.loads(created_client.stdout)
    return Home(path, user_id.group(), client["client_id"], client["client_secret"])


@pytest.fixture(scope="module")
def sqlite_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """A directory with no configuration (the embedded SQLite default) once the CLI ran."""
    return prepare(tmp_path_factory.mktemp("serve-home"))


def password_grant(base_url: str, home: Home, password: str = PASSWORD) -> httpx.Response:
    data = {"grant_type": "password", "username": "alice", "password": password}
    return httpx.post(f"{base_url}/token", data=data, auth=home.basic, timeout=10)


def refresh_grant(base_url: str, home: Home, refresh_token: str) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return httpx.post(f"{base_url}/token", data=data, auth=home.basic, timeout=10)


def assert_tokens(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert isinstance(body["refresh_token"], str)
    return body


def assert_invalid_grant(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"


def verify_with_pyjwt(base_url: str, token: str) -> dict[str, Any]:
    """What an independent resource server does: the live JWKS, RS256 only, iss and aud."""
    signing_key = jwt.PyJWKClient(f"{base_url}/.well-known/jwks.json").get_signing_key_from_jwt(
        token
    )
    claims: dict[str, Any] = jwt.decode(
        token,
        signing_key.key,
        algorithms=["RS256"],
        audience=DEFAULT_ISSUER,
        issuer=DEFAULT_ISSUER,
        options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
    )
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "RS256"
    return claims


def assert_public_jwks(base_url: str) -> dict[str, Any]:
    response = httpx.get(f"{base_url}/.well-known/jwks.json", timeout=10)
    assert response.status_code == 200
    jwks: dict[str, Any] = response.json()
    assert len(jwks["keys"]) == 2  # current and next
    for key in jwks["keys"]:
        assert set(key) == PUBLIC_JWK_MEMBERS, key  # no d, p, q, dp, dq, qi
        assert key["kty"] == "RSA"
        assert key["alg"] == "RS256"
    assert "PRIVATE" not in response.text
    return jwks


def assert_login_refresh_and_verify(base_url: str, home: Home) -> None:
    login = assert_tokens(password_grant(base_url, home))
    claims = verify_with_pyjwt(base_url, login["access_token"])
    assert claims["sub"] == home.user_id
    assert claims["client_id"] == home.client_id
    assert claims["aud"] == DEFAULT_ISSUER

    renewed = assert_tokens(refresh_grant(base_url, home, login["refresh_token"]))
    assert renewed["refresh_token"] != login["refresh_token"]
    renewed_claims = verify_with_pyjwt(base_url, renewed["access_token"])
    assert renewed_claims["sub"] == home.user_id
    assert renewed_claims["sid"] == claims["sid"]  # the same login


def test_serve_in_an_empty_directory_issues_tokens_a_resource_server_can_verify(
    tmp_path: Path, serve: ServeFactory
) -> None:
    """SPEC: no configuration at all: SQLite under var/, migrated, a key made on first start.
    The operator then adds a user and a client while it serves."""
    server = serve(tmp_path)
    assert (tmp_path / "var" / "authserver.db").is_file()
    assert (tmp_path / "keys" / "kek").is_file()
    home = prepare(tmp_path, upgrade=False)

    assert_login_refresh_and_verify(server.base_url, home)
    jwks = assert_public_jwks(server.base_url)
    listed = run_authserver(["keys", "list", "--json"], tmp_path)
    assert_ok(listed)
    assert {key["kid"] for key in jwks["keys"]} == {row["kid"] for row in json.loads(listed.stdout)}

    metadata = httpx.get(f"{server.base_url}/.well-known/oauth-authorization-server").json()
    assert metadata["issuer"] == DEFAULT_ISSUER  # configuration, not the listen address


# --- two workers ------------------------------------------------------------------------------


def child_pids(parent: int) -> set[int]:
    children = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent:
            children.add(int(entry))
    return children


def server_side_socket_inode(server_port: int, client_port: int) -> str | None:
    """The inode of the accepted socket of the TCP connection from `client_port`."""
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote:
            return fields[9]
    return None


def process_holding(pids: set[int], inode: str) -> int | None:
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
            except OSError:
                continue
    return None


@dataclass(frozen=True)
class WorkerAnswer:
    pid: int
    jwks: bytes
    access_token: str


def ask_on_a_new_connection(port: int, home: Home, workers: set[int]) -> WorkerAnswer | None:
    """A token and the JWKS over one fresh keep-alive connection, and which worker served it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/.well-known/jwks.json")
        response = conn.getresponse()
        jwks = response.read()
        assert response.status == 200
        basic = base64.b64encode(f"{home.client_id}:{home.client_secret}".encode()).decode()
        body = urlencode({"grant_type": "password", "username": "alice", "password": PASSWORD})
        headers = {
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        conn.request("POST", "/token", body=body, headers=headers)
        response = conn.getresponse()
        tokens = json.loads(response.read())
        assert response.status == 200, tokens
        assert conn.sock is not None
        inode = server_side_socket_inode(port, conn.sock.getsockname()[1])
        pid = None if inode is None else process_holding(workers, inode)
        return None if pid is None else WorkerAnswer(pid, jwks, tokens["access_token"])
    finally:
        conn.close()


def test_serve_with_two_workers_both_answer_with_the_same_keys(
    sqlite_home: Home, serve: ServeFactory
) -> None:
    server = serve(sqlite_home.path, workers=2)
    answers: dict[int, WorkerAnswer] = {}
    deadline = time.monotonic() + 20
    while len(answers) < 2 and time.monotonic() < deadline:
        workers = child_pids(server.process.pid)
        answer = ask_on_a_new_connection(server.port, sqlite_home, workers)
        if answer is not None:
            answers.setdefault(answer.pid, answer)
    assert len(answers) == 2, f"only worker(s) {sorted(answers)} answered"

    first, second = answers.values()
    assert json.loads(first.jwks) == json.loads(second.jwks)
    kids = set()
    for answer in answers.values():
        claims = verify_with_pyjwt(server.base_url, answer.access_token)
        assert claims["sub"] == sqlite_home.user_id
        kids.add(jwt.get_unverified_header(answer.access_token)["kid"])
    assert len(kids) == 1  # both sign with the one current key


# --- PostgreSQL -------------------------------------------------------------------------------


def test_serve_on_postgresql_after_db_upgrade(
    postgres_database_url: str, tmp_path: Path, cli: Cli, serve: ServeFactory
) -> None:
    env = {"AUTHSERVER_DATABASE_URL": postgres_database_url}
    assert_ok(cli("db", "upgrade", env=env))
    home = prepare(tmp_path, env, prompt=True)  # the password typed at the prompt
    server = serve(tmp_path, env=env)

    assert_login_refresh_and_verify(server.base_url, home)
    assert_public_jwks(server.base_url)
    assert not (tmp_path / "var").exists()  # PostgreSQL only: nothing in the SQLite default

    # An operator changes the password while the server runs: the login's refresh tokens stop
    # working and only the new password logs in.
    login = assert_tokens(password_grant(server.base_url, home))
    changed = cli("users", "set-password", "alice", "--password-stdin", env=env, stdin=NEW_PASSWORD)
    assert_ok(changed)
    assert_invalid_grant(refresh_grant(server.base_url, home, login["refresh_token"]))
    assert_invalid_grant(password_grant(server.base_url, home, PASSWORD))
    assert_tokens(password_grant(server.base_url, home, NEW_PASSWORD))
